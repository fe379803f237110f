//! Message ids: the broker's offset msgId and the client's unique id (`UNIQ_KEY`).
//!
//! Offset msgId = store IP (4 or 16 bytes) | port (int32) | CommitLog offset (int64), as
//! uppercase hex: 32 characters for IPv4, 56 for IPv6. Decoders pick the IP width from the
//! length, like Java's `MessageDecoder.decodeMessageId`.
//!
//! Unique id (Java `MessageClientIDSetter`) = client IP (4 or 16) | low 16 bits of the pid
//! | a 4-byte per-process discriminator (Java: class-loader hash) | milliseconds since the
//! start of the current month (int32) | counter (int16), as uppercase hex. We take month
//! boundaries in UTC where Java uses the local zone; the id stays unique either way.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Hex length of an offset msgId with an IPv4 store host.
pub const OFFSET_MSG_ID_V4_LEN: usize = 32;
/// Hex length of an offset msgId with an IPv6 store host.
pub const OFFSET_MSG_ID_V6_LEN: usize = 56;
/// Hex length of a unique id from an IPv4 client.
pub const UNIQ_ID_V4_LEN: usize = 32;
/// Hex length of a unique id from an IPv6 client.
pub const UNIQ_ID_V6_LEN: usize = 56;

/// Why a message id string cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MsgIdError {
    #[error("message id `{0}` has length {1}; expected 32 (IPv4) or 56 (IPv6) hex characters")]
    BadLength(String, usize),
    #[error("message id `{0}` is not hexadecimal")]
    NotHex(String),
    #[error("message id `{0}` carries port {1}, out of range")]
    BadPort(String, i32),
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

fn push_hex(out: &mut String, bytes: &[u8]) {
    for byte in bytes {
        out.push(char::from(HEX_UPPER[usize::from(byte >> 4)]));
        out.push(char::from(HEX_UPPER[usize::from(byte & 0xF)]));
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Decodes hex (either case) into exactly `N` bytes; the caller checked the length.
fn parse_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let (high, low) = match pair {
            [high, low] => (hex_value(*high)?, hex_value(*low)?),
            _ => return None,
        };
        *byte = (high << 4) | low;
    }
    Some(out)
}

/// Uppercase hex of `bytes` (RocketMQ's `UtilAll.bytes2string`).
pub fn to_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    push_hex(&mut out, bytes);
    out
}

/// The offset msgId of the message at `commit_log_offset` on `store_host`.
pub fn offset_msg_id(store_host: SocketAddr, commit_log_offset: i64) -> String {
    let mut out = String::with_capacity(OFFSET_MSG_ID_V6_LEN);
    match store_host.ip() {
        IpAddr::V4(ip) => push_hex(&mut out, &ip.octets()),
        IpAddr::V6(ip) => push_hex(&mut out, &ip.octets()),
    }
    push_hex(&mut out, &i32::from(store_host.port()).to_be_bytes());
    push_hex(&mut out, &commit_log_offset.to_be_bytes());
    out
}

/// A decoded offset msgId.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetMsgId {
    pub store_host: SocketAddr,
    pub commit_log_offset: i64,
}

/// Decodes an offset msgId (32 or 56 hex characters, either case).
pub fn decode_offset_msg_id(msg_id: &str) -> Result<OffsetMsgId, MsgIdError> {
    let not_hex = || MsgIdError::NotHex(msg_id.to_owned());
    let (ip, rest): (IpAddr, &str) = match msg_id.len() {
        OFFSET_MSG_ID_V4_LEN => {
            let (ip_hex, rest) = split_hex(msg_id, 8).ok_or_else(not_hex)?;
            (
                Ipv4Addr::from(parse_hex::<4>(ip_hex).ok_or_else(not_hex)?).into(),
                rest,
            )
        }
        OFFSET_MSG_ID_V6_LEN => {
            let (ip_hex, rest) = split_hex(msg_id, 32).ok_or_else(not_hex)?;
            (
                Ipv6Addr::from(parse_hex::<16>(ip_hex).ok_or_else(not_hex)?).into(),
                rest,
            )
        }
        other => return Err(MsgIdError::BadLength(msg_id.to_owned(), other)),
    };
    let (port_hex, offset_hex) = split_hex(rest, 8).ok_or_else(not_hex)?;
    let port = i32::from_be_bytes(parse_hex::<4>(port_hex).ok_or_else(not_hex)?);
    let commit_log_offset = i64::from_be_bytes(parse_hex::<8>(offset_hex).ok_or_else(not_hex)?);
    let port = u16::try_from(port).map_err(|_| MsgIdError::BadPort(msg_id.to_owned(), port))?;
    Ok(OffsetMsgId {
        store_host: SocketAddr::new(ip, port),
        commit_log_offset,
    })
}

