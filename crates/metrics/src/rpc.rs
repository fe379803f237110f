//! `rocketmq_rpc_latency`: how long each remoting request took to answer, in milliseconds,
//! labelled as RocketMQ labels it (`protocol_type`, `request_code` and `response_code` by
//! their names in lower case, `is_long_polling`, and `result=oneway` for one-way requests).
//! [`Instrumented`] wraps a server's request processor to record every request.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::registry::Registry;
use remoting::code::{request, response};
use remoting::command::RemotingCommand;
use remoting::connection::{ConnectionHandle, RequestProcessor};

use crate::per_thread::{Buckets, PerThread};
use crate::scraped::Scraped;

/// RocketMQ's buckets for request latency, in milliseconds; sums kept in microseconds.
const LATENCY: Buckets<9> = Buckets {
    upper_bounds: [1.0, 3.0, 5.0, 7.0, 10.0, 100.0, 1000.0, 2000.0, 3000.0],
    sum_scale: 1000.0,
};
const LATENCY_SLOTS: usize = Buckets::<9>::SLOTS;
/// The pull's `sysFlag` bit asking the broker to hold the request until messages arrive.
const PULL_FLAG_SUSPEND: i64 = 0x2;

/// What tells one series from another, kept as numbers on the request path; the label
/// strings are made only when scraped.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
struct RpcKey {
    protocol: &'static str,
    request_code: i32,
    /// `None`: a one-way request, nothing sent back.
    response_code: Option<i32>,
    long_polling: bool,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    protocol_type: &'static str,
    request_code: Cow<'static, str>,
    response_code: Cow<'static, str>,
    is_long_polling: &'static str,
    result: &'static str,
}

impl From<RpcKey> for RpcLabels {
    fn from(key: RpcKey) -> Self {
        RpcLabels {
            protocol_type: key.protocol,
            request_code: request_name(key.request_code),
            response_code: key.response_code.map_or(Cow::Borrowed(""), response_name),
            is_long_polling: if key.long_polling { "true" } else { "false" },
            result: if key.response_code.is_none() {
                "oneway"
            } else {
                "success"
            },
        }
    }
}

/// The latency histogram; clones share it.
#[derive(Clone, Default)]
pub struct RpcLatency {
    series: Arc<PerThread<RpcKey, LATENCY_SLOTS>>,
}

impl std::fmt::Debug for RpcLatency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcLatency").finish_non_exhaustive()
    }
}

impl RpcLatency {
    /// Adds what was recorded up to now to a scrape's registry.
    pub fn register(&self, registry: &mut Registry) {
        let series = self
            .series
            .sum()
            .into_iter()
            .map(|(key, slots)| (RpcLabels::from(key), LATENCY.read(&slots, 0)))
            .collect();
        Scraped::register(registry, "rocketmq_rpc_latency", "Rpc latency", series);
    }

    /// Records one request answered with `response_code` (`None`: one-way, nothing sent
    /// back) after `elapsed`. `long_polling`: the request asked to be held until messages
    /// arrive (a pull with the suspend flag, a pop with a poll time), so its latency is
    /// mostly waiting and dashboards leave it out.
    pub fn record(
        &self,
        protocol: &'static str,
        request_code: i32,
        response_code: Option<i32>,
        long_polling: bool,
        elapsed: Duration,
    ) {
        let key = RpcKey {
            protocol,
            request_code,
            response_code,
            long_polling,
        };
        let millis = elapsed.as_secs_f64() * 1000.0;
        self.series
            .update(&key, |key| *key, |slots| LATENCY.observe(slots, 0, millis));
    }
}

static REQUEST_NAMES: LazyLock<HashMap<i32, String>> = LazyLock::new(|| lower_names(request::ALL));
static RESPONSE_NAMES: LazyLock<HashMap<i32, String>> =
    LazyLock::new(|| lower_names(response::ALL));

fn lower_names(codes: &[(i32, &str)]) -> HashMap<i32, String> {
    codes
        .iter()
        .map(|(code, name)| (*code, name.to_ascii_lowercase()))
        .collect()
}

