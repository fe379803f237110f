//! The one error type of the library, and which failures a producer retries.

use remoting::code::response;
use remoting::connection::CallError;

/// Response codes on which RocketMQ's producer retries on another queue or broker
/// (`DefaultMQProducer.retryResponseCodes`): TOPIC_NOT_EXIST, SERVICE_NOT_AVAILABLE,
/// SYSTEM_ERROR, SYSTEM_BUSY, NO_PERMISSION, NO_BUYER_ID, NOT_IN_CURRENT_UNIT, GO_AWAY.
pub const RETRYABLE_RESPONSE_CODES: [i32; 8] = [
    response::TOPIC_NOT_EXIST,
    response::SERVICE_NOT_AVAILABLE,
    response::SYSTEM_ERROR,
    response::SYSTEM_BUSY,
    response::NO_PERMISSION,
    response::NO_BUYER_ID,
    response::NOT_IN_CURRENT_UNIT,
    response::GO_AWAY,
];

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a non-success code.
    #[error("broker {addr} answered code {code}: {remark}")]
    Broker {
        addr: String,
        code: i32,
        remark: String,
    },
    /// No response within the caller's budget.
    #[error("no response from {addr} within {timeout_ms} ms")]
    Timeout { addr: String, timeout_ms: u64 },
    /// Connecting or talking to a server failed.
    #[error("request to {addr} failed: {source}")]
    Remoting {
        addr: String,
        #[source]
        source: CallError,
    },
    /// No name server knows the topic, or its route has no usable queue.
    #[error("no route for topic `{topic}`: {reason}")]
    NoRoute { topic: String, reason: String },
    /// No address is known for a broker name (e.g. its master is gone during a failover).
    #[error("no address for broker `{broker_name}`")]
    BrokerNotFound { broker_name: String },
    /// A message the client refuses to send (bad topic, empty or oversized body, ...).
    #[error("invalid message: {0}")]
    InvalidMessage(String),
    /// A bad argument or configuration value.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A response that does not decode.
    #[error("malformed response from {addr}: {reason}")]
    Malformed { addr: String, reason: String },
    /// Nothing matched a query (message id, key).
    #[error("not found: {0}")]
    NotFound(String),
    /// The operation needs broker support that does not exist yet.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Every attempt failed; `last` is the final attempt's error.
    #[error("send failed after {attempts} attempts: {last}")]
    RetriesExhausted {
        attempts: u32,
        #[source]
        last: Box<ClientError>,
    },
    /// Too many async sends are already in flight.
    #[error("too many requests in flight (limit {limit})")]
    TooManyRequests { limit: usize },
    /// The client, producer or consumer has been shut down.
    #[error("client is shut down")]
    Shutdown,
}

impl ClientError {
    /// Wraps a transport error, turning its timeout into [`ClientError::Timeout`].
    pub(crate) fn from_remoting(addr: &str, source: CallError) -> Self {
        match source {
            CallError::Timeout { timeout_ms } => ClientError::Timeout {
                addr: addr.to_owned(),
                timeout_ms,
            },
            CallError::ConnectTimeout { timeout_ms, .. } => ClientError::Timeout {
                addr: addr.to_owned(),
                timeout_ms,
            },
            CallError::Shutdown => ClientError::Shutdown,
            source => ClientError::Remoting {
                addr: addr.to_owned(),
                source,
            },
        }
    }

    pub(crate) fn malformed(addr: &str, reason: impl std::fmt::Display) -> Self {
        ClientError::Malformed {
            addr: addr.to_owned(),
            reason: reason.to_string(),
        }
    }

    /// The broker's response code, when the broker refused.
    pub fn response_code(&self) -> Option<i32> {
        match self {
            ClientError::Broker { code, .. } => Some(*code),
            ClientError::RetriesExhausted { last, .. } => last.response_code(),
            _ => None,
        }
    }

    /// Whether a send that failed this way may succeed on another queue or broker, as
    /// RocketMQ's producer decides: transport failures, timeouts, missing routes and the
    /// [`RETRYABLE_RESPONSE_CODES`].
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Broker { code, .. } => RETRYABLE_RESPONSE_CODES.contains(code),
            ClientError::Timeout { .. }
            | ClientError::Remoting { .. }
            | ClientError::NoRoute { .. }
            | ClientError::BrokerNotFound { .. } => true,
            _ => false,
        }
    }

    /// Whether the failure says the broker itself is unreachable or unfit (as opposed to
    /// refusing this one message), so other sends should avoid it for a while.
    pub(crate) fn marks_broker_faulty(&self) -> bool {
        match self {
            ClientError::Timeout { .. } | ClientError::Remoting { .. } => true,
            ClientError::Broker { code, .. } => matches!(
                *code,
                response::SERVICE_NOT_AVAILABLE
                    | response::SYSTEM_BUSY
                    | response::SYSTEM_ERROR
                    | response::NO_PERMISSION
                    | response::GO_AWAY
            ),
            _ => false,
        }
    }
}

/// The library's result type.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(code: i32) -> ClientError {
        ClientError::Broker {
            addr: "a".into(),
            code,
            remark: String::new(),
        }
    }

    #[test]
    fn retryable_codes_are_rocketmqs() {
        for code in [17, 14, 1, 2, 16, 204, 205, 1500] {
            assert!(broker(code).is_retryable(), "{code}");
        }
        for code in [13, 29, 23, 3] {
            assert!(!broker(code).is_retryable(), "{code}");
        }
        assert!(ClientError::Timeout {
            addr: "a".into(),
            timeout_ms: 1
        }
        .is_retryable());
        assert!(!ClientError::InvalidMessage("x".into()).is_retryable());
    }

    #[test]
    fn transport_timeouts_become_client_timeouts() {
        let error = ClientError::from_remoting("b:1", CallError::Timeout { timeout_ms: 30 });
        assert!(matches!(error, ClientError::Timeout { timeout_ms: 30, .. }));
        let error = ClientError::from_remoting("b:1", CallError::ConnectionClosed);
        assert!(matches!(error, ClientError::Remoting { .. }));
        assert!(error.marks_broker_faulty());
    }

    #[test]
    fn exhausted_retries_keep_the_last_code() {
        let error = ClientError::RetriesExhausted {
            attempts: 3,
            last: Box::new(broker(14)),
        };
        assert_eq!(error.response_code(), Some(14));
    }
}
