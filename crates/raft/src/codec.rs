//! Compact binary encoding of peer messages (big-endian, fixed-width fields).
//!
//! On TCP each message is one length-delimited frame (a 4-byte big-endian length, then the
//! bytes below). A connection starts with a [`Hello`] frame naming the sender and its group.
//!
//! | off | size | field |
//! |----:|-----:|-------|
//! | 0 | 1 | version (2: durable commit index in heartbeats and appends) |
//! | 1 | 1 | kind |
//! | 2 | 4 | from |
//! | 6 | 4 | to |
//! | 10 | 8 | term |
//! | 18 | .. | payload of the kind |
//!
//! An append's entries travel as their stored frames back to back, each delimited by the
//! size field of its own header, so the receiver slices them out without copying.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::entry::ENTRY_HEADER_LEN;
use crate::message::{
    Append, AppendResponse, AppendResult, Heartbeat, HeartbeatResponse, Message, Payload,
    RejectReason, VoteAnswer, VoteRequest, VoteResponse,
};
use crate::NodeId;

const VERSION: u8 = 2;
const HEADER_LEN: usize = 18;

const KIND_VOTE_REQUEST: u8 = 1;
const KIND_VOTE_RESPONSE: u8 = 2;
const KIND_HEARTBEAT: u8 = 3;
const KIND_HEARTBEAT_RESPONSE: u8 = 4;
const KIND_APPEND: u8 = 5;
const KIND_APPEND_RESPONSE: u8 = 6;
const KIND_TAKE_LEADERSHIP: u8 = 7;
const KIND_NOT_MEMBER: u8 = 8;
const KIND_ENTRY_REQUEST: u8 = 9;
const KIND_ENTRY_COPY: u8 = 10;

const HELLO_MAGIC: u32 = 0x5246_4831; // "RFH1"
/// Longest group name a hello may carry.
pub const MAX_GROUP_NAME_LEN: usize = 255;

/// Longest group settings text a [`Hello`] carries (a peer list of a few members).
pub const MAX_SETTINGS_LEN: usize = 4096;
/// Bytes of a hello's proof MAC (HmacSHA1).
pub const PROOF_MAC_LEN: usize = 20;
/// Longest hello frame: what a peer may send before it has said who it is.
pub const MAX_HELLO_LEN: usize =
    4 + 1 + 4 + 1 + MAX_GROUP_NAME_LEN + 2 + MAX_SETTINGS_LEN + 8 + 1 + PROOF_MAC_LEN;

/// Why bytes are not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("message truncated")]
    Truncated,
    #[error("unsupported version {0}")]
    Version(u8),
    #[error("unknown message kind {0}")]
    Kind(u8),
    #[error("invalid value {value} for {field}")]
    Value { field: &'static str, value: u64 },
    #[error("{0} trailing bytes")]
    Trailing(usize),
    #[error("bad hello")]
    Hello,
}

/// The first frame on a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub group: String,
    pub from: NodeId,
    /// What every member of the group must agree on (the peer list, the log's segment
    /// size), as text: a member configured differently is refused, not replicated into.
    pub settings: String,
    /// With a link secret: that the sender knows it (see `transport`), for the moment it
    /// dialed.
    pub proof: Option<HelloProof>,
}

/// A MAC under the group's link secret over the hello's fields and the time it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HelloProof {
    pub sent_at_ms: u64,
    pub mac: [u8; PROOF_MAC_LEN],
}

impl Hello {
    /// The bytes a proof covers: group, sender, settings and time, each delimited.
    pub fn proof_content(&self, sent_at_ms: u64) -> Vec<u8> {
        let mut content = Vec::with_capacity(self.group.len() + self.settings.len() + 24);
        content.extend_from_slice(self.group.as_bytes());
        content.push(0);
        content.extend_from_slice(&self.from.0.to_be_bytes());
        content.extend_from_slice(self.settings.as_bytes());
        content.push(0);
        content.extend_from_slice(&sent_at_ms.to_be_bytes());
        content
    }
}

