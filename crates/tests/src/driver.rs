//! Runs a compatibility driver (a program that drives a RocketMQ client this project did not
//! write) with a time limit, and collects the JSON lines it prints.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// What one run printed.
#[derive(Debug)]
pub struct DriverOutput {
    /// The stdout lines that are JSON objects, in order; other lines are ignored.
    pub lines: Vec<Value>,
    pub stderr: String,
}

impl DriverOutput {
    /// The lines whose `op` is `op`.
    pub fn ops(&self, op: &str) -> Vec<&Value> {
        self.lines.iter().filter(|line| line["op"] == op).collect()
    }
}

/// How often a run is checked for having exited.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Runs `command` (program and arguments set; `name` says what it is in errors), killing it
/// after `timeout`; fails unless it exits 0, with everything it printed in the error.
pub fn run(name: &str, mut command: Command, timeout: Duration) -> Result<DriverOutput> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {name}"))?;
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
        bail!("{name} still running after {timeout:?}\nstdout:\n{out}\nstderr:\n{err}");
    };
    if !status.success() {
        bail!("{name} failed ({status})\nstdout:\n{out}\nstderr:\n{err}");
    }
    let mut lines = Vec::new();
    for line in out.lines().filter(|l| l.trim_start().starts_with('{')) {
        lines.push(serde_json::from_str(line).with_context(|| format!("not JSON: {line}"))?);
    }
    Ok(DriverOutput { lines, stderr: err })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(script: &str) -> Command {
        let mut command = Command::new("/bin/sh");
        command.args(["-c", script]);
        command
    }

    #[test]
    fn a_failing_run_reports_its_output() {
        let error = run(
            "sh",
            shell("echo '{\"op\":\"x\"}'; echo oops >&2; exit 3"),
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
    fn a_run_past_its_time_is_killed_and_reported() {
        let error = run(
            "sh",
            shell("echo started; sleep 30"),
            Duration::from_millis(300),
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("still running") && error.contains("started"),
            "{error}"
        );
    }

    #[test]
    fn json_lines_are_collected_and_other_lines_ignored() {
        let output = run(
            "sh",
            shell("echo '{\"op\":\"sent\",\"seq\":1}'; echo not json"),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(output.ops("sent").len(), 1);
        assert_eq!(output.lines.len(), 1);
    }
}