/// Splits at a byte index that must fall on a character boundary (non-ASCII input is
/// rejected here instead of panicking in `split_at`).
fn split_hex(text: &str, at: usize) -> Option<(&str, &str)> {
    Some((text.get(..at)?, text.get(at..)?))
}

/// The parts of a client unique id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UniqId {
    pub client_ip: IpAddr,
    pub pid_low16: u16,
    pub discriminator: u32,
    /// Milliseconds since the start of the month the id was made in.
    pub month_offset_ms: i32,
    pub counter: u16,
}

/// Parses a unique id laid out as Java makes them. C++ clients fill the first ten bytes
/// differently, so treat the IP and pid of foreign ids as opaque.
pub fn parse_uniq_id(id: &str) -> Result<UniqId, MsgIdError> {
    let not_hex = || MsgIdError::NotHex(id.to_owned());
    let (client_ip, rest): (IpAddr, &str) = match id.len() {
        UNIQ_ID_V4_LEN => {
            let (ip_hex, rest) = split_hex(id, 8).ok_or_else(not_hex)?;
            (
                Ipv4Addr::from(parse_hex::<4>(ip_hex).ok_or_else(not_hex)?).into(),
                rest,
            )
        }
        UNIQ_ID_V6_LEN => {
            let (ip_hex, rest) = split_hex(id, 32).ok_or_else(not_hex)?;
            (
                Ipv6Addr::from(parse_hex::<16>(ip_hex).ok_or_else(not_hex)?).into(),
                rest,
            )
        }
        other => return Err(MsgIdError::BadLength(id.to_owned(), other)),
    };
    let tail = parse_hex::<12>(rest).ok_or_else(not_hex)?;
    let [p0, p1, d0, d1, d2, d3, t0, t1, t2, t3, c0, c1] = tail;
    Ok(UniqId {
        client_ip,
        pid_low16: u16::from_be_bytes([p0, p1]),
        discriminator: u32::from_be_bytes([d0, d1, d2, d3]),
        month_offset_ms: i32::from_be_bytes([t0, t1, t2, t3]),
        counter: u16::from_be_bytes([c0, c1]),
    })
}

/// Makes unique ids in the Java client's format. One per process is enough; it is
/// lock-free and safe to share.
#[derive(Debug)]
pub struct UniqIdGenerator {
    /// Hex of IP | pid | discriminator, fixed for the generator's life.
    prefix: String,
    counter: AtomicU32,
}

impl UniqIdGenerator {
    /// A generator for a client at `client_ip` with a random discriminator.
    pub fn new(client_ip: IpAddr) -> Self {
        Self::with_discriminator(client_ip, std::process::id(), rand::random())
    }

    pub fn with_discriminator(client_ip: IpAddr, pid: u32, discriminator: u32) -> Self {
        let mut prefix = String::with_capacity(UNIQ_ID_V6_LEN);
        match client_ip {
            IpAddr::V4(ip) => push_hex(&mut prefix, &ip.octets()),
            IpAddr::V6(ip) => push_hex(&mut prefix, &ip.octets()),
        }
        // Java keeps the low 16 bits of the pid.
        push_hex(&mut prefix, &(pid as u16).to_be_bytes());
        push_hex(&mut prefix, &discriminator.to_be_bytes());
        UniqIdGenerator {
            prefix,
            counter: AtomicU32::new(0),
        }
    }

    /// A new id stamped with the current wall-clock time.
    pub fn next_id(&self) -> String {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        self.next_id_at(now_ms)
    }

    /// A new id stamped with `now_ms` (milliseconds since the Unix epoch).
    pub fn next_id_at(&self, now_ms: i64) -> String {
        let month_offset_ms = now_ms.saturating_sub(month_start_ms(now_ms));
        // Within one month the offset fits in i32 (31 days < 2^31 ms).
        let month_offset_ms = i32::try_from(month_offset_ms).unwrap_or(i32::MAX);
        let counter = self.counter.fetch_add(1, Ordering::Relaxed) as u16;
        let mut id = String::with_capacity(self.prefix.len() + 12);
        id.push_str(&self.prefix);
        push_hex(&mut id, &month_offset_ms.to_be_bytes());
        push_hex(&mut id, &counter.to_be_bytes());
        id
    }
}

const MS_PER_DAY: i64 = 86_400_000;

