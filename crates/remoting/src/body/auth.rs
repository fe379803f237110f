//! ACL 2.0's bodies (RocketMQ 5.3's `UserInfo` and `AclInfo`): what `createUser` /
//! `createAcl` send and `getUser` / `listAcl` answer. Every field is optional on the wire
//! (the Java admin client leaves out nulls); the broker validates what it needs and names
//! what is missing.

use serde::{Deserialize, Serialize};

use super::fastjson::{self, JsonError};

/// A user: `userType` is `Super` or `Normal`, `userStatus` `enable` or `disable`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UserInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_status: Option<String>,
}

/// The password never reaches a log through `{:?}`.
impl std::fmt::Debug for UserInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserInfo")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("user_type", &self.user_type)
            .field("user_status", &self.user_status)
            .finish()
    }
}

/// A subject's (`User:<name>`) policies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AclInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policies: Option<Vec<PolicyInfo>>,
}

/// `policyType` is `Custom` (the default) or `Default`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PolicyInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entries: Option<Vec<PolicyEntryInfo>>,
}

/// `resource` like `Topic:orders`, `Group:billing*`, `Cluster:DefaultCluster` or `*`;
/// `actions` among Pub, Sub, Create, Update, Delete, Get, List, All; `decision` Allow or
/// Deny; `sourceIps` addresses or CIDR blocks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PolicyEntryInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ips: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
}

macro_rules! json_body {
    ($($ty:ty),*) => {$(
        impl $ty {
            pub fn decode(body: &[u8]) -> Result<Self, JsonError> {
                fastjson::decode(body)
            }

            pub fn encode(&self) -> Vec<u8> {
                let mut out = String::new();
                fastjson::push_json(&mut out, self);
                out.into_bytes()
            }
        }
    )*};
}

json_body!(UserInfo, AclInfo);

/// A list answer (AUTH_LIST_USER, AUTH_LIST_ACL): a JSON array, or no body when empty.
pub fn decode_list<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<Vec<T>, JsonError> {
    if body.is_empty() {
        return Ok(Vec::new());
    }
    fastjson::decode(body)
}

pub fn encode_list<T: Serialize>(items: &[T]) -> Vec<u8> {
    let mut out = String::new();
    fastjson::push_json(&mut out, &items);
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_admin_bodies_read_and_nulls_stay_out() {
        let acl = AclInfo::decode(
            br#"{"policies":[{"entries":[{"actions":["Pub","Sub"],"decision":"Allow","resource":"Topic:t"}]}],"subject":"User:u"}"#,
        )
        .unwrap();
        let entry = &acl.policies.as_ref().unwrap()[0].entries.as_ref().unwrap()[0];
        assert_eq!(entry.resource.as_deref(), Some("Topic:t"));
        assert_eq!(entry.source_ips, None);
        let written = String::from_utf8(acl.encode()).unwrap();
        assert!(!written.contains("sourceIps") && !written.contains("policyType"));
        let user = UserInfo {
            username: Some("u".into()),
            password: Some("secret".into()),
            ..Default::default()
        };
        assert!(!format!("{user:?}").contains("secret"));
        assert_eq!(decode_list::<UserInfo>(b"").unwrap(), vec![]);
        assert_eq!(
            decode_list::<UserInfo>(&encode_list(std::slice::from_ref(&user))).unwrap(),
            vec![user]
        );
    }
}
