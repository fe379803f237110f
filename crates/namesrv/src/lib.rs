//! The name server: where brokers register and clients find topic routes.
//!
//! - [`config`]: the `namesrv.conf` keys.
//! - [`kvconfig`]: the KV config and its file (`kvConfigPath`).
//! - [`registry`]: the route registry and its rules (registration, expiry, role swaps).
//! - [`server`]: request handling on the name server's port, and [`server::start`].
//! - [`scrape`]: its Prometheus metrics (`metricsExporterType=PROM`).

pub mod config;
pub mod kvconfig;
pub mod registry;
pub mod scrape;
pub mod server;
