//! Runs `compat/rust-client` (a driver of the third-party Rust RocketMQ client,
//! `rocketmq-client-rust` 1.0.0) and collects the JSON lines it prints.
//!
//! The driver is its own Cargo package with its own dependency tree, built by
//! `scripts/setup-compat-rust-client` into `target/compat-rust-client`; a missing binary is
//! an error naming that script, never a skipped test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Result};

use crate::driver::{self, DriverOutput};
use crate::repo_root;

/// The script that builds the driver.
pub const SETUP_SCRIPT: &str = "scripts/setup-compat-rust-client";

/// Where the setup script puts the driver (its dev profile: see the script for why).
pub fn binary() -> PathBuf {
    repo_root().join("target/compat-rust-client/debug/rust-client")
}

/// What one run printed.
pub type Output = DriverOutput;

/// Runs the driver with `args`, killing it after `timeout`; fails unless it exits 0, with
/// everything it printed in the error.
pub fn run(args: &[&str], timeout: Duration) -> Result<Output> {
    run_program(&binary(), args, timeout)
}

/// Runs the driver with its producer signing requests with `credentials` (access key,
/// secret key: the client's `AclClientRPCHook`), however it ends.
pub fn run_signed(
    args: &[&str],
    credentials: Option<(&str, &str)>,
    timeout: Duration,
) -> Result<driver::Finished> {
    let mut command = command(&binary(), args)?;
    if let Some((access_key, secret_key)) = credentials {
        command
            .env("ROCKETMQ_ACCESS_KEY", access_key)
            .env("ROCKETMQ_SECRET_KEY", secret_key);
    }
    driver::run_to_end(&format!("rust-client {args:?}"), command, timeout)
}

/// Starts the driver with `args` in the background (to run beside another run of it); it is
/// killed after `timeout`.
pub fn spawn(args: &[&str], timeout: Duration) -> Result<driver::Running> {
    let command = command(&binary(), args)?;
    driver::Running::spawn(&format!("rust-client {args:?}"), command, timeout)
}

fn run_program(program: &Path, args: &[&str], timeout: Duration) -> Result<Output> {
    let command = command(program, args)?;
    driver::run(&format!("rust-client {args:?}"), command, timeout)
}

fn command(program: &Path, args: &[&str]) -> Result<Command> {
    if !program.exists() {
        bail!(
            "the Rust RocketMQ client driver {} is not built: run {SETUP_SCRIPT} \
             (scripts/test does)",
            program.display()
        );
    }
    let mut command = Command::new(program);
    command.args(args).env(
        "RUST_LOG",
        std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
    );
    Ok(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_driver_fails_naming_the_setup_script() {
        let missing = Path::new("/nonexistent/rust-client");
        let error = run_program(missing, &[], Duration::from_secs(1)).unwrap_err();
        assert!(error.to_string().contains(SETUP_SCRIPT), "{error:#}");
    }
}
