//! What the broker knows about connected clients.
//!
//! - [`consumer`]: consumer groups: their channels (one per client connection), the
//!   subscriptions reported by heartbeats, membership-change notifications and expiry.
//! - [`producer`]: producer groups and their channels (admin views).
//! - [`rebalance_lock`]: queue locks held by orderly consumers (LOCK_BATCH_MQ).
//! - [`offset_resets`]: offsets reset on the broker that consumers have not picked up yet.

pub mod consumer;
pub mod offset_resets;
pub mod producer;
pub mod rebalance_lock;

use std::time::Instant;

use remoting::command::LanguageCode;
use remoting::connection::ConnectionHandle;

pub use consumer::ConsumerManager;
pub use offset_resets::OffsetResets;
pub use producer::ProducerManager;
pub use rebalance_lock::RebalanceLockManager;

/// One client's connection as a member of a group.
#[derive(Debug, Clone)]
pub struct ClientChannel {
    pub conn: ConnectionHandle,
    pub client_id: String,
    pub language: LanguageCode,
    pub version: i32,
    pub last_heartbeat: Instant,
}

impl ClientChannel {
    pub fn new(
        conn: &ConnectionHandle,
        client_id: &str,
        language: LanguageCode,
        version: i32,
    ) -> Self {
        ClientChannel {
            conn: conn.clone(),
            client_id: client_id.to_owned(),
            language,
            version,
            last_heartbeat: Instant::now(),
        }
    }

    /// The admin view (GET_CONSUMER_CONNECTION_LIST and friends).
    pub fn connection_view(&self) -> remoting::body::Connection {
        remoting::body::Connection {
            client_id: self.client_id.clone(),
            client_addr: self.conn.remote_addr().to_string(),
            language: remoting::body::LanguageCode::from_ordinal(u64::from(self.language.code()))
                .unwrap_or(remoting::body::LanguageCode::Other),
            version: self.version,
        }
    }
}
