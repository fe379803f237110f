//! A rolling restart that no unmodified client notices: the official Java 5.5.0 producer,
//! the C++ client's (through its Python binding) and the Rust port's, each on its own
//! topic, one paced send every 100 ms on the client's default 30 s route poll, while every
//! member of a 3-node group is restarted in turn (SIGTERM, start again, 5 s to settle).
//!
//! The group runs the default `masterShutdownForwardMs` (35 s, longer than the route poll):
//! a stopping master hands leadership off and keeps its client port open forwarding the
//! sends that still reach it, so no send fails and each acknowledged one is stored.

use std::time::Duration;

use tests::compat::{self, Messages, RollingProducer, Servers, Setup};
use tests::java_client::{self, Version};
use tests::{cpp_client, rust_client};

/// At 100 ms apiece: past the restart of all three members (about 85 s, two 35 s forwards
/// among them) and a route poll after it.
const SENDS: u64 = 1400;
const INTERVAL_MS: &str = "100";
const RUN_TIMEOUT: Duration = Duration::from_secs(400);

#[test]
fn java_cpp_and_rust_producers_see_no_failed_send_through_a_rolling_restart() {
    java_client::check_built().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let extra = [("masterShutdownForwardMs", "35000".to_owned())];
    let mut servers = Servers::start(Setup::Group, dir.path(), "Rolling", &extra).unwrap();
    let ns = servers.ns();
    let count = SENDS.to_string();

    let java_messages = Messages::new("RollingJava", "rolling", SENDS);
    let java_args = java_messages.paced_produce_args(&ns, INTERVAL_MS);
    let java_args: Vec<&str> = java_args.iter().map(String::as_str).collect();
    let java = java_client::spawn(Version::V5, &java_args, RUN_TIMEOUT).unwrap();

    let cpp_args = ["paced", &ns, "RollingCpp", &count, INTERVAL_MS];
    let cpp = cpp_client::spawn(&cpp_args, RUN_TIMEOUT).unwrap();

    // Two retries, as the Java client's default (the driver's own is none).
    let rust_args = [
        "produce",
        "-n",
        &ns,
        "-t",
        "RollingRust",
        "-c",
        &count,
        "--interval-ms",
        INTERVAL_MS,
        "--retries",
        "2",
    ];
    let rust = rust_client::spawn(&rust_args, RUN_TIMEOUT).unwrap();

    let producers = vec![
        RollingProducer {
            client: "Java 5.5.0",
            topic: java_messages.topic.clone(),
            running: java,
            is_ok: |line| line["status"] == "SEND_OK",
        },
        RollingProducer {
            client: "C++",
            topic: "RollingCpp".to_owned(),
            running: cpp,
            // The binding reports SendStatus.OK as 0.
            is_ok: |line| line["status"] == 0,
        },
        RollingProducer {
            client: "Rust port",
            topic: "RollingRust".to_owned(),
            running: rust,
            is_ok: |line| line["status"] == "SendOk",
        },
    ];
    let outcomes = compat::rolling_restart_under(&mut servers, producers).unwrap();
    for outcome in &outcomes {
        eprintln!("through a rolling restart: {outcome:?}");
    }
    for outcome in &outcomes {
        assert_eq!(
            (outcome.failed, outcome.lost),
            (0, 0),
            "{} producer: sends failed or acknowledged ones lost: {outcomes:?}",
            outcome.client
        );
        assert_eq!(outcome.acknowledged, SENDS as usize, "{outcomes:?}");
    }
}
