//! Runs a process with a time limit and captures what it prints: the compatibility drivers
//! (programs driving RocketMQ clients this project did not write), whose JSON lines are
//! collected, and the command-line tools under test. [`run`] wants exit 0; [`run_to_end`]
//! returns how the run ended whatever its exit code; [`Running`] lets a test watch a driver's
//! lines while it runs.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
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
    for line in out.lines() {
        if let Some(value) = json_line(line)? {
            lines.push(value);
        }
    }
    Ok(DriverOutput { lines, stderr: err })
}

/// `line` as JSON when it is an object; other lines are not the driver's.
fn json_line(line: &str) -> Result<Option<Value>> {
    if !line.trim_start().starts_with('{') {
        return Ok(None);
    }
    let value = serde_json::from_str(line).with_context(|| format!("not JSON: {line}"))?;
    Ok(Some(value))
}

/// How a driver run ended, whatever its exit code: for tests where a non-zero exit (a send
/// the broker refused, a consumer that timed out) is itself what is checked.
#[derive(Debug)]
pub struct Finished {
    /// What ran, for messages.
    pub name: String,
    /// `None` when it was still running at its time limit and was killed.
    pub status: Option<ExitStatus>,
    pub output: DriverOutput,
    /// The time limit it ran under.
    pub timeout: Duration,
}

/// Lines of stderr an error message keeps (the end, where the cause usually is).
const STDERR_TAIL_LINES: usize = 40;
/// JSON lines an error message keeps from each end of the output.
const STDOUT_END_LINES: usize = 25;

impl Finished {
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// The output of a run that exited 0; otherwise an error saying how it ended and what
    /// it printed.
    pub fn ok(self) -> Result<DriverOutput> {
        if self.succeeded() {
            return Ok(self.output);
        }
        bail!("{}", self.describe())
    }

    /// How the run ended and what it printed (the ends of long outputs).
    pub fn describe(&self) -> String {
        let ending = match self.status {
            None => format!("still running after {:?} and killed", self.timeout),
            Some(status) => format!("exited with {status}"),
        };
        let lines = &self.output.lines;
        let mut text = format!("{} {ending}", self.name);
        // What the driver said went wrong, first: the line a summary shows.
        let complaints: Vec<String> = lines
            .iter()
            .filter(|l| {
                ["failed", "send_failed", "timeout"].contains(&l["op"].as_str().unwrap_or(""))
            })
            .map(|l| {
                let mut complaint = l["op"].as_str().unwrap_or("").to_owned();
                for key in ["step", "response_code", "error", "distinct"] {
                    if let Some(value) = l.get(key).filter(|v| !v.is_null()) {
                        complaint.push_str(&format!(" {key}={value}"));
                    }
                }
                complaint
            })
            .collect();
        if let Some(first) = complaints.first() {
            text.push_str(&format!(
                ": {first}{}",
                if complaints.len() > 1 {
                    format!(" (and {} more such lines)", complaints.len() - 1)
                } else {
                    String::new()
                }
            ));
        }
        text.push_str(&format!("; {} JSON lines", lines.len()));
        let shown: Vec<String> = if lines.len() <= 2 * STDOUT_END_LINES {
            lines.iter().map(Value::to_string).collect()
        } else {
            let mut shown: Vec<String> = lines[..STDOUT_END_LINES]
                .iter()
                .map(Value::to_string)
                .collect();
            shown.push(format!(
                "... {} more ...",
                lines.len() - 2 * STDOUT_END_LINES
            ));
            shown.extend(
                lines[lines.len() - STDOUT_END_LINES..]
                    .iter()
                    .map(Value::to_string),
            );
            shown
        };
        for line in shown {
            text.push_str("\n  ");
            text.push_str(&line);
        }
        let stderr: Vec<&str> = self.output.stderr.lines().collect();
        let tail = &stderr[stderr.len().saturating_sub(STDERR_TAIL_LINES)..];
        if !tail.is_empty() {
            text.push_str(&format!("\nlast {} lines of stderr:", tail.len()));
            for line in tail {
                text.push_str("\n  ");
                text.push_str(line);
            }
        }
        text
    }
}

/// Runs `command` to its end (killing it after `timeout`) and returns how it ended, whatever
/// its exit code; fails only when it cannot be started or prints a broken JSON line.
pub fn run_to_end(name: &str, command: Command, timeout: Duration) -> Result<Finished> {
    Running::spawn(name, command, timeout)?.finish()
}