pub fn encode_hello(hello: &Hello, out: &mut BytesMut) {
    let group = hello.group.as_bytes();
    let group = &group[..group.len().min(MAX_GROUP_NAME_LEN)];
    out.put_u32(HELLO_MAGIC);
    out.put_u8(VERSION);
    out.put_u32(hello.from.0);
    out.put_u8(group.len() as u8);
    out.put_slice(group);
    let settings = hello.settings.as_bytes();
    let settings = &settings[..settings.len().min(MAX_SETTINGS_LEN)];
    out.put_u16(settings.len() as u16);
    out.put_slice(settings);
    if let Some(proof) = &hello.proof {
        out.put_u64(proof.sent_at_ms);
        out.put_u8(PROOF_MAC_LEN as u8);
        out.put_slice(&proof.mac);
    }
}

pub fn decode_hello(mut buf: &[u8]) -> Result<Hello, CodecError> {
    if buf.remaining() < 10 || buf.get_u32() != HELLO_MAGIC {
        return Err(CodecError::Hello);
    }
    let version = buf.get_u8();
    if version != VERSION {
        return Err(CodecError::Version(version));
    }
    let from = NodeId(buf.get_u32());
    let len = buf.get_u8() as usize;
    if buf.remaining() < len + 2 {
        return Err(CodecError::Hello);
    }
    let group = String::from_utf8(buf[..len].to_vec()).map_err(|_| CodecError::Hello)?;
    buf.advance(len);
    let len = buf.get_u16() as usize;
    if len > MAX_SETTINGS_LEN || buf.remaining() < len {
        return Err(CodecError::Hello);
    }
    let settings = String::from_utf8(buf[..len].to_vec()).map_err(|_| CodecError::Hello)?;
    buf.advance(len);
    let proof = match buf.remaining() {
        0 => None,
        n if n == 8 + 1 + PROOF_MAC_LEN => {
            let sent_at_ms = buf.get_u64();
            if buf.get_u8() as usize != PROOF_MAC_LEN {
                return Err(CodecError::Hello);
            }
            let mut mac = [0u8; PROOF_MAC_LEN];
            buf.copy_to_slice(&mut mac);
            Some(HelloProof { sent_at_ms, mac })
        }
        _ => return Err(CodecError::Hello),
    };
    Ok(Hello {
        group,
        from,
        settings,
        proof,
    })
}

/// Bytes [`encode`] will write for `msg`.
pub fn encoded_len(msg: &Message) -> usize {
    HEADER_LEN
        + match &msg.payload {
            Payload::VoteRequest(_) => 17,
            Payload::VoteResponse(_) => 10,
            Payload::Heartbeat(_) => 16,
            Payload::HeartbeatResponse(_) => 1,
            Payload::Append(a) => {
                45 + a.entries.iter().map(Bytes::len).sum::<usize>()
                    + a.base_membership.as_ref().map_or(0, |m| 4 + m.len())
            }
            Payload::AppendResponse(_) => 9 + 24,
            Payload::TakeLeadership => 0,
            Payload::NotMember { .. } => 8,
            Payload::EntryRequest { .. } => 8,
            Payload::EntryCopy { frame, .. } => 8 + frame.len(),
        }
}

