//! ACL 2.0's vocabulary, checked: users, subjects, resources and their patterns, actions,
//! decisions, policy types and source addresses, each spelled on the wire as RocketMQ 5.3
//! spells it (names read case-insensitively, written canonically). A value that reached
//! one of these types is valid; the wire bodies ([`remoting::body::auth`]) are not yet.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Declares an enum whose values travel by name: `parse` (case-insensitive), `name`, and
/// serde through the name.
macro_rules! named {
    ($(#[$doc:meta])* $ty:ident { $($variant:ident => $name:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub enum $ty { $($variant),* }

        impl $ty {
            pub fn parse(text: &str) -> Option<$ty> {
                let text = text.trim();
                $( if text.eq_ignore_ascii_case($name) { return Some($ty::$variant); } )*
                None
            }

            pub fn name(self) -> &'static str {
                match self { $($ty::$variant => $name),* }
            }
        }

        impl TryFrom<String> for $ty {
            type Error = String;
            fn try_from(text: String) -> Result<$ty, String> {
                $ty::parse(&text).ok_or_else(|| format!("unknown {} `{text}`", stringify!($ty)))
            }
        }

        impl From<$ty> for String {
            fn from(value: $ty) -> String {
                value.name().to_owned()
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

named!(
    /// A super user passes every authorization; a normal one only what its policies allow.
    UserType { Super => "Super", Normal => "Normal" }
);
named!(
    /// A disabled user fails authentication.
    UserStatus { Enable => "enable", Disable => "disable" }
);
named!(Decision { Allow => "Allow", Deny => "Deny" });
named!(
    /// Custom entries are consulted first; Default ones only when no custom entry matches.
    PolicyType { Custom => "Custom", Default => "Default" }
);
named!(
    /// `All` in a policy grants every action; `Any` exists only in requests ("any one of
    /// these will do") and is refused in a policy.
    Action {
        All => "All", Any => "Any", Pub => "Pub", Sub => "Sub", Create => "Create",
        Update => "Update", Delete => "Delete", Get => "Get", List => "List",
    }
);
named!(ResourceType {
    Any => "Any", Cluster => "Cluster", Namespace => "Namespace", Topic => "Topic",
    Group => "Group",
});

/// A user's password: the HMAC key of its signatures, so it is kept as given (as RocketMQ
/// keeps it), and `{:?}` never shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    pub fn new(text: impl Into<String>) -> Password {
        Password(text.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub username: String,
    pub password: Password,
    pub user_type: UserType,
    pub user_status: UserStatus,
}

/// The subject key of a user's ACL: `User:<name>`.
pub fn subject_of(username: &str) -> String {
    format!("User:{username}")
}

/// The username in a subject key (`User:alice`, the type read case-insensitively).
pub fn subject_user(subject: &str) -> Option<&str> {
    let (kind, name) = subject.trim().split_once(':')?;
    (kind.eq_ignore_ascii_case("User") && !name.is_empty()).then_some(name)
}

/// How a policy entry's resource name matches a request's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Pattern {
    Any,
    Literal(String),
    Prefixed(String),
}

/// `*`, `Topic:*`, `Topic:orders`, `Group:billing*`, `Cluster:DefaultCluster`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Resource {
    pub kind: ResourceType,
    pub pattern: Pattern,
}

impl Resource {
    pub fn parse(text: &str) -> Option<Resource> {
        let text = text.trim();
        if text == "*" {
            return Some(Resource {
                kind: ResourceType::Any,
                pattern: Pattern::Any,
            });
        }
        let (kind, name) = text.split_once(':')?;
        let kind = ResourceType::parse(kind)?;
        let pattern = match name.find('*') {
            Some(0) => Pattern::Any,
            Some(star) => Pattern::Prefixed(name[..star].to_owned()),
            None if name.is_empty() => return None,
            None => Pattern::Literal(name.to_owned()),
        };
        Some(Resource { kind, pattern })
    }

    /// Whether this entry's resource covers the request's resource `kind:name`.
    pub fn covers(&self, kind: ResourceType, name: &str) -> bool {
        if self.kind == ResourceType::Any {
            return true;
        }
        self.kind == kind
            && match &self.pattern {
                Pattern::Any => true,
                Pattern::Literal(literal) => literal == name,
                Pattern::Prefixed(prefix) => name.starts_with(prefix.as_str()),
            }
    }

    /// Rank for choosing among matching entries: typed before `*`, literal before prefix
    /// before any, a longer prefix before a shorter one (lower ranks win).
    pub fn rank(&self) -> (u8, u8, std::cmp::Reverse<usize>) {
        let typed = u8::from(self.kind == ResourceType::Any);
        match &self.pattern {
            Pattern::Literal(_) => (typed, 0, std::cmp::Reverse(0)),
            Pattern::Prefixed(prefix) => (typed, 1, std::cmp::Reverse(prefix.len())),
            Pattern::Any => (typed, 2, std::cmp::Reverse(0)),
        }
    }
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.kind == ResourceType::Any {
            return f.write_str("*");
        }
        match &self.pattern {
            Pattern::Any => write!(f, "{}:*", self.kind),
            Pattern::Literal(name) => write!(f, "{}:{name}", self.kind),
            Pattern::Prefixed(prefix) => write!(f, "{}:{prefix}*", self.kind),
        }
    }
}

impl TryFrom<String> for Resource {
    type Error = String;
    fn try_from(text: String) -> Result<Resource, String> {
        Resource::parse(&text).ok_or_else(|| format!("bad resource `{text}`"))
    }
}

impl From<Resource> for String {
    fn from(resource: Resource) -> String {
        resource.to_string()
    }
}

/// A source address an entry is limited to: one address, or a CIDR block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SourceIp {
    text: String,
    network: IpAddr,
    prefix_len: u8,
}

