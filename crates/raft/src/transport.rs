//! TCP connections between the nodes of a group.
//!
//! Each node dials every peer once and only writes on that connection; it reads what peers
//! dial in. So a pair of nodes uses two one-way connections, and a slow reader never blocks
//! the replies travelling the other way.
//!
//! - Outbound: one task per peer with a bounded queue. While disconnected it redials with
//!   exponential backoff; messages that do not fit in the queue are dropped (raft resends what
//!   matters), so a dead peer never stalls the node.
//! - Inbound: an accept loop; each connection starts with a [`Hello`] naming the group, the
//!   sender and the settings every member must share (segment size, and the peer list while
//!   both sides still run the configured one), then carries length-delimited messages. Bad
//!   frames, strangers and differently configured members are refused.
//! - The peers follow the group's membership ([`Transport::set_peers`]): a member added
//!   gets a dialer, a member removed keeps its dialer only to be told it was removed. Once
//!   a membership change is in a member's log its peer list is that of the log, no longer
//!   the configured one, and is not compared.
//!   Until its hello is in, a connection may hold no more than a hello's bytes, and only for
//!   `hello_timeout`.
//! - With a link secret (`dLegerSecret`), a hello carries an HmacSHA1 under it over its
//!   fields and the time it was sent: a dialer without the secret, or a hello older than
//!   [`MAX_PROOF_AGE`] (a replay), is refused. The secret travels nowhere; the settings say
//!   only that one is in use, so a member with and one without it refuse each other with the
//!   configured-differently error.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::codec::{self, Hello, HelloProof};
use crate::message::Payload;
use crate::{Message, NodeId, PeerSpec};
use burst::Burst;

/// How far a hello's send time may be from this member's clock (members' clocks differ by
/// seconds at most; a replayed hello is older).
pub const MAX_PROOF_AGE: Duration = Duration::from_secs(120);

/// The secret group members prove to each other on their raft links. Its `Debug` never
/// shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct LinkSecret(String);

impl LinkSecret {
    pub fn new(secret: impl Into<String>) -> Self {
        LinkSecret(secret.into())
    }

    fn mac(&self, content: &[u8]) -> Hmac<Sha1> {
        // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
        let mut mac = match Hmac::<Sha1>::new_from_slice(self.0.as_bytes()) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        };
        mac.update(content);
        mac
    }

    fn prove(&self, hello: &Hello, sent_at_ms: u64) -> HelloProof {
        let digest = self
            .mac(&hello.proof_content(sent_at_ms))
            .finalize()
            .into_bytes();
        let mut mac = [0u8; codec::PROOF_MAC_LEN];
        mac.copy_from_slice(&digest[..codec::PROOF_MAC_LEN]);
        HelloProof { sent_at_ms, mac }
    }

    /// Whether `hello` proves the secret, sent within [`MAX_PROOF_AGE`] of `now_ms`;
    /// compared in constant time.
    fn verify(&self, hello: &Hello, now_ms: u64) -> bool {
        let Some(proof) = &hello.proof else {
            return false;
        };
        if proof.sent_at_ms.abs_diff(now_ms) > MAX_PROOF_AGE.as_millis() as u64 {
            return false;
        }
        self.mac(&hello.proof_content(proof.sent_at_ms))
            .verify_slice(&proof.mac)
            .is_ok()
    }
}

impl std::fmt::Debug for LinkSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSecret(<hidden>)")
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Limits and timings of the transport.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// Messages waiting for one peer's connection.
    pub peer_queue_len: usize,
    /// Largest frame accepted from a peer.
    pub max_frame_bytes: usize,
    pub reconnect_backoff_min_ms: u64,
    pub reconnect_backoff_max_ms: u64,
    /// Inbound connections served at once (a group has few members; the cap stops a
    /// misbehaving client from exhausting the node).
    pub max_inbound_connections: usize,
    /// Bytes gathered into one socket write.
    pub write_batch_bytes: usize,
    /// Members prove this to each other when they connect (`dLegerSecret`).
    pub link_secret: Option<LinkSecret>,
    /// How long an inbound connection may take to say who it is.
    pub hello_timeout: Duration,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            peer_queue_len: 4096,
            max_frame_bytes: 16 << 20,
            reconnect_backoff_min_ms: 20,
            reconnect_backoff_max_ms: 1000,
            max_inbound_connections: 64,
            write_batch_bytes: 1 << 20,
            link_secret: None,
            hello_timeout: Duration::from_secs(10),
        }
    }
}