pub fn encode(msg: &Message, out: &mut BytesMut) {
    out.reserve(encoded_len(msg));
    out.put_u8(VERSION);
    out.put_u8(kind_of(&msg.payload));
    out.put_u32(msg.from.0);
    out.put_u32(msg.to.0);
    out.put_u64(msg.term);
    match &msg.payload {
        Payload::VoteRequest(r) => {
            out.put_u8(u8::from(r.pre_vote) | u8::from(r.take_leadership) << 1);
            out.put_u64(r.last_index);
            out.put_u64(r.last_term);
        }
        Payload::VoteResponse(r) => {
            out.put_u8(u8::from(r.pre_vote));
            out.put_u64(r.request_term);
            out.put_u8(answer_code(r.answer));
        }
        Payload::Heartbeat(h) => {
            out.put_u64(h.commit_index);
            out.put_u64(h.safe_index);
        }
        Payload::NotMember { membership_index } => out.put_u64(*membership_index),
        Payload::EntryRequest { index } => out.put_u64(*index),
        Payload::EntryCopy { index, frame } => {
            out.put_u64(*index);
            out.put_slice(frame);
        }
        Payload::HeartbeatResponse(r) => out.put_u8(match r {
            HeartbeatResponse::Success => 0,
            HeartbeatResponse::ExpiredTerm => 1,
            HeartbeatResponse::InconsistentLeader => 2,
        }),
        Payload::Append(a) => {
            out.put_u64(a.seq);
            out.put_u64(a.prev_index);
            out.put_u64(a.prev_term.unwrap_or(0));
            out.put_u64(a.commit_index);
            out.put_u64(a.safe_index);
            out.put_u8(
                u8::from(a.restart)
                    | u8::from(a.prev_term.is_some()) << 1
                    | u8::from(a.base_membership.is_some()) << 2,
            );
            out.put_u32(a.entries.len() as u32);
            for frame in &a.entries {
                out.put_slice(frame);
            }
            if let Some(membership) = &a.base_membership {
                out.put_u32(membership.len() as u32);
                out.put_slice(membership);
            }
        }
        Payload::AppendResponse(r) => {
            out.put_u64(r.seq);
            match r.result {
                AppendResult::Success {
                    match_index,
                    persisted_index,
                } => {
                    out.put_u8(0);
                    out.put_u64(match_index);
                    out.put_u64(persisted_index);
                }
                AppendResult::Inconsistent {
                    hint_index,
                    hint_term,
                    last_index,
                } => {
                    out.put_u8(1);
                    out.put_u64(hint_index);
                    out.put_u64(hint_term);
                    out.put_u64(last_index);
                }
                AppendResult::Rejected(reason) => {
                    out.put_u8(2);
                    out.put_u8(reject_code(reason));
                }
                AppendResult::ExpiredTerm => out.put_u8(3),
            }
        }
        Payload::TakeLeadership => {}
    }
}

