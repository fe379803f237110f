//! One `plain_acl.yml` file: `globalWhiteRemoteAddresses`, `accounts` (accessKey,
//! secretKey, whiteRemoteAddress, admin, defaultTopicPerm, defaultGroupPerm, topicPerms,
//! groupPerms) and `dataVersion`, read and written in RocketMQ's layout. Unknown keys are
//! ignored; a bad account or address pattern is an error naming it.

use yaml_rust2::yaml::Hash;
use yaml_rust2::{Yaml, YamlEmitter, YamlLoader};

use super::address::AddressPattern;
use super::perm;

/// RocketMQ refuses access and secret keys of 6 characters or fewer.
pub const MIN_KEY_LEN: usize = 7;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub access_key: String,
    pub secret_key: String,
    pub white_remote_address: Option<String>,
    pub admin: bool,
    /// As written (an absent or misspelt permission is DENY when checked).
    pub default_topic_perm: Option<String>,
    pub default_group_perm: Option<String>,
    /// `name=PERM` entries.
    pub topic_perms: Vec<String>,
    pub group_perms: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DataVersion {
    pub counter: i64,
    pub timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlainAclFile {
    pub global_white_remote_addresses: Vec<String>,
    pub accounts: Vec<Account>,
    pub data_version: DataVersion,
}

/// Why a file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlainAclError {
    #[error("not YAML: {0}")]
    Yaml(String),
    #[error("{0}")]
    Invalid(String),
}

/// A `name=PERM` entry split, or why it is not one.
pub fn resource_entry(entry: &str) -> Result<(String, u8), PlainAclError> {
    let parts: Vec<&str> = entry
        .split('=')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    match parts.as_slice() {
        [name, permission] => Ok(((*name).to_owned(), perm::parse(Some(permission)))),
        _ => Err(PlainAclError::Invalid(format!(
            "Parse resource permission failed for topic|group:{entry}"
        ))),
    }
}

impl Account {
    /// The checks RocketMQ makes when it loads an account.
    pub fn validate(&self) -> Result<(), PlainAclError> {
        if self.access_key.len() < MIN_KEY_LEN {
            return Err(PlainAclError::Invalid(format!(
                "The accessKey={} cannot be null and length should longer than 6",
                self.access_key
            )));
        }
        if self.secret_key.len() < MIN_KEY_LEN {
            return Err(PlainAclError::Invalid(format!(
                "The secretKey of accessKey={} cannot be null and length should longer than 6",
                self.access_key
            )));
        }
        if let Some(address) = &self.white_remote_address {
            AddressPattern::parse(address).map_err(PlainAclError::Invalid)?;
        }
        for entry in self.topic_perms.iter().chain(&self.group_perms) {
            resource_entry(entry)?;
        }
        Ok(())
    }
}

