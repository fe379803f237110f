//! Metric families whose values are read at a scrape (for example summed from
//! [`crate::per_thread::PerThread`] tables), encoded as counters or histograms under the
//! scrape registry's prefix and labels.

use std::fmt::Debug;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::per_thread::HistogramValues;

/// A value read at a scrape, and how Prometheus encodes it.
pub trait ScrapedValue: Debug + Send + Sync + 'static {
    const TYPE: MetricType;

    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error>;
}

/// A counter's total (its samples get `_total`, as a registered counter's do).
impl ScrapedValue for u64 {
    const TYPE: MetricType = MetricType::Counter;

    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_counter::<NoLabelSet, _, u64>(self, None)
    }
}

impl ScrapedValue for HistogramValues {
    const TYPE: MetricType = MetricType::Histogram;

    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_histogram::<NoLabelSet>(self.sum, self.count, &self.buckets, None)
    }
}

/// One family: each series' labels and its value.
#[derive(Debug)]
pub struct Scraped<S, V> {
    name: &'static str,
    help: &'static str,
    series: Vec<(S, V)>,
}

impl<S, V> Scraped<S, V>
where
    S: EncodeLabelSet + Debug + Send + Sync + 'static,
    V: ScrapedValue,
{
    /// Adds the family to `registry`.
    pub fn register(
        registry: &mut Registry,
        name: &'static str,
        help: &'static str,
        series: Vec<(S, V)>,
    ) {
        registry.register_collector(Box::new(Scraped { name, help, series }));
    }
}

impl<S, V> Collector for Scraped<S, V>
where
    S: EncodeLabelSet + Debug + Send + Sync + 'static,
    V: ScrapedValue,
{
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(self.name, self.help, None, V::TYPE)?;
        for (labels, value) in &self.series {
            value.encode(family.encode_family(labels)?)?;
        }
        Ok(())
    }
}
