//! Runs `compat/cpp_client.py` (the C++ RocketMQ client through its Python binding) and
//! collects the JSON lines it prints.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::Result;

use crate::driver::{self, DriverOutput};
use crate::{compat_python, repo_root};

/// The driver script.
pub fn script() -> PathBuf {
    repo_root().join("crates/tests/compat/cpp_client.py")
}

/// What one run printed.
pub type ScriptOutput = DriverOutput;

/// Starts the script with `args` in the background; it is killed after `timeout`.
pub fn spawn(args: &[&str], timeout: Duration) -> Result<driver::Running> {
    let mut command = Command::new(compat_python());
    command
        .arg(script())
        .args(args)
        .env("HOME", std::env::temp_dir());
    driver::Running::spawn(&format!("cpp_client.py {args:?}"), command, timeout)
}

/// Runs the script with `args`, killing it after `timeout`; fails unless it exits 0.
pub fn run(args: &[&str], timeout: Duration) -> Result<ScriptOutput> {
    run_signed(args, None, timeout)
}

/// [`run`] with the clients signing their requests with `credentials` (access key, secret
/// key: ACL 1.0 session credentials).
pub fn run_signed(
    args: &[&str],
    credentials: Option<(&str, &str)>,
    timeout: Duration,
) -> Result<ScriptOutput> {
    let mut command = Command::new(compat_python());
    if let Some((access_key, secret_key)) = credentials {
        command
            .env("ROCKETMQ_ACCESS_KEY", access_key)
            .env("ROCKETMQ_SECRET_KEY", secret_key);
    }
    command
        .arg(script())
        .args(args)
        // The C++ client writes its own logs under $HOME; keep them out of the way.
        .env("HOME", std::env::temp_dir());
    driver::run(&format!("cpp_client.py {args:?}"), command, timeout)
}