/// Milliseconds since the epoch at 00:00 UTC on the first day of the month holding `ms`.
pub fn month_start_ms(ms: i64) -> i64 {
    let days = ms.div_euclid(MS_PER_DAY);
    let (year, month, _) = civil_from_days(days);
    days_from_civil(year, month, 1) * MS_PER_DAY
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (era-based conversion).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153; // March = 0
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Day count since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month = i64::from(month);
    let shifted_month = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * shifted_month + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_msg_id_golden_ipv4() {
        let host: SocketAddr = "10.0.0.1:10911".parse().unwrap();
        let id = offset_msg_id(host, 0x1234);
        assert_eq!(id, "0A00000100002A9F0000000000001234");
        assert_eq!(id.len(), OFFSET_MSG_ID_V4_LEN);
        let decoded = decode_offset_msg_id(&id).unwrap();
        assert_eq!(decoded.store_host, host);
        assert_eq!(decoded.commit_log_offset, 0x1234);
        // Lowercase is accepted too.
        assert_eq!(decode_offset_msg_id(&id.to_lowercase()).unwrap(), decoded);
    }

    #[test]
    fn offset_msg_id_ipv6_round_trip() {
        let host: SocketAddr = "[2001:db8::1]:30911".parse().unwrap();
        let id = offset_msg_id(host, i64::MAX);
        assert_eq!(id.len(), OFFSET_MSG_ID_V6_LEN);
        assert!(id.starts_with("20010DB8"));
        let decoded = decode_offset_msg_id(&id).unwrap();
        assert_eq!(
            (decoded.store_host, decoded.commit_log_offset),
            (host, i64::MAX)
        );
    }

    #[test]
    fn malformed_offset_msg_ids_are_errors() {
        assert!(matches!(
            decode_offset_msg_id(""),
            Err(MsgIdError::BadLength(_, 0))
        ));
        assert!(matches!(
            decode_offset_msg_id("0A00"),
            Err(MsgIdError::BadLength(_, 4))
        ));
        let bad_hex = "0A00000100002A9F000000000000123G";
        assert!(matches!(
            decode_offset_msg_id(bad_hex),
            Err(MsgIdError::NotHex(_))
        ));
        // 32 bytes but containing a multi-byte character: must not panic.
        let non_ascii = "é0000100002A9F000000000000123400";
        assert!(decode_offset_msg_id(&non_ascii[..non_ascii.len() - 1]).is_err());
        let too_big_port = "0A000001FFFFFFFF0000000000001234";
        assert!(matches!(
            decode_offset_msg_id(too_big_port),
            Err(MsgIdError::BadPort(_, -1))
        ));
    }

    #[test]
    fn uniq_id_has_java_layout() {
        let generator = UniqIdGenerator::with_discriminator(
            "192.168.1.10".parse().unwrap(),
            0x0001_3039,
            0xCAFE_BABE,
        );
        // 2024-03-05T00:00:01.5Z is 4 days + 1.5 s into March.
        let now_ms = 1_709_596_801_500;
        let first = generator.next_id_at(now_ms);
        let second = generator.next_id_at(now_ms);
        assert_eq!(first.len(), UNIQ_ID_V4_LEN);
        assert_eq!(&first[..8], "C0A8010A");
        assert_eq!(&first[8..12], "3039");
        assert_eq!(&first[12..20], "CAFEBABE");
        assert_ne!(first, second);
        let parsed = parse_uniq_id(&second).unwrap();
        assert_eq!(parsed.client_ip, "192.168.1.10".parse::<IpAddr>().unwrap());
        assert_eq!(parsed.pid_low16, 0x3039);
        assert_eq!(parsed.discriminator, 0xCAFE_BABE);
        assert_eq!(parsed.month_offset_ms, 4 * 86_400_000 + 1_500);
        assert_eq!(parsed.counter, 1);
    }

    #[test]
    fn uniq_id_ipv6_and_counter_wraps() {
        let generator = UniqIdGenerator::with_discriminator("::1".parse().unwrap(), 7, 9);
        generator
            .counter
            .store(u32::from(u16::MAX), Ordering::Relaxed);
        let last = parse_uniq_id(&generator.next_id_at(0)).unwrap();
        let wrapped = parse_uniq_id(&generator.next_id_at(0)).unwrap();
        assert_eq!((last.counter, wrapped.counter), (u16::MAX, 0));
        assert_eq!(generator.next_id().len(), UNIQ_ID_V6_LEN);
        assert!(parse_uniq_id("ABC").is_err());
    }

    #[test]
    fn month_start_is_utc_first_of_month() {
        // 2024-02-29T23:59:59.999Z -> 2024-02-01T00:00:00Z
        assert_eq!(month_start_ms(1_709_251_199_999), 1_706_745_600_000);
        // 2024-03-01T00:00:00Z is its own month start.
        assert_eq!(month_start_ms(1_709_251_200_000), 1_709_251_200_000);
        assert_eq!(month_start_ms(0), 0);
        // Before the epoch: 1969-12-31 -> 1969-12-01.
        assert_eq!(month_start_ms(-1), -31 * 86_400_000);
        for days in [-800_000_i64, -1, 0, 59, 365 * 30, 800_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