/// Sending side of the transport, owned by the driver.
pub struct Transport {
    id: NodeId,
    peers: HashMap<NodeId, Dialer>,
    /// Nodes a membership change removed, oldest first. They are still dialed, but only
    /// raft's answer that they are no longer members goes to them: a removed node never
    /// receives the entry that removed it, so it learns only when it asks for votes.
    departed: VecDeque<Dialer>,
    link: Arc<LinkRules>,
    config: TransportConfig,
    shutdown: CancellationToken,
    dropped: u64,
}

/// Removed nodes still dialed; older ones are forgotten (a removed node that never asked
/// stays unaware, which only keeps it out of nothing: the others ignore it anyway).
const MAX_DEPARTED: usize = 4;

/// The sending side of one peer: its queue, and what stops its dial loop.
struct Dialer {
    spec: PeerSpec,
    queue: mpsc::Sender<Message>,
    stop: CancellationToken,
}

impl Transport {
    /// Starts the accept loop on `listener` and one dialer per peer. Received messages go to
    /// `inbound`. `settings`: what every member must share beyond the peer list (compared
    /// with each connecting peer's). Everything stops when `shutdown` is cancelled.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        id: NodeId,
        group: &str,
        peers: &[PeerSpec],
        settings: &str,
        listener: TcpListener,
        inbound: mpsc::Sender<Message>,
        config: &TransportConfig,
        shutdown: CancellationToken,
    ) -> Transport {
        let extra = match &config.link_secret {
            Some(_) => format!("{settings} linkAuth=hmac-sha1"),
            None => settings.to_string(),
        };
        let link = Arc::new(LinkRules {
            group: group.to_string(),
            id,
            extra: extra.trim().to_string(),
            view: std::sync::RwLock::new(LinkView::new(peers, 0)),
            secret: config.link_secret.clone(),
            refusals: std::sync::Mutex::new(HashMap::new()),
        });
        tokio::spawn(accept_loop(
            listener,
            link.clone(),
            inbound,
            config.clone(),
            shutdown.clone(),
        ));
        let mut transport = Transport {
            id,
            peers: HashMap::new(),
            departed: VecDeque::new(),
            link,
            config: config.clone(),
            shutdown,
            dropped: 0,
        };
        transport.dial(peers);
        transport
    }

    /// Follows a new membership (set by the log entry at `membership_index`): dials the
    /// members it does not know yet, stops dialing those gone (or moved), and accepts
    /// connections from exactly the new members.
    pub fn set_peers(&mut self, peers: &[PeerSpec], membership_index: u64) {
        match self.link.view.write() {
            Ok(mut view) => *view = LinkView::new(peers, membership_index),
            Err(poisoned) => *poisoned.into_inner() = LinkView::new(peers, membership_index),
        }
        let listed = |spec: &PeerSpec| peers.iter().any(|p| p.id == spec.id);
        let same = |spec: &PeerSpec| peers.iter().any(|p| p.id == spec.id && p.addr == spec.addr);
        let leaving: Vec<NodeId> = self
            .peers
            .values()
            .filter(|d| !same(&d.spec))
            .map(|d| d.spec.id)
            .collect();
        for id in leaving {
            let Some(dialer) = self.peers.remove(&id) else {
                continue;
            };
            if listed(&dialer.spec) {
                // Moved to another address: the new one is dialed below.
                dialer.stop.cancel();
            } else {
                self.departed.push_back(dialer);
            }
        }
        // A removed node added back (at the same address) keeps its connection.
        for dialer in std::mem::take(&mut self.departed) {
            if same(&dialer.spec) {
                self.peers.insert(dialer.spec.id, dialer);
            } else if listed(&dialer.spec) {
                dialer.stop.cancel();
            } else {
                self.departed.push_back(dialer);
            }
        }
        while self.departed.len() > MAX_DEPARTED {
            if let Some(oldest) = self.departed.pop_front() {
                oldest.stop.cancel();
            }
        }
        self.dial(peers);
    }

    fn dial(&mut self, peers: &[PeerSpec]) {
        for peer in peers.iter().filter(|p| p.id != self.id) {
            if self.peers.contains_key(&peer.id) {
                continue;
            }
            let (queue, rx) = mpsc::channel(self.config.peer_queue_len.max(1));
            let stop = self.shutdown.child_token();
            tokio::spawn(dial_loop(
                peer.clone(),
                self.link.clone(),
                rx,
                self.config.clone(),
                stop.clone(),
            ));
            self.peers.insert(
                peer.id,
                Dialer {
                    spec: peer.clone(),
                    queue,
                    stop,
                },
            );
        }
    }

    /// Queues a message; drops it when the peer's queue is full or the peer is unknown.
    pub fn send(&mut self, msg: Message) {
        let dialer = match self.peers.get(&msg.to) {
            Some(dialer) => dialer,
            None if matches!(msg.payload, Payload::NotMember { .. }) => {
                match self.departed.iter().find(|d| d.spec.id == msg.to) {
                    Some(dialer) => dialer,
                    None => return,
                }
            }
            None => return,
        };
        if dialer.queue.try_send(msg).is_err() {
            self.dropped += 1;
            if self.dropped.is_power_of_two() {
                tracing::warn!(dropped = self.dropped, "peer queue full: dropping messages");
            }
        }
    }

    /// Messages dropped because a peer's queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