fn text(value: &Yaml) -> Option<String> {
    match value {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        // YAML reads `12345678` as a number; RocketMQ keeps it as the key's text.
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn texts(value: &Yaml) -> Vec<String> {
    match value {
        Yaml::Array(items) => items.iter().filter_map(text).collect(),
        // A single string where a list is expected: RocketMQ's whitelists accept a comma
        // list in one string too.
        other => text(other).into_iter().collect(),
    }
}

fn key(name: &str) -> Yaml {
    Yaml::String(name.to_owned())
}

impl PlainAclFile {
    pub fn parse(source: &str) -> Result<PlainAclFile, PlainAclError> {
        let docs =
            YamlLoader::load_from_str(source).map_err(|e| PlainAclError::Yaml(e.to_string()))?;
        let Some(doc) = docs.into_iter().next() else {
            return Ok(PlainAclFile::default());
        };
        if matches!(doc, Yaml::Null) {
            return Ok(PlainAclFile::default());
        }
        if doc.as_hash().is_none() {
            return Err(PlainAclError::Invalid(
                "the file must be a map with globalWhiteRemoteAddresses and accounts".into(),
            ));
        }
        let global_white_remote_addresses = texts(&doc["globalWhiteRemoteAddresses"]);
        for address in &global_white_remote_addresses {
            AddressPattern::parse(address).map_err(PlainAclError::Invalid)?;
        }
        let mut accounts = Vec::new();
        if let Some(items) = doc["accounts"].as_vec() {
            for item in items {
                let account = Account {
                    access_key: text(&item["accessKey"]).unwrap_or_default(),
                    secret_key: text(&item["secretKey"]).unwrap_or_default(),
                    white_remote_address: text(&item["whiteRemoteAddress"])
                        .filter(|a| !a.trim().is_empty()),
                    admin: match &item["admin"] {
                        Yaml::Boolean(b) => *b,
                        Yaml::String(s) => s.eq_ignore_ascii_case("true"),
                        _ => false,
                    },
                    default_topic_perm: text(&item["defaultTopicPerm"]),
                    default_group_perm: text(&item["defaultGroupPerm"]),
                    topic_perms: texts(&item["topicPerms"]),
                    group_perms: texts(&item["groupPerms"]),
                };
                account.validate()?;
                accounts.push(account);
            }
        }
        let version = match &doc["dataVersion"] {
            Yaml::Array(items) => items.first().cloned().unwrap_or(Yaml::Null),
            other => other.clone(),
        };
        let data_version = DataVersion {
            counter: version["counter"].as_i64().unwrap_or(0),
            timestamp: version["timestamp"].as_i64().unwrap_or(0),
        };
        Ok(PlainAclFile {
            global_white_remote_addresses,
            accounts,
            data_version,
        })
    }

    /// The file's text, in RocketMQ's layout.
    pub fn to_yaml(&self) -> String {
        let strings =
            |items: &[String]| Yaml::Array(items.iter().map(|s| Yaml::String(s.clone())).collect());
        let mut root = Hash::new();
        root.insert(
            key("globalWhiteRemoteAddresses"),
            strings(&self.global_white_remote_addresses),
        );
        let accounts = self
            .accounts
            .iter()
            .map(|a| {
                let mut account = Hash::new();
                account.insert(key("accessKey"), Yaml::String(a.access_key.clone()));
                account.insert(key("secretKey"), Yaml::String(a.secret_key.clone()));
                if let Some(address) = &a.white_remote_address {
                    account.insert(key("whiteRemoteAddress"), Yaml::String(address.clone()));
                }
                account.insert(key("admin"), Yaml::Boolean(a.admin));
                if let Some(p) = &a.default_topic_perm {
                    account.insert(key("defaultTopicPerm"), Yaml::String(p.clone()));
                }
                if let Some(p) = &a.default_group_perm {
                    account.insert(key("defaultGroupPerm"), Yaml::String(p.clone()));
                }
                account.insert(key("topicPerms"), strings(&a.topic_perms));
                account.insert(key("groupPerms"), strings(&a.group_perms));
                Yaml::Hash(account)
            })
            .collect();
        root.insert(key("accounts"), Yaml::Array(accounts));
        let mut version = Hash::new();
        version.insert(key("counter"), Yaml::Integer(self.data_version.counter));
        version.insert(key("timestamp"), Yaml::Integer(self.data_version.timestamp));
        root.insert(key("dataVersion"), Yaml::Array(vec![Yaml::Hash(version)]));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = YamlEmitter::new(&mut out).dump(&Yaml::Hash(root));
        out.push('\n');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
globalWhiteRemoteAddresses:
  - 10.10.103.*
  - 192.168.0.*
accounts:
  - accessKey: RocketMQ
    secretKey: 12345678
    whiteRemoteAddress:
    admin: false
    defaultTopicPerm: DENY
    defaultGroupPerm: SUB
    topicPerms:
      - topicA=DENY
      - topicB=PUB|SUB
      - topicC=SUB
    groupPerms:
      - groupA=DENY
      - groupB=PUB|SUB
      - groupC=SUB
    someFutureKey: ignored
  - accessKey: rocketmq2
    secretKey: 12345678
    whiteRemoteAddress: 192.168.1.*
    admin: true
dataVersion:
  - counter: 3
    timestamp: 1700000000000
"#;

    #[test]
    fn reads_rocketmqs_sample_and_writes_it_back() {
        let file = PlainAclFile::parse(SAMPLE).unwrap();
        assert_eq!(file.global_white_remote_addresses.len(), 2);
        assert_eq!(file.accounts.len(), 2);
        let first = &file.accounts[0];
        assert_eq!(first.secret_key, "12345678");
        assert_eq!(first.white_remote_address, None);
        assert_eq!(first.topic_perms[1], "topicB=PUB|SUB");
        assert!(file.accounts[1].admin);
        assert_eq!(file.data_version.counter, 3);
        let again = PlainAclFile::parse(&file.to_yaml()).unwrap();
        assert_eq!(again, file);
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let short = "accounts:\n  - accessKey: short\n    secretKey: 12345678\n";
        let e = PlainAclFile::parse(short).unwrap_err().to_string();
        assert!(e.contains("accessKey=short"), "{e}");
        let bad_entry = "accounts:\n  - accessKey: RocketMQ\n    secretKey: 12345678\n    topicPerms:\n      - justatopic\n";
        let e = PlainAclFile::parse(bad_entry).unwrap_err().to_string();
        assert!(e.contains("justatopic"), "{e}");
        let bad_address = "globalWhiteRemoteAddresses:\n  - 300.1.1.1\n";
        assert!(PlainAclFile::parse(bad_address).is_err());
        assert!(PlainAclFile::parse("accounts: [unclosed").is_err());
        assert!(PlainAclFile::parse("- just\n- a list\n").is_err());
        assert_eq!(PlainAclFile::parse("").unwrap(), PlainAclFile::default());
    }
}
