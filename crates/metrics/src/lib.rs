//! Prometheus metrics shared by the broker and the name server: the scrape endpoint
//! ([`endpoint`]) and the latency of every remoting request ([`rpc`], RocketMQ 5's
//! `rocketmq_rpc_latency`). Each server keeps its own instruments and decides what a scrape
//! shows; this crate serves them as the Prometheus text format (0.0.4), which RocketMQ's
//! exporter (`metricsExporterType=PROM`) serves too.

pub mod endpoint;
pub mod per_thread;
pub mod rpc;
pub mod scraped;

use prometheus_client::registry::Registry;

/// A registry whose every metric carries `labels` (RocketMQ: `cluster`, `node_type`,
/// `node_id`, plus the operator's `metricsLabel`).
pub fn registry_with_labels(labels: &[(String, String)]) -> Registry {
    Registry::with_labels(
        labels
            .iter()
            .map(|(k, v)| (k.clone().into(), v.clone().into())),
    )
}

/// The text of a scrape: every registry, one after the other (their metric names must not
/// overlap).
pub fn encode(registries: &[&Registry]) -> Result<String, std::fmt::Error> {
    let mut text = String::new();
    for registry in registries {
        prometheus_client::encoding::prometheus_text::encode(&mut text, registry)?;
    }
    Ok(text)
}
