//! Metric families whose values are read at a scrape (for example summed from
//! [`crate::per_thread::PerThread`] tables), encoded as counters or histograms under the
//! scrape registry's prefix and labels.

use std::fmt::Debug;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::per_thread::HistogramValues;

/// A counter family: each series' labels and its total.
#[derive(Debug)]
pub struct Counters<S> {
    name: &'static str,
    help: &'static str,
    series: Vec<(S, u64)>,
}

impl<S: EncodeLabelSet + Debug + Send + Sync + 'static> Counters<S> {
    /// Adds the family to `registry`; like a registered counter, its samples get `_total`.
    pub fn register(
        registry: &mut Registry,
        name: &'static str,
        help: &'static str,
        series: Vec<(S, u64)>,
    ) {
        registry.register_collector(Box::new(Counters { name, help, series }));
    }
}

impl<S: EncodeLabelSet + Debug + Send + Sync + 'static> Collector for Counters<S> {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family =
            encoder.encode_descriptor(self.name, self.help, None, MetricType::Counter)?;
        for (labels, total) in &self.series {
            family
                .encode_family(labels)?
                .encode_counter::<NoLabelSet, _, u64>(total, None)?;
        }
        Ok(())
    }
}

/// A histogram family: each series' labels and its values.
#[derive(Debug)]
pub struct Histograms<S> {
    name: &'static str,
    help: &'static str,
    series: Vec<(S, HistogramValues)>,
}

impl<S: EncodeLabelSet + Debug + Send + Sync + 'static> Histograms<S> {
    pub fn register(
        registry: &mut Registry,
        name: &'static str,
        help: &'static str,
        series: Vec<(S, HistogramValues)>,
    ) {
        registry.register_collector(Box::new(Histograms { name, help, series }));
    }
}

impl<S: EncodeLabelSet + Debug + Send + Sync + 'static> Collector for Histograms<S> {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family =
            encoder.encode_descriptor(self.name, self.help, None, MetricType::Histogram)?;
        for (labels, values) in &self.series {
            family
                .encode_family(labels)?
                .encode_histogram::<NoLabelSet>(values.sum, values.count, &values.buckets, None)?;
        }
        Ok(())
    }
}