/// A code's name as RocketMQ labels it, or its number when unknown (as RocketMQ does).
fn request_name(code: i32) -> Cow<'static, str> {
    match REQUEST_NAMES.get(&code) {
        Some(name) => Cow::Borrowed(name.as_str()),
        None => Cow::Owned(code.to_string()),
    }
}

fn response_name(code: i32) -> Cow<'static, str> {
    match RESPONSE_NAMES.get(&code) {
        Some(name) => Cow::Borrowed(name.as_str()),
        None => Cow::Owned(code.to_string()),
    }
}

fn asks_to_be_held(request: &RemotingCommand) -> bool {
    let field = |key: &str| {
        request
            .ext_field(key)
            .and_then(|v| v.trim().parse::<i64>().ok())
    };
    match request.code {
        request::PULL_MESSAGE | request::LITE_PULL_MESSAGE => {
            field("sysFlag").is_some_and(|flag| flag & PULL_FLAG_SUSPEND != 0)
        }
        request::POP_MESSAGE | request::NOTIFICATION => field("pollTime").is_some_and(|t| t > 0),
        _ => false,
    }
}

/// A request processor that records the latency of every request `inner` answers.
pub struct Instrumented<P> {
    inner: Arc<P>,
    latency: RpcLatency,
}

impl<P> Instrumented<P> {
    pub fn new(inner: Arc<P>, latency: RpcLatency) -> Self {
        Instrumented { inner, latency }
    }
}

impl<P: RequestProcessor> RequestProcessor for Instrumented<P> {
    async fn process(
        &self,
        conn: &ConnectionHandle,
        request: RemotingCommand,
    ) -> Option<RemotingCommand> {
        let started = Instant::now();
        let code = request.code;
        let oneway = request.is_oneway();
        let long_polling = asks_to_be_held(&request);
        let response = self.inner.process(conn, request).await;
        let response_code = if oneway {
            None
        } else {
            Some(response.as_ref().map_or(response::SUCCESS, |r| r.code))
        };
        self.latency.record(
            "remoting",
            code,
            response_code,
            long_polling,
            started.elapsed(),
        );
        response
    }

    fn connection_opened(&self, conn: &ConnectionHandle) {
        self.inner.connection_opened(conn)
    }

    fn connection_closed(&self, conn: &ConnectionHandle) {
        self.inner.connection_closed(conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_labelled_by_their_lower_case_names() {
        let latency = RpcLatency::default();
        latency.record(
            "remoting",
            request::SEND_MESSAGE_V2,
            Some(response::SUCCESS),
            false,
            Duration::from_millis(2),
        );
        latency.record(
            "remoting",
            99_999,
            Some(77),
            false,
            Duration::from_millis(20),
        );
        latency.record("remoting", request::HEART_BEAT, None, false, Duration::ZERO);
        let mut registry = Registry::default();
        latency.register(&mut registry);
        let text = crate::encode(&[&registry]).unwrap();
        assert!(
            text.contains("request_code=\"send_message_v2\",response_code=\"success\""),
            "{text}"
        );
        assert!(
            text.contains("request_code=\"99999\",response_code=\"77\""),
            "{text}"
        );
        assert!(text.contains("request_code=\"heart_beat\",response_code=\"\",is_long_polling=\"false\",result=\"oneway\""), "{text}");
        assert!(text.contains("rocketmq_rpc_latency_bucket{"), "{text}");
        assert!(text.contains("le=\"3000\""), "{text}");
    }

    #[test]
    fn only_pulls_and_pops_asking_to_wait_are_long_polling() {
        let mut pull = RemotingCommand::request(request::PULL_MESSAGE);
        pull.ext_fields.insert("sysFlag".into(), "3".into());
        assert!(asks_to_be_held(&pull));
        pull.ext_fields.insert("sysFlag".into(), "1".into());
        assert!(!asks_to_be_held(&pull));
        let mut pop = RemotingCommand::request(request::POP_MESSAGE);
        pop.ext_fields.insert("pollTime".into(), "15000".into());
        assert!(asks_to_be_held(&pop));
        let mut send = RemotingCommand::request(request::SEND_MESSAGE);
        send.ext_fields.insert("sysFlag".into(), "2".into());
        assert!(!asks_to_be_held(&send));
    }
}