/// Decodes one message. Entry frames are slices of `buf` (no copy); their checksums are
/// verified by the receiving node, not here.
pub fn decode(buf: Bytes) -> Result<Message, CodecError> {
    let mut r = Reader { buf, pos: 0 };
    let version = r.u8()?;
    if version != VERSION {
        return Err(CodecError::Version(version));
    }
    let kind = r.u8()?;
    let from = NodeId(r.u32()?);
    let to = NodeId(r.u32()?);
    let term = r.u64()?;
    let payload = match kind {
        KIND_VOTE_REQUEST => {
            let flags = r.u8()?;
            Payload::VoteRequest(VoteRequest {
                pre_vote: flags & 1 != 0,
                take_leadership: flags & 2 != 0,
                last_index: r.u64()?,
                last_term: r.u64()?,
            })
        }
        KIND_VOTE_RESPONSE => {
            let pre_vote = r.u8()? & 1 != 0;
            let request_term = r.u64()?;
            let answer = answer_from(r.u8()?)?;
            Payload::VoteResponse(VoteResponse {
                pre_vote,
                request_term,
                answer,
            })
        }
        KIND_NOT_MEMBER => Payload::NotMember {
            membership_index: r.u64()?,
        },
        KIND_HEARTBEAT => Payload::Heartbeat(Heartbeat {
            commit_index: r.u64()?,
            safe_index: r.u64()?,
        }),
        KIND_HEARTBEAT_RESPONSE => Payload::HeartbeatResponse(match r.u8()? {
            0 => HeartbeatResponse::Success,
            1 => HeartbeatResponse::ExpiredTerm,
            2 => HeartbeatResponse::InconsistentLeader,
            v => {
                return Err(CodecError::Value {
                    field: "heartbeat result",
                    value: u64::from(v),
                })
            }
        }),
        KIND_APPEND => {
            let seq = r.u64()?;
            let prev_index = r.u64()?;
            let prev_term = r.u64()?;
            let commit_index = r.u64()?;
            let safe_index = r.u64()?;
            let flags = r.u8()?;
            let count = r.u32()? as usize;
            if count > r.remaining() / ENTRY_HEADER_LEN {
                return Err(CodecError::Value {
                    field: "entry count",
                    value: count as u64,
                });
            }
            let mut entries = Vec::with_capacity(count);
            for _ in 0..count {
                entries.push(r.entry_frame()?);
            }
            let base_membership = if flags & 4 != 0 {
                let len = r.u32()? as usize;
                Some(r.bytes(len)?)
            } else {
                None
            };
            Payload::Append(Append {
                seq,
                prev_index,
                prev_term: (flags & 2 != 0).then_some(prev_term),
                commit_index,
                safe_index,
                restart: flags & 1 != 0,
                entries,
                base_membership,
            })
        }
        KIND_APPEND_RESPONSE => {
            let seq = r.u64()?;
            let result = match r.u8()? {
                0 => AppendResult::Success {
                    match_index: r.u64()?,
                    persisted_index: r.u64()?,
                },
                1 => AppendResult::Inconsistent {
                    hint_index: r.u64()?,
                    hint_term: r.u64()?,
                    last_index: r.u64()?,
                },
                2 => AppendResult::Rejected(reject_from(r.u8()?)?),
                3 => AppendResult::ExpiredTerm,
                v => {
                    return Err(CodecError::Value {
                        field: "append result",
                        value: u64::from(v),
                    })
                }
            };
            Payload::AppendResponse(AppendResponse { seq, result })
        }
        KIND_TAKE_LEADERSHIP => Payload::TakeLeadership,
        KIND_ENTRY_REQUEST => Payload::EntryRequest { index: r.u64()? },
        KIND_ENTRY_COPY => Payload::EntryCopy {
            index: r.u64()?,
            frame: r.entry_frame()?,
        },
        other => return Err(CodecError::Kind(other)),
    };
    if r.remaining() != 0 {
        return Err(CodecError::Trailing(r.remaining()));
    }
    Ok(Message {
        from,
        to,
        term,
        payload,
    })
}

fn kind_of(payload: &Payload) -> u8 {
    match payload {
        Payload::VoteRequest(_) => KIND_VOTE_REQUEST,
        Payload::VoteResponse(_) => KIND_VOTE_RESPONSE,
        Payload::Heartbeat(_) => KIND_HEARTBEAT,
        Payload::HeartbeatResponse(_) => KIND_HEARTBEAT_RESPONSE,
        Payload::Append(_) => KIND_APPEND,
        Payload::AppendResponse(_) => KIND_APPEND_RESPONSE,
        Payload::TakeLeadership => KIND_TAKE_LEADERSHIP,
        Payload::NotMember { .. } => KIND_NOT_MEMBER,
        Payload::EntryRequest { .. } => KIND_ENTRY_REQUEST,
        Payload::EntryCopy { .. } => KIND_ENTRY_COPY,
    }
}

const ANSWERS: [VoteAnswer; 9] = [
    VoteAnswer::Accept,
    VoteAnswer::RejectAlreadyVoted,
    VoteAnswer::RejectAlreadyHasLeader,
    VoteAnswer::RejectExpiredVoteTerm,
    VoteAnswer::RejectExpiredLedgerTerm,
    VoteAnswer::RejectSmallLedgerEndIndex,
    VoteAnswer::RejectTermNotReady,
    VoteAnswer::RejectTermSmallThanLedger,
    VoteAnswer::RejectTakingLeadership,
];

