//! End-to-end, compatibility and fault tests over real processes.
//!
//! This library is the harness the tests in `tests/` share:
//! - [`free_port`] and [`wait_for_port`]: servers bind 127.0.0.1 ports the OS hands out.
//! - [`Process`]: a spawned binary (`mqnamesrv`, `mqbroker`, ...) with its log file, killed
//!   when dropped, and signals for fault tests (SIGKILL, SIGSTOP/SIGCONT, SIGTERM).
//! - [`NameServer`] and [`Broker`]: start the real binaries with a config file written into a
//!   test's own directory.
//! - [`compat_python`]: the virtualenv holding the C++ RocketMQ client
//!   (`scripts/setup-compat-client` installs it).
//! - [`driver`]: runs a compatibility driver with a time limit and collects its JSON lines.
//! - [`cpp_client`]: runs the C++ client driver script and parses what it prints.
//! - [`rust_client`]: runs the driver of the third-party Rust RocketMQ client
//!   (`scripts/setup-compat-rust-client` builds it) and parses what it prints.
//! - [`java_client`] and [`go_client`]: run the drivers of the official Java (4.9.8 and
//!   5.5.0) and Go RocketMQ clients (`scripts/setup-compat-java`, `scripts/setup-compat-go`).
//! - [`compat`]: what the official clients' compatibility tests share: servers started once,
//!   the messages a driver's produce run makes and the checks of what its consumers print.
//! - [`scenario`]: runs many scenarios against shared servers and reports every one.
//! - [`requests`]: the requests RocketMQ clients send, for driving servers directly.
//! - [`group`]: [`group::BrokerGroup`], a DLedger-mode broker group of real `mqbroker`
//!   processes, and waits for its master and members.
//! - [`netns`]: members on hosts of their own (network namespaces), for partitions.
//! - [`powercut_fs`]: a FUSE filesystem that loses everything not fsynced on a power cut.
//! - [`fault_group`]: a group placed for a fault test (stores on power-cut filesystems,
//!   members on hosts of their own) with its topic made and routed.
//! - [`checker`]: load that records every acknowledged send, and the check that a consumer
//!   reading every queue from offset 0 finds each one exactly where its send result said.

use std::fs;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub mod checker;
pub mod clocks;
pub mod compat;
pub mod cpp_client;
pub mod driver;
pub mod fault_group;
pub mod go_client;
pub mod group;
pub mod grpc_clients;
pub mod java_client;
pub mod netns;
pub mod powercut_fs;
pub mod requests;
pub mod rust_client;
pub mod scenario;
pub mod scrape;

/// What `mqnamesrv` and `mqbroker` log once start-up went through, as RocketMQ's do.
const BOOT_SUCCESS: &str = "boot success";
/// What a broker logs when its `grpcServerPort` is held by another process.
const GRPC_PORT_TAKEN: &str = "cannot listen for gRPC";

/// How long a freshly started server may take to accept connections.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A 127.0.0.1 port that was free a moment ago. Another process could take it before the
/// server binds it; starting servers retry with a new port when that happens.
pub fn free_port() -> u16 {
    free_listen_port(|_| true)
}

/// A broker `listenPort` that was free a moment ago together with `listenPort - 2`, where a
/// broker also listens (RocketMQ's VIP channel): a broker that finds that one taken stops
/// after its client port already answered.
pub fn free_broker_port() -> u16 {
    free_listen_port(|port| port > 1026 && TcpListener::bind(("127.0.0.1", port - 2)).is_ok())
}

/// Lowest port the kernel hands out to outgoing connections and `bind(0)`.
fn ephemeral_port_floor() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768)
}

