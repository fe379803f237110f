//! How a server exports its metrics, under RocketMQ 5's broker keys (the name server reads
//! the same keys from `namesrv.conf`): `metricsExporterType`, `metricsPromExporterHost`,
//! `metricsPromExporterPort`, `metricsLabel`.

use crate::{BadSetting, Setting};

/// `metricsExporterType`. RocketMQ also knows OTLP_GRPC and LOG; this project exports to
/// Prometheus only, and says so rather than start without the metrics an operator asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExporterType {
    #[default]
    Disable,
    Prom,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsExporter {
    pub exporter_type: ExporterType,
    /// `metricsPromExporterHost`: the address the scrape endpoint binds; empty means the
    /// server's own address (RocketMQ: `brokerIP1`).
    pub prom_host: String,
    /// `metricsPromExporterPort` (RocketMQ's default 5557; 0 lets the system pick).
    pub prom_port: u16,
    /// `metricsLabel`: extra labels on every metric, `k1:v1,k2:v2`.
    pub labels: Vec<(String, String)>,
}

impl Default for MetricsExporter {
    fn default() -> Self {
        MetricsExporter {
            exporter_type: ExporterType::Disable,
            prom_host: String::new(),
            prom_port: 5557,
            labels: Vec::new(),
        }
    }
}

impl MetricsExporter {
    /// Applies `s` when it is one of these keys; `Ok(false)` when it is not.
    pub fn apply(&mut self, s: &Setting) -> Result<bool, BadSetting> {
        match s.key.as_str() {
            "metricsExporterType" => self.exporter_type = parse_type(s)?,
            "metricsPromExporterHost" => self.prom_host = s.value.trim().to_owned(),
            "metricsPromExporterPort" => self.prom_port = s.parse_u16()?,
            "metricsLabel" => self.labels = parse_labels(s)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    pub fn enabled(&self) -> bool {
        self.exporter_type == ExporterType::Prom
    }
}

/// RocketMQ accepts the enum's name or its number (DISABLE 0, OTLP_GRPC 1, PROM 2, LOG 3).
fn parse_type(s: &Setting) -> Result<ExporterType, BadSetting> {
    match s.value.trim() {
        "DISABLE" | "0" => Ok(ExporterType::Disable),
        "PROM" | "2" => Ok(ExporterType::Prom),
        "OTLP_GRPC" | "1" | "LOG" | "3" => Err(s.bad(
            "this server exports metrics to Prometheus only: use PROM (scraped on \
             metricsPromExporterPort) or DISABLE",
        )),
        _ => Err(s.bad("expected DISABLE or PROM")),
    }
}

fn parse_labels(s: &Setting) -> Result<Vec<(String, String)>, BadSetting> {
    let mut labels = Vec::new();
    for pair in s.value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once(':')
            .ok_or_else(|| s.bad(format!("`{pair}` is not key:value")))?;
        let key = key.trim();
        let valid_name = key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            return Err(s.bad(format!("`{key}` is not a Prometheus label name")));
        }
        labels.push((key.to_owned(), value.trim().to_owned()));
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(text: &str) -> Result<MetricsExporter, BadSetting> {
        let mut exporter = MetricsExporter::default();
        for setting in crate::parse(text) {
            assert!(exporter.apply(&setting)?, "{} not taken", setting.key);
        }
        Ok(exporter)
    }

    #[test]
    fn keys_defaults_and_bad_values() {
        let default = MetricsExporter::default();
        assert!(!default.enabled());
        assert_eq!(default.prom_port, 5557);

        let exporter = apply(
            "metricsExporterType=PROM\nmetricsPromExporterHost=127.0.0.1\n\
             metricsPromExporterPort=5600\nmetricsLabel=region:east, zone:a1",
        )
        .unwrap();
        assert!(exporter.enabled());
        assert_eq!(exporter.prom_host, "127.0.0.1");
        assert_eq!(exporter.prom_port, 5600);
        assert_eq!(
            exporter.labels,
            vec![
                ("region".into(), "east".into()),
                ("zone".into(), "a1".into())
            ]
        );
        assert!(apply("metricsExporterType=2").unwrap().enabled());
        assert!(!apply("metricsExporterType=0").unwrap().enabled());

        let otlp = apply("metricsExporterType=OTLP_GRPC").unwrap_err();
        assert!(otlp.to_string().contains("PROM"), "{otlp}");
        assert!(apply("metricsExporterType=prom").is_err());
        assert!(apply("metricsPromExporterPort=70000").is_err());
        assert!(apply("metricsLabel=novalue").is_err());
        assert!(apply("metricsLabel=1bad:x").is_err());
    }
}