async fn dial_loop(
    peer: PeerSpec,
    link: Arc<LinkRules>,
    mut rx: mpsc::Receiver<Message>,
    config: TransportConfig,
    shutdown: CancellationToken,
) {
    let min = Duration::from_millis(config.reconnect_backoff_min_ms.max(1));
    let max = Duration::from_millis(config.reconnect_backoff_max_ms.max(1)).max(min);
    let mut backoff = min;
    loop {
        let connected = tokio::select! {
            _ = shutdown.cancelled() => return,
            result = TcpStream::connect(peer.addr.as_str()) => result,
        };
        let mut stream = match connected {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(peer = %peer.id, addr = %peer.addr, error = %e, "connect failed");
                // What was queued for a dead peer is stale by the time it is back.
                while rx.try_recv().is_ok() {}
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(max);
                continue;
            }
        };
        let connected_at = Instant::now();
        let _ = stream.set_nodelay(true);
        tracing::info!(peer = %peer.id, addr = %peer.addr, "connected");
        let mut buf = BytesMut::with_capacity(64 << 10);
        let start = buf.len();
        buf.put_u32(0);
        // The membership as of now, and a fresh proof per connection (a receiver refuses
        // old ones).
        let mut hello = Hello {
            group: link.group.clone(),
            from: link.id,
            settings: link.settings(),
            proof: None,
        };
        hello.proof = config
            .link_secret
            .as_ref()
            .map(|s| s.prove(&hello, now_ms()));
        codec::encode_hello(&hello, &mut buf);
        let len = (buf.len() - start - 4) as u32;
        buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
        if stream.write_all(&buf).await.is_err() {
            continue;
        }
        let mut writes = Burst::default();
        loop {
            let first = tokio::select! {
                _ = shutdown.cancelled() => return,
                msg = rx.recv() => match msg {
                    Some(msg) => msg,
                    None => return,
                },
            };
            buf.clear();
            put_frame(&first, &mut buf);
            gather(&mut rx, &mut buf, config.write_batch_bytes);
            if writes.yield_within_stream().await {
                gather(&mut rx, &mut buf, config.write_batch_bytes);
            }
            if let Err(e) = stream.write_all(&buf).await {
                tracing::info!(peer = %peer.id, error = %e, "connection lost; redialing");
                break;
            }
        }
        // A peer that closes at once (it refuses this member's settings) is redialed with a
        // growing pause, not in a tight loop.
        if connected_at.elapsed() < max {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(max);
        } else {
            backoff = min;
        }
    }
}

/// Appends what is already queued to `buf`, up to `limit` bytes.
fn gather(rx: &mut mpsc::Receiver<Message>, buf: &mut BytesMut, limit: usize) {
    while buf.len() < limit {
        match rx.try_recv() {
            Ok(msg) => put_frame(&msg, buf),
            Err(_) => break,
        }
    }
}

