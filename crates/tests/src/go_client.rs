//! Runs `compat/go`, the driver of the official Go RocketMQ client
//! (`github.com/apache/rocketmq-client-go/v2` v2.1.2, unmodified).
//!
//! `scripts/setup-compat-go` builds it into `target/compat-go/go-client`; a missing binary is
//! an error naming that script, never a skipped test. Each run prints JSON lines
//! (`compat/go/README.md`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Result};

use crate::driver::{self, Finished, Running};
use crate::repo_root;

/// The script that builds the driver.
pub const SETUP_SCRIPT: &str = "scripts/setup-compat-go";

/// The client's release, as its `started` lines say.
pub const RELEASE: &str = "v2.1.2";

/// Where the setup script puts the driver.
pub fn binary() -> PathBuf {
    repo_root().join("target/compat-go/go-client")
}

/// Runs the driver with `args` to its end (killed after `timeout`), whatever its exit code.
pub fn run(args: &[&str], timeout: Duration) -> Result<Finished> {
    run_program(&binary(), args, timeout)
}

/// Starts the driver with `args`, to watch its lines as it runs (killed after `timeout`).
pub fn spawn(args: &[&str], timeout: Duration) -> Result<Running> {
    check_program(&binary())?;
    let mut command = Command::new(binary());
    command.args(args);
    Running::spawn(&format!("Go client driver {args:?}"), command, timeout)
}

/// Fails unless the driver is built: a test calls this first, so a missing build fails it
/// at once with the script to run instead of in every scenario.
pub fn check_built() -> Result<()> {
    check_program(&binary())
}

fn check_program(program: &Path) -> Result<()> {
    if !program.exists() {
        bail!(
            "the Go RocketMQ client driver {} is not built: run {SETUP_SCRIPT} \
             (scripts/test does)",
            program.display()
        );
    }
    Ok(())
}

fn run_program(program: &Path, args: &[&str], timeout: Duration) -> Result<Finished> {
    run_with(program, args, None, timeout)
}

/// [`run`] with the driver's producer signing its requests with `credentials` (access key,
/// secret key: the client's `WithCredentials`).
pub fn run_signed(args: &[&str], credentials: (&str, &str), timeout: Duration) -> Result<Finished> {
    run_with(&binary(), args, Some(credentials), timeout)
}

fn run_with(
    program: &Path,
    args: &[&str],
    credentials: Option<(&str, &str)>,
    timeout: Duration,
) -> Result<Finished> {
    check_program(program)?;
    let mut command = Command::new(program);
    command.args(args);
    if let Some((access_key, secret_key)) = credentials {
        command
            .env("ROCKETMQ_ACCESS_KEY", access_key)
            .env("ROCKETMQ_SECRET_KEY", secret_key);
    }
    driver::run_to_end(&format!("Go client driver {args:?}"), command, timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_driver_fails_naming_the_setup_script() {
        let missing = Path::new("/nonexistent/go-client");
        let error = run_program(missing, &[], Duration::from_secs(1)).unwrap_err();
        assert!(error.to_string().contains(SETUP_SCRIPT), "{error:#}");
    }
}