fn answer_code(answer: VoteAnswer) -> u8 {
    ANSWERS.iter().position(|&a| a == answer).unwrap_or(0) as u8
}

fn answer_from(code: u8) -> Result<VoteAnswer, CodecError> {
    ANSWERS
        .get(code as usize)
        .copied()
        .ok_or(CodecError::Value {
            field: "vote answer",
            value: u64::from(code),
        })
}

const REASONS: [RejectReason; 5] = [
    RejectReason::CorruptEntry,
    RejectReason::PositionMismatch,
    RejectReason::ConflictWithCommitted,
    RejectReason::InconsistentLeader,
    RejectReason::EmptyRestart,
];

fn reject_code(reason: RejectReason) -> u8 {
    REASONS.iter().position(|&r| r == reason).unwrap_or(0) as u8
}

fn reject_from(code: u8) -> Result<RejectReason, CodecError> {
    REASONS
        .get(code as usize)
        .copied()
        .ok_or(CodecError::Value {
            field: "reject reason",
            value: u64::from(code),
        })
}

struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&[u8], CodecError> {
        if self.remaining() < n {
            return Err(CodecError::Truncated);
        }
        let start = self.pos;
        self.pos += n;
        Ok(&self.buf[start..start + n])
    }

    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, CodecError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, CodecError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(b))
    }

    /// `n` bytes, sharing the buffer.
    fn bytes(&mut self, n: usize) -> Result<Bytes, CodecError> {
        if self.remaining() < n {
            return Err(CodecError::Truncated);
        }
        let bytes = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(bytes)
    }

    /// One entry frame, delimited by the size field of its header (bytes 4..8).
    fn entry_frame(&mut self) -> Result<Bytes, CodecError> {
        if self.remaining() < ENTRY_HEADER_LEN {
            return Err(CodecError::Truncated);
        }
        let s = &self.buf[self.pos + 4..self.pos + 8];
        let size = u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize;
        if size < ENTRY_HEADER_LEN || size > self.remaining() {
            return Err(CodecError::Value {
                field: "entry size",
                value: size as u64,
            });
        }
        let frame = self.buf.slice(self.pos..self.pos + size);
        self.pos += size;
        Ok(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{Entry, EntryKind};

    fn frame(index: u64, body: &'static [u8]) -> Bytes {
        let mut buf = BytesMut::new();
        Entry {
            kind: EntryKind::Normal,
            index,
            term: 3,
            pos: index * 100,
            channel: 1,
            body: Bytes::from_static(body),
        }
        .encode(&mut buf);
        buf.freeze()
    }

    fn samples() -> Vec<Message> {
        let payloads = vec![
            Payload::VoteRequest(VoteRequest {
                pre_vote: true,
                take_leadership: false,
                last_index: 9,
                last_term: 2,
            }),
            Payload::VoteResponse(VoteResponse {
                pre_vote: false,
                request_term: 4,
                answer: VoteAnswer::RejectTakingLeadership,
            }),
            Payload::Heartbeat(Heartbeat {
                commit_index: 77,
                safe_index: 70,
            }),
            Payload::HeartbeatResponse(HeartbeatResponse::InconsistentLeader),
            Payload::Append(Append {
                seq: 5,
                prev_index: 10,
                prev_term: Some(3),
                commit_index: 8,
                safe_index: 7,
                restart: false,
                entries: vec![frame(11, b"a"), frame(12, b"bcdef")],
                base_membership: None,
            }),
            Payload::Append(Append {
                seq: 6,
                prev_index: 0,
                prev_term: None,
                commit_index: 0,
                safe_index: 0,
                restart: true,
                entries: vec![],
                base_membership: None,
            }),
            Payload::Append(Append {
                seq: 7,
                prev_index: 0,
                prev_term: None,
                commit_index: 0,
                safe_index: 0,
                restart: true,
                entries: vec![frame(1, b"x")],
                base_membership: Some(
                    crate::membership::Membership::of_voters(&[NodeId(0), NodeId(4)]).encode(),
                ),
            }),
            Payload::AppendResponse(AppendResponse {
                seq: 5,
                result: AppendResult::Inconsistent {
                    hint_index: 3,
                    hint_term: 1,
                    last_index: 4,
                },
            }),
            Payload::AppendResponse(AppendResponse {
                seq: 7,
                result: AppendResult::Rejected(RejectReason::PositionMismatch),
            }),
            Payload::AppendResponse(AppendResponse {
                seq: 8,
                result: AppendResult::Success {
                    match_index: 12,
                    persisted_index: 11,
                },
            }),
            Payload::AppendResponse(AppendResponse {
                seq: 9,
                result: AppendResult::ExpiredTerm,
            }),
            Payload::TakeLeadership,
            Payload::NotMember {
                membership_index: 12,
            },
            Payload::EntryRequest { index: 13 },
            Payload::EntryCopy {
                index: 1,
                frame: frame(1, b"copy"),
            },
        ];
        payloads
            .into_iter()
            .map(|payload| Message {
                from: NodeId(1),
                to: NodeId(2),
                term: 4,
                payload,
            })
            .collect()
    }

    #[test]
    fn round_trips() {
        for msg in samples() {
            let mut buf = BytesMut::new();
            encode(&msg, &mut buf);
            assert!(buf.len() <= encoded_len(&msg), "{msg:?}");
            assert_eq!(decode(buf.freeze()).unwrap(), msg);
        }
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        for msg in samples() {
            let mut buf = BytesMut::new();
            encode(&msg, &mut buf);
            let full = buf.freeze();
            for len in 0..full.len() {
                assert!(decode(full.slice(..len)).is_err(), "{msg:?} cut at {len}");
            }
        }
    }

    #[test]
    fn garbage_never_panics() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        for msg in samples() {
            let mut buf = BytesMut::new();
            encode(&msg, &mut buf);
            for _ in 0..200 {
                let mut bytes = buf.to_vec();
                let i = rng.gen_range(0..bytes.len());
                bytes[i] = rng.gen();
                let _ = decode(Bytes::from(bytes));
            }
        }
        for _ in 0..2000 {
            let len = rng.gen_range(0..200);
            let bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            let _ = decode(Bytes::from(bytes));
        }
    }

    #[test]
    fn absurd_entry_count_is_refused() {
        let mut buf = BytesMut::new();
        encode(&samples()[5], &mut buf);
        let n = buf.len();
        buf[n - 4..].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            decode(buf.freeze()),
            Err(CodecError::Value {
                field: "entry count",
                ..
            })
        ));
    }

    #[test]
    fn hello_round_trip() {
        let mut hello = Hello {
            group: "broker-a".into(),
            from: NodeId(3),
            settings: "dLegerPeers=n0-h:1;n3-h:2 mappedFileSizeCommitLog=1024".into(),
            proof: None,
        };
        let mut buf = BytesMut::new();
        encode_hello(&hello, &mut buf);
        assert_eq!(decode_hello(&buf).unwrap(), hello);
        assert!(decode_hello(&buf[..buf.len() - 1]).is_err());
        hello.proof = Some(HelloProof {
            sent_at_ms: 1_700_000_000_000,
            mac: [7; PROOF_MAC_LEN],
        });
        let mut buf = BytesMut::new();
        encode_hello(&hello, &mut buf);
        assert!(buf.len() <= MAX_HELLO_LEN);
        assert_eq!(decode_hello(&buf).unwrap(), hello);
        assert!(decode_hello(&buf[..buf.len() - 1]).is_err());
        let mut longer = buf.to_vec();
        longer.push(0);
        assert!(decode_hello(&longer).is_err());
    }
}
