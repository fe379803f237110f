//! The accounts and whitelists of every loaded file, and the check of one request against
//! them, in RocketMQ's order: a request that cannot be read is refused; a globally
//! whitelisted address passes; then the access key must be known, the account's own
//! whitelist lets it pass, the signature must hold, trace messages pass, admin codes need
//! an admin account (which then passes), and every topic and group the request touches
//! needs its permission (the account's entry, else its default).

use std::collections::HashMap;
use std::net::IpAddr;

use message::topic::{RETRY_GROUP_TOPIC_PREFIX, TRACE_TOPIC};
use remoting::acl::{self, ACCESS_KEY};
use remoting::code::request;
use remoting::command::RemotingCommand;

use super::address::AddressPattern;
use super::perm;
use super::plain::{resource_entry, Account, PlainAclFile};
use super::resources;

/// Request codes only admin accounts may send: RocketMQ 5.3's list, and the name server's
/// changes (registrations, write permissions, topic deletion, KV config), which RocketMQ's
/// name server leaves unchecked.
const ADMIN_CODES: [i32; 15] = [
    request::REGISTER_BROKER,
    request::UNREGISTER_BROKER,
    request::DELETE_TOPIC_IN_NAMESRV,
    request::WIPE_WRITE_PERM_OF_BROKER,
    request::ADD_WRITE_PERM_OF_BROKER,
    request::PUT_KV_CONFIG,
    request::DELETE_KV_CONFIG,
    request::UPDATE_AND_CREATE_TOPIC,
    request::UPDATE_BROKER_CONFIG,
    request::DELETE_TOPIC_IN_BROKER,
    request::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP,
    request::DELETE_SUBSCRIPTIONGROUP,
    request::UPDATE_AND_CREATE_ACL_CONFIG,
    request::DELETE_ACL_CONFIG,
    request::GET_BROKER_CLUSTER_ACL_INFO,
];

/// What a request presents: its access key, whether it proves the account's secret (a
/// signature checked against the secret given), and whether only admins may send it.
pub struct Presented<'a> {
    pub access_key: Option<&'a str>,
    pub proves: &'a dyn Fn(&str) -> bool,
    pub admin_only: bool,
    /// The request code, for messages.
    pub code: i32,
}

/// Why a request was refused (RocketMQ's AclException message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AclRefusal(pub String);

struct CheckedAccount {
    secret_key: String,
    white: AddressPattern,
    admin: bool,
    default_topic: u8,
    default_group: u8,
    /// Topics by name, groups as `%RETRY%<group>`.
    resources: HashMap<String, u8>,
}

#[derive(Default)]
pub struct AclTables {
    global_white: Vec<AddressPattern>,
    accounts: HashMap<String, CheckedAccount>,
}

