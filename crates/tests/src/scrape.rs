//! Scraping a server's Prometheus endpoint as Prometheus would: an HTTP GET of `/metrics`,
//! the body read by `prometheus-parse` (a parser this project did not write), every sample
//! line accounted for.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use prometheus_parse::{Sample, Value};

/// One scrape's samples.
pub struct Scrape {
    pub samples: Vec<Sample>,
    pub text: String,
}

/// GETs `http://{addr}/metrics` and parses the answer; fails on a status other than 200, a
/// content type other than the Prometheus text format, or a line the parser could not read.
pub fn scrape(addr: &str) -> Result<Scrape> {
    let mut stream =
        TcpStream::connect(addr).with_context(|| format!("connecting to {addr} for a scrape"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    // Bounded: the server closes the connection after one answer (`Connection: close`),
    // and a stalled read times out.
    stream.take(64 << 20).read_to_end(&mut answer)?;
    let answer = String::from_utf8(answer).context("the scrape is not UTF-8")?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .context("no end of HTTP headers")?;
    let status = head.lines().next().unwrap_or_default();
    if !status.contains(" 200 ") {
        bail!("scrape of {addr} answered `{status}`");
    }
    let content_type = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default();
    if !content_type.starts_with("text/plain; version=0.0.4") {
        bail!("scrape of {addr} has content type `{content_type}`");
    }
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)?
    } else {
        body.to_owned()
    };
    let parsed = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned())))?;
    // The parser skips lines it cannot read; every sample line must have become a sample
    // (a histogram's bucket lines become one sample with its buckets).
    let sample_lines = body
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .count();
    let parsed_lines: usize = parsed
        .samples
        .iter()
        .map(|s| match &s.value {
            Value::Histogram(buckets) => buckets.len(),
            Value::Summary(quantiles) => quantiles.len(),
            _ => 1,
        })
        .sum();
    if sample_lines != parsed_lines {
        bail!("{sample_lines} sample lines but {parsed_lines} parsed:\n{body}");
    }
    Ok(Scrape {
        samples: parsed.samples,
        text: body,
    })
}

fn dechunk(body: &str) -> Result<String> {
    let mut out = String::new();
    let mut rest = body;
    // Bounded by the body: each round consumes a chunk.
    loop {
        let (size, after) = rest.split_once("\r\n").context("chunk size line")?;
        let size = usize::from_str_radix(size.trim(), 16).context("chunk size")?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = after.get(..size).context("chunk shorter than its size")?;
        out.push_str(chunk);
        rest = after
            .get(size + 2..)
            .context("chunk without its line end")?;
    }
}

impl Scrape {
    /// The value of the series `metric` whose labels include every pair of `labels`, summed
    /// over the series that match (0 when none does). Counters, gauges and the `_count` /
    /// `_sum` lines of histograms.
    pub fn value(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(metric, labels)
            .map(|s| match s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    }

    /// How many series of `metric` match `labels`.
    pub fn series(&self, metric: &str, labels: &[(&str, &str)]) -> usize {
        self.matching(metric, labels).count()
    }

    fn matching<'a>(
        &'a self,
        metric: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| {
            s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
        })
    }
}