/// The settings text members compare: the peer list in id order, then `extra`.
pub fn group_settings(peers: &[PeerSpec], extra: &str) -> String {
    let mut sorted: Vec<&PeerSpec> = peers.iter().collect();
    sorted.sort_by_key(|p| p.id);
    let list: Vec<String> = sorted
        .iter()
        .map(|p| format!("{}-{}", p.name, p.addr))
        .collect();
    format!("dLegerPeers={} {extra}", list.join(";"))
        .trim_end()
        .to_string()
}

/// Who may connect: members of this group configured like this member.
struct LinkRules {
    group: String,
    id: NodeId,
    /// Settings beyond the membership that every member shares.
    extra: String,
    view: std::sync::RwLock<LinkView>,
    secret: Option<LinkSecret>,
    /// When each refused peer was last logged, so a redialing peer is named once a while.
    refusals: std::sync::Mutex<HashMap<NodeId, Instant>>,
}

/// A refused differently configured member is logged at most this often.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(30);

/// The membership the links follow.
struct LinkView {
    members: Vec<NodeId>,
    /// Index of the log entry that set it; 0 for the configured peer list.
    membership_index: u64,
    /// The peer list as members compare it (`dLegerPeers=...`).
    peers: String,
}

impl LinkView {
    fn new(peers: &[PeerSpec], membership_index: u64) -> LinkView {
        LinkView {
            members: peers.iter().map(|p| p.id).collect(),
            membership_index,
            peers: group_settings(peers, ""),
        }
    }
}

/// The parts of a hello's settings text: `dLegerPeers=...`, then `membershipIndex=<n>` once
/// the membership came from the log, then the shared settings.
struct HelloSettings<'a> {
    peers: &'a str,
    membership_index: u64,
    extra: &'a str,
}

impl<'a> HelloSettings<'a> {
    fn parse(text: &'a str) -> HelloSettings<'a> {
        let (peers, rest) = text.split_once(' ').unwrap_or((text, ""));
        let (membership_index, extra) = match rest.strip_prefix("membershipIndex=") {
            Some(tail) => {
                let (number, extra) = tail.split_once(' ').unwrap_or((tail, ""));
                // Unreadable: counted as a membership from the log (peer lists are then not
                // compared); group, shared settings and link secret still are.
                (number.parse().unwrap_or(u64::MAX), extra)
            }
            None => (0, rest),
        };
        HelloSettings {
            peers,
            membership_index,
            extra,
        }
    }
}

impl LinkRules {
    fn read_view(&self) -> std::sync::RwLockReadGuard<'_, LinkView> {
        self.view.read().unwrap_or_else(|e| e.into_inner())
    }

    /// This member's settings as its hello states them.
    fn settings(&self) -> String {
        let view = self.read_view();
        let index = match view.membership_index {
            0 => String::new(),
            n => format!(" membershipIndex={n}"),
        };
        format!("{}{index} {}", view.peers, self.extra)
            .trim_end()
            .to_string()
    }

    /// Members of the configured peer list talk among themselves. Once a membership came
    /// from the log, a member may hear from a node its log does not show yet (the leader
    /// that added it, a member added after its last entry): raft decides what to make of
    /// such a node's messages.
    fn may_connect(&self, id: NodeId, theirs: &str) -> bool {
        let view = self.read_view();
        view.members.contains(&id)
            || view.membership_index != 0
            || HelloSettings::parse(theirs).membership_index != 0
    }

    /// Shared settings must be equal; peer lists only while both members run the configured
    /// one (two differently configured groups must not merge), since a membership the log
    /// set is the group's and reaches every member through the log.
    fn compatible(&self, theirs: &str) -> bool {
        let theirs = HelloSettings::parse(theirs);
        if theirs.extra != self.extra {
            return false;
        }
        let view = self.read_view();
        view.membership_index != 0 || theirs.membership_index != 0 || theirs.peers == view.peers
    }

    /// Whether a refusal of `peer` is due to be logged (rate-limited per peer).
    fn refusal_due(&self, peer: NodeId) -> bool {
        let now = Instant::now();
        let mut refusals = self.refusals.lock().unwrap_or_else(|e| e.into_inner());
        let due = refusals
            .get(&peer)
            .is_none_or(|at| now.duration_since(*at) >= REFUSAL_LOG_INTERVAL);
        if due {
            refusals.insert(peer, now);
        }
        due
    }

