//! Runs `compat/java`, the driver of the official Java RocketMQ remoting client
//! (`rocketmq-client` and `rocketmq-tools` from Maven Central, unmodified), built twice: against
//! 4.9.8 and against 5.5.0.
//!
//! `scripts/setup-compat-java` builds `target/compat-java/rocketmq-{4,5}/driver.jar` (its
//! dependencies in `lib/` beside it); a missing jar is an error naming that script, never a
//! skipped test. Each run is one `java -jar` process printing JSON lines
//! (`compat/java/README.md`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Result};

use crate::driver::{self, Finished, Running};
use crate::repo_root;

/// The script that builds both jars.
pub const SETUP_SCRIPT: &str = "scripts/setup-compat-java";

/// Options for the driver's JVM: the client is started afresh for every run, so start-up
/// cost matters more than peak speed (C1 only: a run takes about half the CPU time), and a
/// test machine runs several at once (the serial collector, a bounded heap).
const JVM_OPTIONS: [&str; 4] = [
    "-XX:TieredStopAtLevel=1",
    "-XX:+UseSerialGC",
    "-Xss512k",
    "-Xmx512m",
];

/// A client generation the driver is built against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// rocketmq-client 4.9.8.
    V4,
    /// rocketmq-client 5.5.0 (the remoting client).
    V5,
}

impl Version {
    pub const ALL: [Version; 2] = [Version::V4, Version::V5];

    /// The client's release.
    pub fn release(self) -> &'static str {
        match self {
            Version::V4 => "4.9.8",
            Version::V5 => "5.5.0",
        }
    }

    /// What `started` lines say the client is (MQVersion).
    pub fn version_desc(self) -> &'static str {
        match self {
            Version::V4 => "V4_9_8",
            Version::V5 => "V5_5_0",
        }
    }

    /// 4 or 5.
    pub fn major(self) -> u8 {
        match self {
            Version::V4 => 4,
            Version::V5 => 5,
        }
    }

    /// The jar built against this version.
    pub fn jar(self) -> PathBuf {
        repo_root().join(format!(
            "target/compat-java/rocketmq-{}/driver.jar",
            self.major()
        ))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Java client {}", self.release())
    }
}

/// The driver of Apache's RocketMQ 5 gRPC client (rocketmq-client-java 5.0.8,
/// `compat/java/src-grpc`).
pub const GRPC_RELEASE: &str = "5.0.8";

pub fn grpc_jar() -> PathBuf {
    repo_root().join("target/compat-java/rocketmq-grpc/driver.jar")
}

/// Runs the gRPC client's driver with `args` to its end (killed after `timeout`).
pub fn run_grpc(args: &[&str], timeout: Duration) -> Result<Finished> {
    driver::run_to_end(
        &format!("Java gRPC client {GRPC_RELEASE} driver {args:?}"),
        command(&grpc_jar(), args)?,
        timeout,
    )
}

/// [`run_grpc`] with the client signing its calls with `credentials` (access key, secret
/// key).
pub fn run_grpc_signed(
    args: &[&str],
    credentials: (&str, &str),
    timeout: Duration,
) -> Result<Finished> {
    let mut command = command(&grpc_jar(), args)?;
    command
        .env("ROCKETMQ_ACCESS_KEY", credentials.0)
        .env("ROCKETMQ_SECRET_KEY", credentials.1);
    driver::run_to_end(
        &format!("Java gRPC client {GRPC_RELEASE} driver {args:?}"),
        command,
        timeout,
    )
}

/// Starts the gRPC client's driver in the background (killed after `timeout`).
pub fn spawn_grpc(args: &[&str], timeout: Duration) -> Result<Running> {
    Running::spawn(
        &format!("Java gRPC client {GRPC_RELEASE} driver {args:?}"),
        command(&grpc_jar(), args)?,
        timeout,
    )
}

/// The `java -jar` command for `args`, after checking the jar is built.
fn command(jar: &Path, args: &[&str]) -> Result<Command> {
    if !jar.exists() {
        bail!(
            "the Java RocketMQ client driver {} is not built: run {SETUP_SCRIPT} \
             (scripts/test does)",
            jar.display()
        );
    }
    let mut command = Command::new("java");
    command.args(JVM_OPTIONS).arg("-jar").arg(jar).args(args);
    Ok(command)
}

/// Fails unless both jars are built and `java` runs: a test calls this first, so a missing
/// build fails it at once with the script to run instead of in every scenario.
pub fn check_built() -> Result<()> {
    for version in Version::ALL {
        command(&version.jar(), &[])?;
    }
    command(&grpc_jar(), &[])?;
    let java = Command::new("java").arg("-version").output();
    if !java.is_ok_and(|out| out.status.success()) {
        bail!("`java -version` does not run: the Java driver needs a JDK 17 on PATH ({SETUP_SCRIPT} installs one when run as root)");
    }
    Ok(())
}

fn name(version: Version, args: &[&str]) -> String {
    format!("{version} driver {args:?}")
}

/// Runs the driver of `version` with `args` to its end (killed after `timeout`), whatever
/// its exit code.
pub fn run(version: Version, args: &[&str], timeout: Duration) -> Result<Finished> {
    driver::run_to_end(
        &name(version, args),
        command(&version.jar(), args)?,
        timeout,
    )
}

/// [`run`] with the driver's producer signing its requests with `credentials` (access key,
/// secret key) through the client's own `AclClientRPCHook`.
pub fn run_signed(
    version: Version,
    args: &[&str],
    credentials: (&str, &str),
    timeout: Duration,
) -> Result<Finished> {
    let mut command = command(&version.jar(), args)?;
    command
        .env("ROCKETMQ_ACCESS_KEY", credentials.0)
        .env("ROCKETMQ_SECRET_KEY", credentials.1);
    driver::run_to_end(&name(version, args), command, timeout)
}

/// Starts the driver of `version` with `args` in the background (killed after `timeout`).
pub fn spawn(version: Version, args: &[&str], timeout: Duration) -> Result<Running> {
    Running::spawn(
        &name(version, args),
        command(&version.jar(), args)?,
        timeout,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_jar_fails_naming_the_setup_script() {
        let error = command(Path::new("/nonexistent/driver.jar"), &[]).unwrap_err();
        assert!(error.to_string().contains(SETUP_SCRIPT), "{error:#}");
    }

    #[test]
    fn each_version_has_its_own_jar() {
        assert_ne!(Version::V4.jar(), Version::V5.jar());
        assert!(Version::V5.jar().ends_with("rocketmq-5/driver.jar"));
    }
}
