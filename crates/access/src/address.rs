//! Remote-address patterns of `plain_acl.yml` (`globalWhiteRemoteAddresses`, an account's
//! `whiteRemoteAddress`), as RocketMQ reads them: `*` (everyone), an exact address, a list
//! (`192.168.0.1,192.168.0.2`), braces (`192.168.1.{1,2,3}`), and IPv4 ranges where the
//! first of the last three octets that is `*` or `x-y` is the range (`192.168.0.*`,
//! `192.168.0.1-100`, `10.*.*.*`). IPv6 addresses are matched exactly (RocketMQ's IPv6
//! ranges are not supported here and are refused when the file loads).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressPattern {
    Nobody,
    Everyone,
    Exact(BTreeSet<IpAddr>),
    /// IPv4 addresses whose first `prefix.len()` octets are `prefix` and whose next octet
    /// lies in `low..=high`.
    Range {
        prefix: Vec<u8>,
        low: u8,
        high: u8,
    },
}

impl AddressPattern {
    pub fn parse(text: &str) -> Result<AddressPattern, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(AddressPattern::Nobody);
        }
        if matches!(text, "*" | "*.*.*.*" | "*:*:*:*:*:*:*:*") {
            return Ok(AddressPattern::Everyone);
        }
        if let Some(open) = text.find('{').filter(|_| text.ends_with('}')) {
            let prefix = &text[..open];
            let items = &text[open + 1..text.len() - 1];
            let addresses = items
                .split(',')
                .map(|item| exact(&format!("{prefix}{}", item.trim())))
                .collect::<Result<BTreeSet<_>, _>>()?;
            return Ok(AddressPattern::Exact(addresses));
        }
        if text.contains(',') {
            let addresses = text
                .split(',')
                .map(|item| exact(item.trim()))
                .collect::<Result<BTreeSet<_>, _>>()?;
            return Ok(AddressPattern::Exact(addresses));
        }
        if text.contains('*') || text.contains('-') {
            return range(text);
        }
        Ok(AddressPattern::Exact(BTreeSet::from([exact(text)?])))
    }

    pub fn matches(&self, ip: IpAddr) -> bool {
        match self {
            AddressPattern::Nobody => false,
            AddressPattern::Everyone => true,
            AddressPattern::Exact(addresses) => addresses.contains(&canonical(ip)),
            AddressPattern::Range { prefix, low, high } => match canonical(ip) {
                IpAddr::V4(v4) => {
                    let octets = v4.octets();
                    octets.starts_with(prefix)
                        && octets
                            .get(prefix.len())
                            .is_some_and(|o| (*low..=*high).contains(o))
                }
                IpAddr::V6(_) => false,
            },
        }
    }
}

/// An IPv4 peer seen through an IPv6 socket is matched as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn exact(text: &str) -> Result<IpAddr, String> {
    let trimmed = text.trim().trim_start_matches('[').trim_end_matches(']');
    trimmed
        .parse::<IpAddr>()
        .map(canonical)
        .map_err(|_| format!("`{text}` is not an IP address"))
}

fn range(text: &str) -> Result<AddressPattern, String> {
    let bad = || format!("`{text}` is not an address pattern (e.g. 192.168.0.*, 192.168.0.1-100)");
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() != 4 {
        return Err(bad());
    }
    let octet = |s: &str| s.trim().parse::<u8>().map_err(|_| bad());
    let mut prefix = vec![octet(parts[0])?];
    for part in &parts[1..] {
        let part = part.trim();
        if part == "*" {
            return Ok(AddressPattern::Range {
                prefix,
                low: 0,
                high: 255,
            });
        }
        if let Some((low, high)) = part.split_once('-') {
            let (low, high) = (octet(low)?, octet(high)?);
            if low > high {
                return Err(bad());
            }
            return Ok(AddressPattern::Range { prefix, low, high });
        }
        prefix.push(octet(part)?);
    }
    // Four literal octets with a `-` elsewhere cannot happen; an exact address is fine.
    let [a, b, c, d] = [prefix[0], prefix[1], prefix[2], prefix[3]];
    Ok(AddressPattern::Exact(BTreeSet::from([IpAddr::V4(
        Ipv4Addr::new(a, b, c, d),
    )])))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn rocketmq_patterns() {
        let p = AddressPattern::parse("192.168.0.*").unwrap();
        assert!(p.matches(ip("192.168.0.77")));
        assert!(!p.matches(ip("192.168.1.77")));
        let p = AddressPattern::parse("192.168.0.1-100").unwrap();
        assert!(p.matches(ip("192.168.0.100")));
        assert!(!p.matches(ip("192.168.0.101")));
        let p = AddressPattern::parse("10.*.*.*").unwrap();
        assert!(p.matches(ip("10.9.8.7")));
        let p = AddressPattern::parse("192.168.1.{1,2,3}").unwrap();
        assert!(p.matches(ip("192.168.1.2")));
        assert!(!p.matches(ip("192.168.1.4")));
        let p = AddressPattern::parse("127.0.0.1, 10.0.0.2").unwrap();
        assert!(p.matches(ip("10.0.0.2")));
        assert!(p.matches(ip("::ffff:127.0.0.1")));
        assert!(AddressPattern::parse("*").unwrap().matches(ip("1.2.3.4")));
        assert!(!AddressPattern::parse("").unwrap().matches(ip("1.2.3.4")));
        assert!(AddressPattern::parse("::1").unwrap().matches(ip("::1")));
        assert!(AddressPattern::parse("*.168.0.1").is_err());
        assert!(AddressPattern::parse("192.168.0.9-2").is_err());
        assert!(AddressPattern::parse("not-an-address").is_err());
        assert!(AddressPattern::parse("1.2.3").is_err());
    }
}