/// A driver running in the background whose JSON lines can be watched as they come (to
/// act at a given point of its run, e.g. kill a broker after so many sends).
pub struct Running {
    name: String,
    child: Option<Child>,
    timeout: Duration,
    deadline: Instant,
    lines: Arc<Mutex<Vec<Value>>>,
    broken: Arc<Mutex<Vec<String>>>,
    out_reader: Option<std::thread::JoinHandle<()>>,
    err_reader: Option<std::thread::JoinHandle<String>>,
}

impl Running {
    /// Starts `command` with its stdout read line by line; it is killed once `timeout` has
    /// passed (at the latest when [`Running::finish`] looks, or when dropped).
    pub fn spawn(name: &str, mut command: Command, timeout: Duration) -> Result<Running> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let broken = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take();
        let out_reader = {
            let (lines, broken) = (Arc::clone(&lines), Arc::clone(&broken));
            std::thread::spawn(move || {
                let Some(stdout) = stdout else { return };
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { return };
                    match json_line(&line) {
                        Ok(Some(value)) => lines.lock().unwrap().push(value),
                        Ok(None) => {}
                        Err(_) => broken.lock().unwrap().push(line),
                    }
                }
            })
        };
        let err_reader = drain(child.stderr.take());
        Ok(Running {
            name: name.to_owned(),
            child: Some(child),
            timeout,
            deadline: Instant::now() + timeout,
            lines,
            broken,
            out_reader: Some(out_reader),
            err_reader: Some(err_reader),
        })
    }

    /// The JSON lines printed so far.
    pub fn lines(&self) -> Vec<Value> {
        self.lines.lock().unwrap().clone()
    }

    /// How many lines with `op` were printed so far.
    pub fn count(&self, op: &str) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l["op"] == op)
            .count()
    }

    /// Waits until `done` holds for the lines so far, the driver exits, or `timeout`
    /// passes; returns whether `done` held.
    pub fn wait_until(&mut self, timeout: Duration, done: impl Fn(&[Value]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if done(&self.lines.lock().unwrap()) {
                return true;
            }
            let exited = self
                .child
                .as_mut()
                .is_none_or(|c| matches!(c.try_wait(), Ok(Some(_))));
            if exited || Instant::now() >= deadline {
                // Lines printed just before the exit may still be on their way.
                std::thread::sleep(POLL_INTERVAL * 5);
                return done(&self.lines.lock().unwrap());
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Waits for the driver to exit (killing it at its time limit) and returns how it
    /// ended with everything it printed.
    pub fn finish(mut self) -> Result<Finished> {
        let mut child = self.child.take().context("finished twice")?;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break Some(status);
            }
            if Instant::now() >= self.deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(POLL_INTERVAL);
        };
        if let Some(reader) = self.out_reader.take() {
            let _ = reader.join();
        }
        let stderr = self
            .err_reader
            .take()
            .map(|r| r.join().unwrap_or_default())
            .unwrap_or_default();
        let broken = self.broken.lock().unwrap().clone();
        if let Some(line) = broken.first() {
            bail!("{} printed a line that is not JSON: {line}", self.name);
        }
        let lines = std::mem::take(&mut *self.lines.lock().unwrap());
        Ok(Finished {
            name: self.name.clone(),
            status,
            output: DriverOutput { lines, stderr },
            timeout: self.timeout,
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
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
            shell("echo started; exec sleep 30"),
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
    fn a_run_to_its_end_keeps_what_a_failing_driver_said() {
        let finished = run_to_end(
            "sh",
            shell("echo '{\"op\":\"failed\",\"step\":\"send\",\"response_code\":3}'; exit 1"),
            Duration::from_secs(10),
        )
        .unwrap();
        assert!(!finished.succeeded());
        assert_eq!(finished.output.ops("failed").len(), 1);
        let error = finished.ok().unwrap_err().to_string();
        assert!(
            error.contains("failed step=\"send\" response_code=3"),
            "{error}"
        );
    }

    #[test]
    fn a_running_driver_is_watched_line_by_line() {
        let mut running = Running::spawn(
            "sh",
            shell("echo '{\"op\":\"sent\"}'; sleep 0.3; echo '{\"op\":\"sent\"}'"),
            Duration::from_secs(10),
        )
        .unwrap();
        assert!(running.wait_until(Duration::from_secs(5), |lines| lines.len() == 2));
        assert_eq!(running.count("sent"), 2);
        let finished = running.finish().unwrap();
        assert!(finished.succeeded());
        assert_eq!(finished.output.lines.len(), 2);
    }

    #[test]
    fn a_running_driver_past_its_time_is_killed() {
        let running =
            Running::spawn("sh", shell("exec sleep 30"), Duration::from_millis(200)).unwrap();
        let finished = running.finish().unwrap();
        assert!(finished.status.is_none());
        assert!(
            finished.describe().contains("killed"),
            "{}",
            finished.describe()
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
