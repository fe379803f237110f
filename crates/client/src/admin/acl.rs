//! ACL 1.0 on a broker: its accounts and global whitelist changed, and its files' versions
//! read (UPDATE_AND_CREATE_ACL_CONFIG 50, DELETE_ACL_CONFIG 51, GET_BROKER_CLUSTER_ACL_INFO
//! 52, UPDATE_GLOBAL_WHITE_ADDRS_CONFIG 53). The admin's own credentials sign them.

use std::collections::BTreeMap;

use remoting::code::request;
use remoting::command::RemotingCommand;
use serde::Deserialize;

use super::Admin;
use crate::error::{ClientError, Result};

/// An account as `mqadmin updateAclConfig` gives it; absent fields keep their value on
/// the broker.
#[derive(Debug, Clone, Default)]
pub struct AclAccount {
    pub access_key: String,
    pub secret_key: String,
    pub white_remote_address: Option<String>,
    pub admin: Option<bool>,
    pub default_topic_perm: Option<String>,
    pub default_group_perm: Option<String>,
    /// `topic=PERM` entries.
    pub topic_perms: Option<Vec<String>>,
    pub group_perms: Option<Vec<String>>,
}

/// A file's version: how many times it was changed, and when last.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct AclVersion {
    pub counter: i64,
    pub timestamp: i64,
}

/// What GET_BROKER_CLUSTER_ACL_INFO answers.
#[derive(Debug, Clone, Default)]
pub struct AclVersions {
    pub cluster_name: String,
    pub broker_name: String,
    pub broker_addr: String,
    pub version: AclVersion,
    /// Every ACL file of the broker with its version.
    pub files: BTreeMap<String, AclVersion>,
}

impl Admin {
    pub async fn update_acl_account(&self, addr: &str, account: &AclAccount) -> Result<()> {
        let mut command = RemotingCommand::request(request::UPDATE_AND_CREATE_ACL_CONFIG);
        let fields = &mut command.ext_fields;
        fields.insert("accessKey".into(), account.access_key.clone());
        fields.insert("secretKey".into(), account.secret_key.clone());
        let optional = [
            ("whiteRemoteAddress", account.white_remote_address.clone()),
            ("admin", account.admin.map(|a| a.to_string())),
            ("defaultTopicPerm", account.default_topic_perm.clone()),
            ("defaultGroupPerm", account.default_group_perm.clone()),
            (
                "topicPerms",
                account.topic_perms.as_ref().map(|p| p.join(",")),
            ),
            (
                "groupPerms",
                account.group_perms.as_ref().map(|p| p.join(",")),
            ),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                fields.insert(key.into(), value);
            }
        }
        self.instance
            .invoke_ok(addr, command, self.timeout())
            .await
            .map(drop)
    }

    pub async fn delete_acl_account(&self, addr: &str, access_key: &str) -> Result<()> {
        let mut command = RemotingCommand::request(request::DELETE_ACL_CONFIG);
        command
            .ext_fields
            .insert("accessKey".into(), access_key.to_owned());
        self.instance
            .invoke_ok(addr, command, self.timeout())
            .await
            .map(drop)
    }

    /// Replaces the global whitelist of `file` (the broker's default file when `None`).
    pub async fn update_global_white_addrs(
        &self,
        addr: &str,
        addresses: &[String],
        file: Option<&str>,
    ) -> Result<()> {
        let mut command = RemotingCommand::request(request::UPDATE_GLOBAL_WHITE_ADDRS_CONFIG);
        command
            .ext_fields
            .insert("globalWhiteAddrs".into(), addresses.join(","));
        if let Some(file) = file {
            command
                .ext_fields
                .insert("aclFileFullPath".into(), file.to_owned());
        }
        self.instance
            .invoke_ok(addr, command, self.timeout())
            .await
            .map(drop)
    }

    pub async fn acl_versions(&self, addr: &str) -> Result<AclVersions> {
        let command = RemotingCommand::request(request::GET_BROKER_CLUSTER_ACL_INFO);
        let response = self
            .instance
            .invoke_ok(addr, command, self.timeout())
            .await?;
        let field = |key: &str| response.ext_field(key).unwrap_or_default().to_owned();
        let version = serde_json::from_str(&field("version")).unwrap_or_default();
        let files = match response.ext_field("allAclFileVersion") {
            Some(json) => {
                serde_json::from_str(json).map_err(|e| ClientError::malformed(addr, e))?
            }
            None => BTreeMap::new(),
        };
        Ok(AclVersions {
            cluster_name: field("clusterName"),
            broker_name: field("brokerName"),
            broker_addr: field("brokerAddr"),
            version,
            files,
        })
    }
}