/// Test servers listen below the ephemeral range: a port taken from it can be handed to
/// some client's outgoing connection while its server is down for a restart, and the
/// restarted server then cannot bind it. Each test process walks its own stretch of the
/// range (by pid) so parallel test binaries rarely try the same ports.
fn free_listen_port(also_free: impl Fn(u16) -> bool) -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const LOWEST: u32 = 10_000;
    let top = u32::from(ephemeral_port_floor()).max(LOWEST + 2_000);
    let span = top - LOWEST;
    let start = std::process::id().wrapping_mul(7_919) % span;
    // Bounded: a few thousand tries over a range where almost every port is free.
    for _ in 0..span.min(4_000) {
        let step = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (LOWEST + (start + step * 3) % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() && also_free(port) {
            return port;
        }
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// Waits until something accepts TCP connections on `port`, or `timeout` passes.
pub fn wait_for_port(port: u16, timeout: Duration) -> Result<()> {
    wait_for_addr("127.0.0.1", port, timeout)
}

/// [`wait_for_port`] on another address than 127.0.0.1.
pub fn wait_for_addr(host: &str, port: u16, timeout: Duration) -> Result<()> {
    let ip: std::net::IpAddr = host
        .parse()
        .with_context(|| format!("{host}: not an IP address"))?;
    let addr = SocketAddr::from((ip, port));
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("nothing listens on {addr} after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The path of a binary built from this workspace (`cargo test` builds them next to the
/// test executables' parent directory).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let mut dir = exe.parent().expect("deps dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "binary {} not built; run `cargo build --workspace --bins` first (scripts/test does)",
        path.display()
    );
    path
}

/// The root of this repository.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("repository root")
        .to_path_buf()
}

/// The Python of the virtualenv that holds the C++ RocketMQ client.
pub fn compat_python() -> PathBuf {
    let python = repo_root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: run scripts/setup-compat-client (scripts/test does)",
        python.display()
    );
    python
}

/// A running child process, killed (SIGKILL) when dropped.
pub struct Process {
    name: String,
    child: Option<Child>,
    log_path: PathBuf,
}

impl Process {
    /// Spawns `program` with `args`, stdout and stderr going to `log_path`.
    pub fn spawn(name: &str, program: &Path, args: &[&str], log_path: PathBuf) -> Result<Process> {
        Self::spawn_in(name, program, args, log_path, None, &[])
    }

