//! The broker's scrape: the instruments recorded as messages move, then the gauges of this
//! moment, every series labelled with the broker's `cluster`, `node_type` and `node_id`
//! (its broker name) and the operator's `metricsLabel`, as RocketMQ labels them.

use std::sync::Arc;

use futures::future::BoxFuture;
use metrics::endpoint::Scrape;

use crate::context::BrokerContext;

pub struct BrokerScrape {
    pub ctx: Arc<BrokerContext>,
}

impl BrokerScrape {
    fn labels(&self) -> Vec<(String, String)> {
        let config = &self.ctx.config;
        let mut labels = vec![
            ("cluster".to_owned(), config.broker_cluster_name.clone()),
            ("node_type".to_owned(), "broker".to_owned()),
            ("node_id".to_owned(), config.broker_name.clone()),
        ];
        labels.extend(config.metrics_exporter.labels.iter().cloned());
        labels
    }
}

impl Scrape for BrokerScrape {
    fn scrape(&self) -> BoxFuture<'_, Result<String, std::fmt::Error>> {
        Box::pin(async move {
            let labels = self.labels();
            let mut recorded = metrics::registry_with_labels(&labels);
            self.ctx.metrics.register(&mut recorded);
            if self.ctx.group.is_some() {
                // A group member's raft series exist only there.
                self.ctx.metrics.raft.register(&mut recorded);
            }
            let mut gauges = metrics::registry_with_labels(&labels);
            super::gauges::collect(&self.ctx, &mut gauges).await;
            metrics::encode(&[&recorded, &gauges])
        })
    }
}