    fn report_mismatch(&self, peer: NodeId, theirs: &str) {
        if self.refusal_due(peer) {
            let ours = self.settings();
            tracing::error!(%peer, theirs, %ours,
                "refusing a member configured differently (dLegerPeers, \
                 mappedFileSizeCommitLog and whether dLegerSecret is set must be the same \
                 on every member)");
        }
    }

    fn report_unproven(&self, peer: NodeId) {
        if self.refusal_due(peer) {
            tracing::error!(%peer,
                "refusing a connection claiming to be this member: its hello does not prove \
                 dLegerSecret (a different secret, or a hello older than 2 minutes: check \
                 the secret and the members' clocks)");
        }
    }
}

fn put_frame(msg: &Message, buf: &mut BytesMut) {
    let start = buf.len();
    buf.put_u32(0);
    codec::encode(msg, buf);
    let len = (buf.len() - start - 4) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

async fn accept_loop(
    listener: TcpListener,
    link: Arc<LinkRules>,
    inbound: mpsc::Sender<Message>,
    config: TransportConfig,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(config.max_inbound_connections.max(1)));
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            result = listener.accept() => result,
        };
        let (stream, remote) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                // Typically out of file descriptors: give the system a moment.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%remote, "too many inbound connections; refusing");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let reader = read_loop(
            stream,
            link.clone(),
            inbound.clone(),
            (config.max_frame_bytes, config.hello_timeout),
            shutdown.clone(),
        );
        tokio::spawn(async move {
            match reader.await {
                // Logged (rate-limited) where it was found.
                Err(ReadError::Mismatch(_)) | Err(ReadError::Unproven(_)) | Ok(()) => {}
                Err(e) => tracing::info!(%remote, error = %e, "inbound connection closed"),
            }
            drop(permit);
        });
    }
}

#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("decode: {0}")]
    Codec(#[from] codec::CodecError),
    #[error("peer {0} is not a member of this group")]
    Stranger(NodeId),
    #[error("peer belongs to group {0:?}")]
    WrongGroup(String),
    #[error("message claims to come from {claimed}, connection is from {peer}")]
    Spoofed { claimed: NodeId, peer: NodeId },
    #[error("peer {0} is configured differently")]
    Mismatch(NodeId),
    #[error("peer claiming to be {0} did not prove the link secret")]
    Unproven(NodeId),
    #[error("no hello within {0:?}")]
    HelloTimeout(Duration),
}

async fn read_loop(
    stream: TcpStream,
    link: Arc<LinkRules>,
    inbound: mpsc::Sender<Message>,
    (max_frame_bytes, hello_timeout): (usize, Duration),
    shutdown: CancellationToken,
) -> Result<(), ReadError> {
    // Until it has said who it is, a connection may hold no more than a hello.
    let codec = LengthDelimitedCodec::builder()
        .max_frame_length(codec::MAX_HELLO_LEN)
        .new_codec();
    let mut frames = FramedRead::new(stream, codec);
    let first = tokio::select! {
        _ = shutdown.cancelled() => return Ok(()),
        frame = tokio::time::timeout(hello_timeout, frames.next()) => {
            frame.map_err(|_| ReadError::HelloTimeout(hello_timeout))?
        }
    };
    let Some(first) = first else {
        return Ok(());
    };
    let hello = codec::decode_hello(&first?)?;
    if hello.group != link.group {
        return Err(ReadError::WrongGroup(hello.group));
    }
    if !link.compatible(&hello.settings) {
        link.report_mismatch(hello.from, &hello.settings);
        return Err(ReadError::Mismatch(hello.from));
    }
    if !link.may_connect(hello.from, &hello.settings) {
        return Err(ReadError::Stranger(hello.from));
    }
    if let Some(secret) = &link.secret {
        if !secret.verify(&hello, now_ms()) {
            link.report_unproven(hello.from);
            return Err(ReadError::Unproven(hello.from));
        }
    }
    frames.decoder_mut().set_max_frame_length(max_frame_bytes);
    loop {
        let frame = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            frame = frames.next() => frame,
        };
        let Some(frame) = frame else {
            return Ok(());
        };
        let msg = codec::decode(frame?.freeze())?;
        if msg.from != hello.from {
            return Err(ReadError::Spoofed {
                claimed: msg.from,
                peer: hello.from,
            });
        }
        // Waiting here pushes back on the peer through TCP when the node is busy.
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            sent = inbound.send(msg) => if sent.is_err() { return Ok(()) },
        }
    }
}