    /// [`spawn`](Self::spawn) inside network namespace `netns` (a name under
    /// /var/run/netns) when given. Only the network namespace changes: `ip netns exec` would
    /// also give the process a mount namespace of its own, holding on to copies of the
    /// test's FUSE mounts, which then never go away when the test unmounts them. `env` is
    /// added to the test's environment.
    pub fn spawn_in(
        name: &str,
        program: &Path,
        args: &[&str],
        log_path: PathBuf,
        netns: Option<&str>,
        env: &[(String, String)],
    ) -> Result<Process> {
        let log = fs::File::create(&log_path)
            .with_context(|| format!("create log {}", log_path.display()))?;
        let mut command = Command::new(program);
        // Opened before the fork; closed in the child by exec (O_CLOEXEC) and here on return.
        let netns_file = netns
            .map(|netns| {
                let path = Path::new("/var/run/netns").join(netns);
                fs::File::open(&path).with_context(|| format!("open {}", path.display()))
            })
            .transpose()?;
        if let Some(file) = &netns_file {
            use std::os::unix::io::AsRawFd;
            use std::os::unix::process::CommandExt;
            let fd = file.as_raw_fd();
            // SAFETY: setns(2) is async-signal-safe and touches only the child's own state.
            unsafe {
                command.pre_exec(move || {
                    if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = command
            .args(args)
            .env(
                "RUST_LOG",
                // Whatever the level, the boot lines [`wait_started`] looks for are logged.
                format!(
                    "{},mqnamesrv=info,broker::runtime=info",
                    std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into())
                ),
            )
            // A start-up error is the last thing in the log, where a failed test shows it,
            // not buried under its backtrace (panics keep theirs, from RUST_BACKTRACE).
            .env("RUST_LIB_BACKTRACE", "0")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawn {}", program.display()))?;
        Ok(Process {
            name: name.to_string(),
            child: Some(child),
            log_path,
        })
    }

    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    fn signal(&self, signal: i32) {
        if let Some(pid) = self.pid() {
            // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
            unsafe {
                libc::kill(pid, signal);
            }
        }
    }

    /// kill -9: the process gets no chance to flush or say goodbye.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP: the process freezes with its sockets open, as in a long GC pause.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    /// SIGTERM and wait (bounded) for a graceful exit; returns whether it exited in time.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + timeout;
        while let Some(child) = self.child.as_mut() {
            if let Ok(Some(_)) = child.try_wait() {
                self.child = None;
                return true;
            }
            if Instant::now() >= deadline {
                self.kill();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// Waits (bounded) for the process to exit by itself; its exit status, or `None` if it
    /// still runs at the deadline (it is left running).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut()?;
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The process's output so far, for assertion messages.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.resume();
        self.kill();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("---- last lines of {} ----", self.name);
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
            if let Some(summary) = failure_summary() {
                eprintln!("---- what failed (repeated from above) ----\n{summary}");
            }
        }
    }
}

/// One line per failed scenario of the suite that failed last in this test binary.
static FAILURE_SUMMARY: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

fn set_failure_summary(summary: String) {
    if let Ok(mut slot) = FAILURE_SUMMARY.lock() {
        *slot = Some(summary);
    }
}

fn failure_summary() -> Option<String> {
    FAILURE_SUMMARY.lock().ok()?.clone()
}

/// Broker settings every test broker gets.
/// - A test's data must not depend on how full the host's disk happens to be (a shared CI
///   disk above 85-90% would otherwise make brokers refuse writes or remove segments early).
///   Disk-full behaviour has its own store tests.
/// - Small key-index and ConsumeQueue files: files reserve their blocks when created, and
///   at the defaults each broker would hold about 550 MB of them (a 3-member group 1.6 GB),
///   enough for a few tests running at once to fill a CI machine's disk. Small files also
///   make tests cross file boundaries.
pub const TEST_STORE_SETTINGS: [(&str, &str); 5] = [
    ("diskSpaceWarningLevelRatio", "100"),
    ("diskSpaceCleanForciblyRatio", "100"),
    ("maxHashSlotNum", "16384"),
    ("maxIndexNum", "65536"),
    // 16384 entries of 20 bytes.
    ("mappedFileSizeConsumeQueue", "327680"),
];

/// Writes a RocketMQ-style `key=value` config file.
/// Runs the built `mqadmin` with `args` to its end: (success, stdout, stderr).
pub fn run_mqadmin(args: &[&str]) -> (bool, String, String) {
    match std::process::Command::new(binary("mqadmin"))
        .args(args)
        .output()
    {
        Ok(output) => (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ),
        Err(e) => (false, String::new(), format!("cannot run mqadmin: {e}")),
    }
}

pub fn write_conf(path: &Path, entries: &[(&str, String)]) -> Result<()> {
    let mut file = fs::File::create(path)?;
    for (key, value) in entries {
        writeln!(file, "{key}={value}")?;
    }
    Ok(())
}

/// A running `mqnamesrv`.
pub struct NameServer {
    pub process: Process,
    pub port: u16,
}

impl NameServer {
    /// Starts `mqnamesrv` keeping its KV config in `dir` (never in `$HOME/namesrv`).
    pub fn start(dir: &Path) -> Result<NameServer> {
        NameServer::start_with(dir, &[])
    }

    /// [`NameServer::start`] with `extra` entries appended to its config (later keys win).
    pub fn start_with(dir: &Path, extra: &[(&str, String)]) -> Result<NameServer> {
        retry_on_port_clash(|| NameServer::spawn(dir, free_port(), extra))
    }

    /// Stops this name server (SIGTERM) and starts it again on the same port and KV config
    /// file, with `extra` entries appended to its config.
    pub fn restart_with(&mut self, dir: &Path, extra: &[(&str, String)]) -> Result<()> {
        if !self.process.terminate(START_TIMEOUT) {
            bail!("mqnamesrv on {} ignored SIGTERM", self.port);
        }
        *self = NameServer::spawn(dir, self.port, extra)?;
        Ok(())
    }

    /// The KV config file of the name server on `port` started in `dir`.
    pub fn kv_config_path(dir: &Path, port: u16) -> PathBuf {
        dir.join(format!("namesrv-{port}-kvConfig.json"))
    }

    fn spawn(dir: &Path, port: u16, extra: &[(&str, String)]) -> Result<NameServer> {
        let conf = dir.join(format!("namesrv-{port}.conf"));
        let mut entries = vec![
            ("listenPort", port.to_string()),
            (
                "kvConfigPath",
                NameServer::kv_config_path(dir, port).display().to_string(),
            ),
        ];
        entries.extend(extra.iter().cloned());
        write_conf(&conf, &entries)?;
        let process = Process::spawn(
            "mqnamesrv",
            &binary("mqnamesrv"),
            &["-c", conf.to_str().context("utf-8 path")?],
            dir.join(format!("namesrv-{port}-{}.log", unique_suffix())),
        )?;
        let mut ns = NameServer { process, port };
        wait_started(&mut ns.process, port)?;
        Ok(ns)
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// A running standalone `mqbroker`.
pub struct Broker {
    pub process: Process,
    pub port: u16,
    pub conf: PathBuf,
    pub store_dir: PathBuf,
}

impl Broker {
    /// Starts a standalone broker named `name` registering with `namesrv`; `extra` entries are
    /// appended to its config (later keys win).
    pub fn start(
        dir: &Path,
        name: &str,
        namesrv: &str,
        extra: &[(&str, String)],
    ) -> Result<Broker> {
        let store_dir = dir.join(format!("store-{name}"));
        retry_on_port_clash(|| {
            let port = free_broker_port();
            let conf = dir.join(format!("{name}.conf"));
            let mut entries = vec![
                ("brokerClusterName", "TestCluster".to_string()),
                ("brokerName", name.to_string()),
                ("brokerId", "0".to_string()),
                ("listenPort", port.to_string()),
                ("grpcServerPort", free_port().to_string()),
                ("metricsPromExporterPort", free_port().to_string()),
                ("namesrvAddr", namesrv.to_string()),
                ("brokerIP1", "127.0.0.1".to_string()),
                ("storePathRootDir", store_dir.display().to_string()),
                ("mapedFileSizeCommitLog", (64 * 1024 * 1024).to_string()),
            ];
            entries.extend(TEST_STORE_SETTINGS.map(|(k, v)| (k, v.to_string())));
            entries.extend(extra.iter().cloned());
            write_conf(&conf, &entries)?;
            Broker::spawn(dir, name, conf, port, store_dir.clone())
        })
    }

    /// Starts `mqbroker` again on the same config and data (after a kill or stop).
    pub fn restart(&mut self, dir: &Path) -> Result<()> {
        self.process.kill();
        let name = self.process.name().to_string();
        let again = Broker::spawn(
            dir,
            &name,
            self.conf.clone(),
            self.port,
            self.store_dir.clone(),
        )?;
        *self = again;
        Ok(())
    }

    fn spawn(
        dir: &Path,
        name: &str,
        conf: PathBuf,
        port: u16,
        store_dir: PathBuf,
    ) -> Result<Broker> {
        let log = dir.join(format!("{name}-{}.log", unique_suffix()));
        let process = Process::spawn(
            name,
            &binary("mqbroker"),
            &["-c", conf.to_str().context("utf-8 path")?],
            log,
        )?;
        let mut broker = Broker {
            process,
            port,
            conf,
            store_dir,
        };
        wait_started(&mut broker.process, port)?;
        Ok(broker)
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Where RocketMQ 5 clients reach it over gRPC (`grpcServerPort` of its config).
    pub fn grpc_addr(&self) -> Result<String> {
        grpc_addr_in(&self.conf)
    }

    /// Where Prometheus scrapes it (`metricsPromExporterPort` of its config; served only
    /// with `metricsExporterType=PROM`).
    pub fn metrics_addr(&self) -> Result<String> {
        port_addr_in(&self.conf, "metricsPromExporterPort")
    }
}

/// `127.0.0.1:<grpcServerPort>` as a broker config file sets it (the last setting wins).
pub(crate) fn grpc_addr_in(conf: &Path) -> Result<String> {
    port_addr_in(conf, "grpcServerPort")
}

/// `127.0.0.1:<port>` where `key` of a config file names the port (the last setting wins).
pub(crate) fn port_addr_in(conf: &Path, key: &str) -> Result<String> {
    Ok(format!("127.0.0.1:{}", port_in(conf, key)?))
}

/// The port `key` of a config file names (the last setting wins).
pub(crate) fn port_in(conf: &Path, key: &str) -> Result<String> {
    let text =
        std::fs::read_to_string(conf).with_context(|| format!("reading {}", conf.display()))?;
    let prefix = format!("{key}=");
    let port = text
        .lines()
        .rev()
        .find_map(|line| line.trim().strip_prefix(prefix.as_str()))
        .with_context(|| format!("{} sets no {key}", conf.display()))?;
    Ok(port.trim().to_owned())
}

pub(crate) fn unique_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

pub(crate) fn wait_started(process: &mut Process, port: u16) -> Result<()> {
    wait_started_on(process, "127.0.0.1", port)
}

/// [`wait_started`] for a server listening on `host` (a member on a host of its own).
pub(crate) fn wait_started_on(process: &mut Process, host: &str, port: u16) -> Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if !process.is_running() {
            bail!(
                "{} exited during start-up:\n{}",
                process.name(),
                process.log()
            );
        }
        // A bound port answers before the server has bound its other ports (a broker's VIP
        // channel, gRPC, metrics); only its boot line says that start-up went through.
        if wait_for_addr(host, port, Duration::from_millis(200)).is_ok()
            && process.log().contains(BOOT_SUCCESS)
        {
            // A broker that finds its gRPC port taken still starts (serving remoting
            // only); a test would then reach whoever took the port. Like any other port
            // clash, start again with other ports.
            if process.log().contains(GRPC_PORT_TAKEN) {
                process.kill();
                bail!(
                    "{}: gRPC port clash (Address already in use)",
                    process.name()
                );
            }
            return Ok(());
        }
    }
    bail!(
        "{} did not listen on {port}:\n{}",
        process.name(),
        process.log()
    )
}

/// Runs a server start, retrying a few times when another process took the port first.
pub(crate) fn retry_on_port_clash<T>(mut start: impl FnMut() -> Result<T>) -> Result<T> {
    let mut last = None;
    for _ in 0..3 {
        match start() {
            Ok(started) => return Ok(started),
            Err(e) if format!("{e:#}").contains("Address already in use") => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("could not start")))
}

/// Polls `check` until it returns `Some`, at most `timeout`, sleeping `interval` in between.
pub fn eventually<T>(
    timeout: Duration,
    interval: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(interval);
    }
}

/// Ends the test process if a run takes far longer than it should: a filesystem served by
/// this process that stopped answering would otherwise hang the whole suite. Leaving the
/// process closes the FUSE device, which fails every request still waiting on it.
pub struct Watchdog {
    /// Dropping it ends the watch.
    _done: std::sync::mpsc::Sender<()>,
}

impl Watchdog {
    pub fn start(limit: Duration) -> Watchdog {
        let (done, watched) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = watched.recv_timeout(limit) {
                eprintln!("test still running after {limit:?}; ending the process");
                std::process::exit(1);
            }
        });
        Watchdog { _done: done }
    }
}
