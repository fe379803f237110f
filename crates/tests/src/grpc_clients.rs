//! Runs the drivers of Apache's RocketMQ 5 gRPC clients other than Java's (that one lives
//! beside the remoting client's driver, see [`crate::java_client`]): the Python client
//! (`rocketmq-python-client` from PyPI, `compat/python-grpc/driver.py`) and the Node.js
//! client (`rocketmq-client-nodejs` from npm, `compat/nodejs-grpc/driver.js`) and the Rust
//! client (`rocketmq` 5.0.0 from crates.io, `compat/rust-grpc`, a cargo project of its own
//! built into `target/compat-rust-grpc`) and the Go client
//! (`github.com/apache/rocketmq-clients/golang/v5` v5.1.2 from the Go module proxy,
//! `compat/go-grpc`, a Go module of its own built into `target/compat-go-grpc`), unmodified,
//! each installed by its setup script under `target/`. A missing install is an error naming
//! the script, never a skipped test.
//! The drivers take the same commands and print the same JSON lines (`produce`, `simple`,
//! `transaction`). The Rust client has no changeInvisibleDuration: its driver's
//! `simple --nack-first` leaves each first delivery unacknowledged (invisible 10 s) instead,
//! and its `nacked` lines say so (`"by": "invisible-time-elapsed"`). The Go driver adds
//! `produce --delay-ms MS` (as Node.js's) and `--message-groups N` (FIFO messages of groups
//! `G0`..), `simple --batch B`, and a `group` and `keys` in its `received` lines; its
//! receives long-poll 20 s (see `compat/go-grpc/main.go`).

use std::fmt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Result};

use crate::driver::{self, Finished};
use crate::repo_root;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrpcClient {
    Python,
    NodeJs,
    Rust,
    GoV5,
}

impl GrpcClient {
    pub const OTHERS: [GrpcClient; 4] = [
        GrpcClient::Python,
        GrpcClient::NodeJs,
        GrpcClient::Rust,
        GrpcClient::GoV5,
    ];

    pub fn release(self) -> &'static str {
        match self {
            GrpcClient::Python => "5.1.2",
            GrpcClient::NodeJs => "1.0.8",
            GrpcClient::Rust => "5.0.0",
            GrpcClient::GoV5 => "5.1.2",
        }
    }

    fn setup_script(self) -> &'static str {
        match self {
            GrpcClient::Python => "scripts/setup-compat-python-grpc",
            GrpcClient::NodeJs => "scripts/setup-compat-nodejs-grpc",
            GrpcClient::Rust => "scripts/setup-compat-rust-grpc",
            GrpcClient::GoV5 => "scripts/setup-compat-go-grpc",
        }
    }

    /// What must exist once the setup script ran.
    fn installed(self) -> PathBuf {
        match self {
            GrpcClient::Python => repo_root().join("target/compat-python-grpc/bin/python"),
            GrpcClient::NodeJs => {
                repo_root().join("target/compat-nodejs-grpc/node_modules/rocketmq-client-nodejs")
            }
            // The setup script builds the dev profile (see compat/rust-grpc/Cargo.toml).
            GrpcClient::Rust => repo_root().join("target/compat-rust-grpc/debug/rust-grpc"),
            GrpcClient::GoV5 => repo_root().join("target/compat-go-grpc/go-grpc"),
        }
    }

    pub fn check_installed(self) -> Result<()> {
        if !self.installed().exists() {
            bail!(
                "the {self} is not installed: run {} (scripts/test does)",
                self.setup_script()
            );
        }
        Ok(())
    }

    fn command(self) -> Command {
        let root = repo_root();
        let mut command = match self {
            GrpcClient::Python => {
                let mut c = Command::new(self.installed());
                c.arg(root.join("compat/python-grpc/driver.py"));
                c
            }
            GrpcClient::NodeJs => {
                let mut c = Command::new("node");
                c.arg(root.join("compat/nodejs-grpc/driver.js")).env(
                    "NODE_PATH",
                    root.join("target/compat-nodejs-grpc/node_modules"),
                );
                c
            }
            GrpcClient::Rust | GrpcClient::GoV5 => Command::new(self.installed()),
        };
        // The clients write their logs under $HOME; keep them out of the way.
        command.env("HOME", std::env::temp_dir());
        command
    }

    /// Runs the driver with `args` to its end (killed after `timeout`).
    pub fn run(self, args: &[&str], timeout: Duration) -> Result<Finished> {
        self.check_installed()?;
        let mut command = self.command();
        command.args(args);
        driver::run_to_end(&format!("{self} driver {args:?}"), command, timeout)
    }

    /// [`GrpcClient::run`] with the client signing its calls with `credentials` (access
    /// key, secret key).
    pub fn run_signed(
        self,
        args: &[&str],
        credentials: (&str, &str),
        timeout: Duration,
    ) -> Result<Finished> {
        self.check_installed()?;
        let mut command = self.command();
        command
            .args(args)
            .env("ROCKETMQ_ACCESS_KEY", credentials.0)
            .env("ROCKETMQ_SECRET_KEY", credentials.1);
        driver::run_to_end(&format!("{self} driver {args:?}"), command, timeout)
    }
}

impl fmt::Display for GrpcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            GrpcClient::Python => "Python gRPC client",
            GrpcClient::NodeJs => "Node.js gRPC client",
            GrpcClient::Rust => "Rust gRPC client",
            GrpcClient::GoV5 => "Go gRPC client",
        };
        write!(f, "{name} {}", self.release())
    }
}
