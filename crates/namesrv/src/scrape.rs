//! The name server's Prometheus scrape: every request's latency (`rocketmq_rpc_latency`,
//! as the broker reports it) and what it knows (`rocketmq_namesrv_*`: clusters, live
//! broker addresses, topics), labelled `node_type="namesrv"` and `node_id` with its address.

use metrics::endpoint::{BoxFuture, Scrape};
use metrics::rpc::RpcLatency;
use prometheus_client::metrics::gauge::Gauge;

use crate::registry::RegistryCensus;

pub struct NamesrvScrape {
    /// What the registry holds at the moment of the scrape.
    pub census: Box<dyn Fn() -> RegistryCensus + Send + Sync>,
    pub latency: RpcLatency,
    /// `node_type`, `node_id` (the client port's `host:port`) and the operator's
    /// `metricsLabel`.
    pub labels: Vec<(String, String)>,
}

impl Scrape for NamesrvScrape {
    fn scrape(&self) -> BoxFuture<'_, Result<String, std::fmt::Error>> {
        Box::pin(async move {
            let mut registry = metrics::registry_with_labels(&self.labels);
            self.latency.register(&mut registry);
            let census = (self.census)();
            for (name, help, value) in [
                (
                    "rocketmq_namesrv_clusters",
                    "Clusters with a registered broker",
                    census.clusters,
                ),
                (
                    "rocketmq_namesrv_brokers",
                    "Live registered broker addresses",
                    census.brokers,
                ),
                (
                    "rocketmq_namesrv_topics",
                    "Topics with a route",
                    census.topics,
                ),
            ] {
                let gauge: Gauge = Gauge::default();
                gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
                registry.register(name, help, gauge);
            }
            metrics::encode(&[&registry])
        })
    }
}