impl SourceIp {
    pub fn parse(text: &str) -> Option<SourceIp> {
        let text = text.trim();
        let (address, prefix_len) = match text.split_once('/') {
            Some((address, bits)) => (address, Some(bits.parse::<u8>().ok()?)),
            None => (text, None),
        };
        let network: IpAddr = address.parse().ok()?;
        let width = if network.is_ipv4() { 32 } else { 128 };
        let prefix_len = prefix_len.unwrap_or(width);
        (prefix_len <= width).then(|| SourceIp {
            text: text.to_owned(),
            network,
            prefix_len,
        })
    }

    pub fn matches(&self, ip: IpAddr) -> bool {
        let ip = match (self.network, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            _ => ip,
        };
        let bits = |a: IpAddr| -> u128 {
            match a {
                IpAddr::V4(v4) => u128::from(u32::from(v4)) << 96,
                IpAddr::V6(v6) => u128::from(v6),
            }
        };
        if self.network.is_ipv4() != ip.is_ipv4() {
            return false;
        }
        let mask = if self.prefix_len == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(self.prefix_len))
        };
        bits(self.network) & mask == bits(ip) & mask
    }
}

impl TryFrom<String> for SourceIp {
    type Error = String;
    fn try_from(text: String) -> Result<SourceIp, String> {
        SourceIp::parse(&text).ok_or_else(|| format!("bad source ip `{text}`"))
    }
}

impl From<SourceIp> for String {
    fn from(ip: SourceIp) -> String {
        ip.text
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyEntry {
    pub resource: Resource,
    pub actions: Vec<Action>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_ips: Vec<SourceIp>,
    pub decision: Decision,
}

impl PolicyEntry {
    /// Whether this entry speaks to a request for `actions` on `kind:name` from `ip`.
    pub fn matches(&self, kind: ResourceType, name: &str, actions: &[Action], ip: IpAddr) -> bool {
        self.resource.covers(kind, name)
            && !self.actions.is_empty()
            && (self.actions.contains(&Action::All)
                || actions.contains(&Action::Any)
                || actions.iter().any(|a| self.actions.contains(a)))
            && (self.source_ips.is_empty() || self.source_ips.iter().any(|s| s.matches(ip)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub policy_type: PolicyType,
    pub entries: Vec<PolicyEntry>,
}

/// A subject's policies (at most one per policy type).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Acl {
    pub subject: String,
    pub policies: Vec<Policy>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_read_and_print_as_rocketmq_writes_them() {
        for text in [
            "*",
            "Topic:*",
            "Topic:orders",
            "Group:bill*",
            "Cluster:DefaultCluster",
        ] {
            assert_eq!(Resource::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(Resource::parse("topic:t").unwrap().to_string(), "Topic:t");
        for bad in ["", "Topic:", "Queue:x", "orders"] {
            assert!(Resource::parse(bad).is_none(), "{bad}");
        }
        let prefix = Resource::parse("Topic:ord*").unwrap();
        assert!(prefix.covers(ResourceType::Topic, "orders"));
        assert!(!prefix.covers(ResourceType::Group, "orders"));
        assert!(!prefix.covers(ResourceType::Topic, "or"));
        assert!(Resource::parse("*")
            .unwrap()
            .covers(ResourceType::Group, "g"));
        assert_eq!(Action::parse("pub"), Some(Action::Pub));
        assert_eq!(UserStatus::parse("DISABLE"), Some(UserStatus::Disable));
    }

    #[test]
    fn source_ips_match_addresses_and_blocks() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let block = SourceIp::parse("10.1.0.0/16").unwrap();
        assert!(block.matches(ip("10.1.200.3")));
        assert!(!block.matches(ip("10.2.0.1")));
        assert!(block.matches(ip("::ffff:10.1.0.9")));
        assert!(SourceIp::parse("0.0.0.0/0").unwrap().matches(ip("8.8.8.8")));
        assert!(SourceIp::parse("127.0.0.1")
            .unwrap()
            .matches(ip("127.0.0.1")));
        assert!(!SourceIp::parse("127.0.0.1")
            .unwrap()
            .matches(ip("127.0.0.2")));
        assert!(SourceIp::parse("fd00::/8").unwrap().matches(ip("fd12::1")));
        for bad in ["", "10.0.0.0/33", "host", "1.2.3.4/x"] {
            assert!(SourceIp::parse(bad).is_none(), "{bad}");
        }
    }
}