impl AclTables {
    /// Tables of `files`; an access key belongs to the first file that defines it. The
    /// files were validated when parsed.
    pub fn build<'a>(files: impl IntoIterator<Item = &'a PlainAclFile>) -> AclTables {
        let mut tables = AclTables::default();
        for file in files {
            tables.global_white.extend(
                file.global_white_remote_addresses
                    .iter()
                    .filter_map(|a| AddressPattern::parse(a).ok()),
            );
            for account in &file.accounts {
                if tables.accounts.contains_key(&account.access_key) {
                    tracing::warn!(access_key = %account.access_key,
                        "access key defined in more than one ACL file; the first one counts");
                    continue;
                }
                tables
                    .accounts
                    .insert(account.access_key.clone(), checked(account));
            }
        }
        tables
    }

    /// Checks a remoting request.
    pub fn check(&self, request: &RemotingCommand, ip: IpAddr) -> Result<(), AclRefusal> {
        let needs = resources::needed(request).map_err(AclRefusal)?;
        let presented = Presented {
            access_key: request.ext_field(ACCESS_KEY),
            proves: &|secret: &str| acl::verify(secret, request),
            admin_only: ADMIN_CODES.contains(&request.code),
            code: request.code,
        };
        self.check_presented(&presented, &needs, ip)
    }

    /// Checks a request whose access key, proof and needs its protocol read.
    pub fn check_presented(
        &self,
        presented: &Presented<'_>,
        needs: &[(String, u8)],
        ip: IpAddr,
    ) -> Result<(), AclRefusal> {
        if self.global_white.iter().any(|p| p.matches(ip)) {
            return Ok(());
        }
        let Some(access_key) = presented.access_key else {
            return Err(AclRefusal("No accessKey is configured".into()));
        };
        let Some(account) = self.accounts.get(access_key) else {
            return Err(AclRefusal(format!("No acl config for {access_key}")));
        };
        if account.white.matches(ip) {
            return Ok(());
        }
        if !(presented.proves)(&account.secret_key) {
            return Err(AclRefusal(format!(
                "Check signature failed for accessKey={access_key}"
            )));
        }
        if needs
            .iter()
            .any(|(resource, needed)| resource == TRACE_TOPIC && *needed == perm::PUB)
        {
            return Ok(());
        }
        if presented.admin_only && !account.admin {
            return Err(AclRefusal(format!(
                "Need admin permission for request code={}, but accessKey={access_key} is not",
                presented.code
            )));
        }
        if account.admin {
            return Ok(());
        }
        for (resource, needed) in needs {
            let group = resource.strip_prefix(RETRY_GROUP_TOPIC_PREFIX);
            let kind = if group.is_some() { "group" } else { "topic" };
            let name = group.unwrap_or(resource);
            match account.resources.get(resource) {
                Some(owned) if !perm::allows(*needed, *owned) => {
                    return Err(AclRefusal(format!("No permission for {kind}:{name}")));
                }
                Some(_) => {}
                None => {
                    let default = if group.is_some() {
                        account.default_group
                    } else {
                        account.default_topic
                    };
                    if !perm::allows(*needed, default) {
                        return Err(AclRefusal(format!(
                            "No default permission for {kind}:{name}"
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

fn checked(account: &Account) -> CheckedAccount {
    let mut resources = HashMap::new();
    for entry in &account.topic_perms {
        if let Ok((topic, owned)) = resource_entry(entry) {
            resources.insert(topic, owned);
        }
    }
    for entry in &account.group_perms {
        if let Ok((group, owned)) = resource_entry(entry) {
            resources.insert(format!("{RETRY_GROUP_TOPIC_PREFIX}{group}"), owned);
        }
    }
    CheckedAccount {
        secret_key: account.secret_key.clone(),
        white: account
            .white_remote_address
            .as_deref()
            .and_then(|a| AddressPattern::parse(a).ok())
            .unwrap_or(AddressPattern::Nobody),
        admin: account.admin,
        default_topic: perm::parse(account.default_topic_perm.as_deref()),
        default_group: perm::parse(account.default_group_perm.as_deref()),
        resources,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use remoting::acl::Credentials;

    const FILE: &str = r#"
globalWhiteRemoteAddresses:
  - 10.0.0.*
accounts:
  - accessKey: producerAK
    secretKey: producerSK
    defaultTopicPerm: DENY
    defaultGroupPerm: SUB
    topicPerms:
      - Orders=PUB
      - Secret=DENY
    groupPerms:
      - banned=DENY
  - accessKey: adminAK00
    secretKey: adminSK00
    admin: true
  - accessKey: trustedAK
    secretKey: trustedSK
    whiteRemoteAddress: 192.168.9.9
"#;

    fn tables() -> AclTables {
        AclTables::build([&PlainAclFile::parse(FILE).unwrap()])
    }

    fn send(topic: &str) -> RemotingCommand {
        let mut request = RemotingCommand::request(request::SEND_MESSAGE_V2);
        request.ext_fields.insert("a".into(), "pg".into());
        request.ext_fields.insert("b".into(), topic.into());
        request
    }

    fn signed(mut request: RemotingCommand, ak: &str, sk: &str) -> RemotingCommand {
        Credentials::new(ak, sk).sign(&mut request);
        request
    }

    fn local() -> IpAddr {
        "127.0.0.1".parse().unwrap()
    }

    fn refusal(result: Result<(), AclRefusal>) -> String {
        result.unwrap_err().0
    }

    #[test]
    fn the_checks_in_rocketmqs_order() {
        let t = tables();
        assert!(t
            .check(&signed(send("Orders"), "producerAK", "producerSK"), local())
            .is_ok());
        assert_eq!(
            refusal(t.check(&send("Orders"), local())),
            "No accessKey is configured"
        );
        assert_eq!(
            refusal(t.check(&signed(send("Orders"), "nobody00", "whatever"), local())),
            "No acl config for nobody00"
        );
        assert_eq!(
            refusal(t.check(&signed(send("Orders"), "producerAK", "wrongSK"), local())),
            "Check signature failed for accessKey=producerAK"
        );
        assert_eq!(
            refusal(t.check(&signed(send("Secret"), "producerAK", "producerSK"), local())),
            "No permission for topic:Secret"
        );
        assert_eq!(
            refusal(t.check(&signed(send("Other"), "producerAK", "producerSK"), local())),
            "No default permission for topic:Other"
        );
        let mut pull = RemotingCommand::request(request::PULL_MESSAGE);
        pull.ext_fields.insert("topic".into(), "Orders".into());
        pull.ext_fields
            .insert("consumerGroup".into(), "banned".into());
        // Orders is PUB only: reading it is refused before the group is looked at.
        assert_eq!(
            refusal(t.check(&signed(pull.clone(), "producerAK", "producerSK"), local())),
            "No permission for topic:Orders"
        );
        // Admin codes need an admin; an admin passes everything.
        let create = RemotingCommand::request(request::UPDATE_AND_CREATE_TOPIC);
        assert!(
            refusal(t.check(&signed(create.clone(), "producerAK", "producerSK"), local()))
                .starts_with("Need admin permission for request code=17")
        );
        assert!(t
            .check(&signed(create, "adminAK00", "adminSK00"), local())
            .is_ok());
        assert!(t
            .check(&signed(pull, "adminAK00", "adminSK00"), local())
            .is_ok());
        // Whitelists: the global one needs nothing, an account's needs only its key.
        assert!(t
            .check(&send("Secret"), "10.0.0.5".parse().unwrap())
            .is_ok());
        let mut unsigned = send("Secret");
        unsigned
            .ext_fields
            .insert(ACCESS_KEY.into(), "trustedAK".into());
        assert!(t.check(&unsigned, "192.168.9.9".parse().unwrap()).is_ok());
        assert!(t.check(&unsigned, local()).is_err());
        // A request that cannot be read is refused even from a whitelisted address.
        let broken = RemotingCommand::request(request::PULL_MESSAGE);
        assert!(t.check(&broken, "10.0.0.5".parse().unwrap()).is_err());
    }
}
