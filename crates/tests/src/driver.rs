//! Runs a process with a time limit and captures what it prints: the compatibility drivers
//! (programs driving RocketMQ clients this project did not write), whose JSON lines are
//! collected, and the command-line tools under test.

use std::io::{Read, Write};
use std::process::{Command, ExitStatus, Stdio};
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

/// What a finished (or killed) process printed.
#[derive(Debug)]
pub struct Captured {
    /// `None` when it was still running at its time limit and was killed.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command`, writing `stdin` to it when given, and kills it after `timeout`. Both
/// pipes drain on their own threads while it runs, so a chatty process cannot fill one up
/// and stall.
pub fn run_captured(
    command: &mut Command,
    stdin: Option<&str>,
    timeout: Duration,
) -> std::io::Result<Captured> {
    let mut child = command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())?;
    }
    let out_reader = drain(child.stdout.take());
    let err_reader = drain(child.stderr.take());
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
    Ok(Captured {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    })
}

/// Reads `pipe` to its end on its own thread.
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}

/// Runs `command` (program and arguments set; `name` says what it is in errors), killing it
/// after `timeout`; fails unless it exits 0, with everything it printed in the error.
pub fn run(name: &str, mut command: Command, timeout: Duration) -> Result<DriverOutput> {
    let Captured {
        status,
        stdout: out,
        stderr: err,
    } = run_captured(&mut command, None, timeout).with_context(|| format!("running {name}"))?;
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
