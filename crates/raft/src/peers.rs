//! Node identities and the DLedger-style peer list (`dLegerPeers=n0-127.0.0.1:40911;n1-...`).

use std::fmt;

/// A member of a raft group. Written `n<number>` the way DLedger and RocketMQ name nodes
/// (`dLegerSelfId=n0`); the number is what goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

impl std::str::FromStr for NodeId {
    type Err = PeerParseError;

    /// Accepts a name made of letters followed by a number (`n0`, `node12`); the number is the
    /// id, so `n1` and `node1` are the same node.
    fn from_str(name: &str) -> Result<NodeId, PeerParseError> {
        let name = name.trim();
        let digits_at = name
            .find(|c: char| c.is_ascii_digit())
            .ok_or_else(|| PeerParseError::BadId(name.to_string()))?;
        let (prefix, digits) = name.split_at(digits_at);
        if !prefix.chars().all(|c| c.is_ascii_alphabetic())
            || digits.is_empty()
            || !digits.chars().all(|c| c.is_ascii_digit())
        {
            return Err(PeerParseError::BadId(name.to_string()));
        }
        digits
            .parse::<u32>()
            .map(NodeId)
            .map_err(|_| PeerParseError::BadId(name.to_string()))
    }
}

/// One entry of the peer list: who, and where its raft port listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSpec {
    pub id: NodeId,
    /// The name as written in the configuration (`n0`).
    pub name: String,
    /// `host:port`, resolved when connecting so that host names work.
    pub addr: String,
}

/// Why a peer list or id cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerParseError {
    #[error("peer list is empty")]
    Empty,
    #[error("peer entry {0:?} is not `<id>-<host>:<port>`")]
    BadEntry(String),
    #[error("peer id {0:?} is not letters followed by a number, like n0")]
    BadId(String),
    #[error("peer address {0:?} is not `<host>:<port>` with a port in 1..=65535")]
    BadAddr(String),
    #[error("peer id {0} appears twice")]
    Duplicate(NodeId),
    #[error("self id {0} is not in the peer list")]
    SelfNotListed(NodeId),
    #[error("a group has at most {max} members, the list has {got}")]
    TooMany { max: usize, got: usize },
}

/// The largest group this crate runs. Groups of 1, 3 and 5 are the intended sizes; an even or
/// larger group works but buys no extra fault tolerance.
pub const MAX_GROUP_SIZE: usize = 9;

/// Parses DLedger's `dLegerPeers` syntax: entries separated by `;`, each `<id>-<host>:<port>`
/// (the first `-` separates id and address, so host names may contain dashes).
pub fn parse_peers(list: &str) -> Result<Vec<PeerSpec>, PeerParseError> {
    let mut peers: Vec<PeerSpec> = Vec::new();
    for raw in list.split(';') {
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        let (name, addr) = raw
            .split_once('-')
            .ok_or_else(|| PeerParseError::BadEntry(raw.to_string()))?;
        let id: NodeId = name.parse()?;
        let addr = addr.trim();
        let port_ok = addr
            .rsplit_once(':')
            .map(|(host, port)| !host.is_empty() && matches!(port.parse::<u16>(), Ok(p) if p > 0))
            .unwrap_or(false);
        if !port_ok {
            return Err(PeerParseError::BadAddr(addr.to_string()));
        }
        if peers.iter().any(|p| p.id == id) {
            return Err(PeerParseError::Duplicate(id));
        }
        peers.push(PeerSpec {
            id,
            name: name.trim().to_string(),
            addr: addr.to_string(),
        });
    }
    if peers.is_empty() {
        return Err(PeerParseError::Empty);
    }
    if peers.len() > MAX_GROUP_SIZE {
        return Err(PeerParseError::TooMany {
            max: MAX_GROUP_SIZE,
            got: peers.len(),
        });
    }
    Ok(peers)
}

/// Parses `dLegerPeers` and `dLegerSelfId` together, checking that self is a member.
pub fn parse_group(peers: &str, self_id: &str) -> Result<(NodeId, Vec<PeerSpec>), PeerParseError> {
    let peers = parse_peers(peers)?;
    let id: NodeId = self_id.parse()?;
    if !peers.iter().any(|p| p.id == id) {
        return Err(PeerParseError::SelfNotListed(id));
    }
    Ok((id, peers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dledger_syntax() {
        let peers =
            parse_peers("n0-127.0.0.1:40911;n1-127.0.0.1:40912;n2-broker-c.local:40913").unwrap();
        assert_eq!(peers.len(), 3);
        assert_eq!(peers[0].id, NodeId(0));
        assert_eq!(peers[2].addr, "broker-c.local:40913");
        assert_eq!(peers[1].name, "n1");
    }

    #[test]
    fn tolerates_spaces_and_trailing_separator() {
        let peers = parse_peers(" n0-127.0.0.1:1 ; n1-127.0.0.1:2 ;").unwrap();
        assert_eq!(peers.len(), 2);
    }

    #[test]
    fn rejects_bad_input_with_a_reason() {
        assert_eq!(parse_peers(""), Err(PeerParseError::Empty));
        assert!(matches!(
            parse_peers("n0"),
            Err(PeerParseError::BadEntry(_))
        ));
        assert!(matches!(
            parse_peers("x-1.2.3.4:5"),
            Err(PeerParseError::BadId(_))
        ));
        assert!(matches!(
            parse_peers("n0-1.2.3.4"),
            Err(PeerParseError::BadAddr(_))
        ));
        assert!(matches!(
            parse_peers("n0-1.2.3.4:0"),
            Err(PeerParseError::BadAddr(_))
        ));
        assert!(matches!(
            parse_peers("n0-1.2.3.4:99999"),
            Err(PeerParseError::BadAddr(_))
        ));
        assert_eq!(
            parse_peers("n0-a:1;node0-b:2"),
            Err(PeerParseError::Duplicate(NodeId(0)))
        );
        assert_eq!(
            parse_group("n0-a:1;n1-b:2", "n2"),
            Err(PeerParseError::SelfNotListed(NodeId(2)))
        );
        let many: Vec<String> = (0..10).map(|i| format!("n{i}-h:{}", i + 1)).collect();
        assert!(matches!(
            parse_peers(&many.join(";")),
            Err(PeerParseError::TooMany { .. })
        ));
    }

    #[test]
    fn group_of_one() {
        let (id, peers) = parse_group("n0-127.0.0.1:40911", "n0").unwrap();
        assert_eq!(id, NodeId(0));
        assert_eq!(peers.len(), 1);
    }
}
