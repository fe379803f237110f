//! Runs `compat/cpp_client.py` (the C++ RocketMQ client through its Python binding) and
//! collects the JSON lines it prints.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::{compat_python, repo_root};

/// The driver script.
pub fn script() -> PathBuf {
    repo_root().join("crates/tests/compat/cpp_client.py")
}

/// What one run printed.
#[derive(Debug)]
pub struct ScriptOutput {
    pub lines: Vec<Value>,
    pub stderr: String,
}

impl ScriptOutput {
    /// The lines whose `op` is `op`.
    pub fn ops(&self, op: &str) -> Vec<&Value> {
        self.lines.iter().filter(|line| line["op"] == op).collect()
    }
}

/// Runs the script with `args`, killing it after `timeout`; fails unless it exits 0.
pub fn run(args: &[&str], timeout: Duration) -> Result<ScriptOutput> {
    let mut child = Command::new(compat_python())
        .arg(script())
        .args(args)
        // The C++ client writes its own logs under $HOME; keep them out of the way.
        .env("HOME", std::env::temp_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting cpp_client.py")?;
    let mut stdout = child.stdout.take().context("stdout")?;
    let mut stderr = child.stderr.take().context("stderr")?;
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
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = out_reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    let Some(status) = status else {
        bail!("cpp_client.py {args:?} still running after {timeout:?}\nstdout:\n{out}\nstderr:\n{err}");
    };
    if !status.success() {
        bail!("cpp_client.py {args:?} failed ({status})\nstdout:\n{out}\nstderr:\n{err}");
    }
    let mut lines = Vec::new();
    for line in out.lines().filter(|l| l.trim_start().starts_with('{')) {
        lines.push(serde_json::from_str(line).with_context(|| format!("not JSON: {line}"))?);
    }
    Ok(ScriptOutput { lines, stderr: err })
}
