//! Runs `compat/rust-client` (a driver of the third-party Rust RocketMQ client,
//! `rocketmq-client-rust` 1.0.0) and collects the JSON lines it prints.
//!
//! The driver is its own Cargo package with its own dependency tree, built by
//! `scripts/setup-compat-rust-client` into `target/compat-rust-client`; a missing binary is
//! an error naming that script, never a skipped test.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::repo_root;

/// The script that builds the driver.
pub const SETUP_SCRIPT: &str = "scripts/setup-compat-rust-client";

/// Where the setup script puts the driver (its dev profile: see the script for why).
pub fn binary() -> PathBuf {
    repo_root().join("target/compat-rust-client/debug/rust-client")
}

/// What one run printed.
#[derive(Debug)]
pub struct Output {
    pub lines: Vec<Value>,
    pub stderr: String,
}

impl Output {
    /// The lines whose `op` is `op`.
    pub fn ops(&self, op: &str) -> Vec<&Value> {
        self.lines.iter().filter(|line| line["op"] == op).collect()
    }
}

/// Runs the driver with `args`, killing it after `timeout`; fails unless it exits 0, with
/// everything it printed in the error.
pub fn run(args: &[&str], timeout: Duration) -> Result<Output> {
    run_program(&binary(), args, timeout)
}

/// How often a run is checked for having exited.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

fn run_program(program: &Path, args: &[&str], timeout: Duration) -> Result<Output> {
    if !program.exists() {
        bail!(
            "the Rust RocketMQ client driver {} is not built: run {SETUP_SCRIPT} \
             (scripts/test does)",
            program.display()
        );
    }
    let mut child = Command::new(program)
        .args(args)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    let mut stdout = child.stdout.take().context("stdout")?;
    let mut stderr = child.stderr.take().context("stderr")?;
    // Both pipes drain while the child runs, so neither can fill up and stall it.
    let out_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(POLL_INTERVAL);
    };
    let out = out_reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    let Some(status) = status else {
        bail!(
            "rust-client {args:?} still running after {timeout:?}\nstdout:\n{out}\nstderr:\n{err}"
        );
    };
    if !status.success() {
        bail!("rust-client {args:?} failed ({status})\nstdout:\n{out}\nstderr:\n{err}");
    }
    let mut lines = Vec::new();
    for line in out.lines().filter(|l| l.trim_start().starts_with('{')) {
        lines.push(serde_json::from_str(line).with_context(|| format!("not JSON: {line}"))?);
    }
    Ok(Output { lines, stderr: err })
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

    #[test]
    fn a_failing_run_reports_its_output() {
        let error = run_program(
            Path::new("/bin/sh"),
            &["-c", "echo '{\"op\":\"x\"}'; echo oops >&2; exit 3"],
            Duration::from_secs(10),
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("oops") && error.contains("\"op\""),
            "{error}"
        );
    }

    #[test]
    fn json_lines_are_collected_and_other_lines_ignored() {
        let output = run_program(
            Path::new("/bin/sh"),
            &["-c", "echo '{\"op\":\"sent\",\"seq\":1}'; echo not json"],
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(output.ops("sent").len(), 1);
        assert_eq!(output.lines.len(), 1);
    }
}
