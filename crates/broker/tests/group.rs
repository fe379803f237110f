//! Three brokers in one process as a raft group (DLedger mode) on free 127.0.0.1 ports:
//! one becomes master, sends are replicated and readable on every member, metadata
//! (topics, offsets) follows through the raft log, followers refuse writes with the codes
//! clients retry elsewhere, and leadership moves on request and on a graceful stop.

mod support;

use std::time::Duration;

use broker::config::{BrokerConfig, DLedgerPeer};
use broker::group::status::GroupStatusBody;
use broker::RunningBroker;
use remoting::client::RemotingClient;
use remoting::code::{request, response};
use remoting::command::RemotingCommand;
use support::{
    create_topic, ext_i64, pull, pull_header, send_header, send_v2, test_config, update_offset,
};
use tests::free_port;

const WAIT: Duration = Duration::from_secs(20);

struct Group {
    _dir: tempfile::TempDir,
    members: Vec<Option<RunningBroker>>,
    configs: Vec<BrokerConfig>,
    client: RemotingClient,
}

impl Group {
    async fn start() -> Group {
        Self::start_with(|_| {}).await
    }

    async fn start_with(adjust: impl Fn(&mut BrokerConfig)) -> Group {
        let dir = tempfile::tempdir().unwrap();
        let peers: Vec<DLedgerPeer> = (0..3)
            .map(|i| DLedgerPeer {
                id: format!("n{i}"),
                addr: format!("127.0.0.1:{}", free_port()),
            })
            .collect();
        let configs: Vec<BrokerConfig> = (0..3)
            .map(|i| {
                let mut config = test_config(&dir.path().join(format!("n{i}")));
                config.broker_name = "RaftNode00".into();
                config.enable_dledger_commit_log = true;
                config.dledger_group = "RaftNode00".into();
                config.dledger_peers = peers.clone();
                config.dledger_self_id = format!("n{i}");
                adjust(&mut config);
                config
            })
            .collect();
        let started = futures::future::join_all(configs.iter().cloned().map(broker::start)).await;
        Group {
            _dir: dir,
            members: started.into_iter().map(|r| Some(r.unwrap())).collect(),
            // Signed as the members sign their own requests, when ACL 2.0 is on.
            client: RemotingClient::new(configs[0].inner_client_config()),
            configs,
        }
    }

    fn store(&self, i: usize) -> &store::ReplicatedStore {
        &self.member(i).context().group.as_ref().unwrap().store
    }

    fn member(&self, i: usize) -> &RunningBroker {
        self.members[i].as_ref().unwrap()
    }

    fn addr(&self, i: usize) -> String {
        self.member(i).local_addr().to_string()
    }

    async fn wait_master(&self, not: Option<usize>) -> usize {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let master = (0..self.members.len()).find(|&i| {
                Some(i) != not
                    && self.members[i]
                        .as_ref()
                        .is_some_and(|m| m.context().role.is_master())
            });
            if let Some(i) = master {
                return i;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("no master elected: {}", self.describe());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Each running member's raft view and, if its raft node stopped, why: what a failed
    /// election test needs to say whether the vote, the store or the disk was stuck.
    fn describe(&self) -> String {
        let mut out = String::new();
        for (i, member) in self.members.iter().enumerate() {
            let Some(member) = member else {
                out.push_str(&format!("\n  n{i}: stopped by the test"));
                continue;
            };
            let Some(group) = member.context().group.as_ref() else {
                continue;
            };
            let failure = group.store.failure().borrow().clone();
            out.push_str(&format!(
                "\n  n{i}: {:?}; failure: {failure:?}",
                group.store.status()
            ));
        }
        out
    }

    async fn call(&self, i: usize, command: RemotingCommand) -> RemotingCommand {
        self.client
            .invoke(&self.addr(i), command, WAIT)
            .await
            .unwrap()
    }

    async fn status(&self, i: usize) -> GroupStatusBody {
        let response = self
            .call(i, RemotingCommand::request(request::DLEDGER_METADATA))
            .await;
        assert_eq!(response.code, response::SUCCESS, "{:?}", response.remark);
        serde_json::from_slice(&response.body).unwrap()
    }
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_group_replicates_sends_and_metadata_and_followers_refuse_writes() {
    let group = Group::start().await;
    let master = group.wait_master(None).await;
    let follower = (master + 1) % 3;

    let created = group.call(master, create_topic("GroupTopic", 2)).await;
    assert_eq!(created.code, response::SUCCESS, "{:?}", created.remark);
    let refused = group.call(follower, create_topic("Elsewhere", 2)).await;
    assert_eq!(refused.code, response::SYSTEM_ERROR);
    for i in 0..3 {
        let ctx = group.member(i).context().clone();
        eventually("the topic reaches every member", || {
            ctx.topics.get("GroupTopic").is_some()
        })
        .await;
    }

    for i in 0..10i64 {
        let sent = group
            .call(
                master,
                send_v2(
                    &send_header("GroupTopic", 0, ""),
                    format!("m{i}").as_bytes(),
                ),
            )
            .await;
        assert_eq!(sent.code, response::SUCCESS, "{:?}", sent.remark);
        assert_eq!(ext_i64(&sent, "queueOffset"), i);
    }
    let on_follower = group
        .call(follower, send_v2(&send_header("GroupTopic", 0, ""), b"no"))
        .await;
    assert_eq!(on_follower.code, response::SERVICE_NOT_AVAILABLE);

    // Every member serves the committed messages; followers point consumers at the master.
    for i in 0..3 {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let pulled = group
                .call(i, pull(&pull_header("CG", "GroupTopic", 0, 0)))
                .await;
            if pulled.code == response::SUCCESS {
                let messages = message::decode_all(&pulled.body).unwrap();
                if messages.len() == 10 {
                    assert_eq!(messages[3].body(), b"m3");
                    assert_eq!(ext_i64(&pulled, "suggestWhichBrokerId"), 0);
                    break;
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "member {i} lags");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Beyond a follower's end is "nothing yet" there, never an offset correction.
    let ahead = group
        .call(follower, pull(&pull_header("CG", "GroupTopic", 0, 500)))
        .await;
    assert_eq!(ahead.code, response::PULL_NOT_FOUND);
    assert_eq!(ext_i64(&ahead, "nextBeginOffset"), 500);

    // A committed offset reaches the followers through the log.
    let committed = group
        .call(master, update_offset("CG", "GroupTopic", 0, 7))
        .await;
    assert_eq!(committed.code, response::SUCCESS, "{:?}", committed.remark);
    let on_follower = group
        .call(follower, update_offset("CG", "GroupTopic", 0, 9))
        .await;
    assert_ne!(on_follower.code, response::SUCCESS);
    for i in 0..3 {
        let ctx = group.member(i).context().clone();
        eventually("the offset reaches every member", || {
            ctx.offsets.query("CG", "GroupTopic", 0) == Some(7)
        })
        .await;
    }

    // Every member reports itself; the leader also reports how far each follower is.
    let leader_status = group.status(master).await;
    assert_eq!(leader_status.role, "LEADER");
    assert_eq!(leader_status.broker_id, 0);
    assert!(leader_status.writable);
    assert_eq!(leader_status.peers.len(), 2);
    assert!(leader_status
        .peers
        .iter()
        .all(|p| p.match_index.is_some_and(|m| m > 0)));
    let follower_status = group.status(follower).await;
    assert_eq!(follower_status.role, "FOLLOWER");
    assert_eq!(
        follower_status.leader_id.as_deref(),
        Some(leader_status.self_id.as_str())
    );
    assert_eq!(
        follower_status.broker_id,
        follower_status.self_id[1..].parse::<u64>().unwrap() + 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leadership_moves_on_request_and_a_stopping_master_hands_off() {
    let mut group = Group::start().await;
    let first = group.wait_master(None).await;
    let created = group.call(first, create_topic("MoveTopic", 1)).await;
    assert_eq!(created.code, response::SUCCESS, "{:?}", created.remark);
    let sent = group
        .call(first, send_v2(&send_header("MoveTopic", 0, ""), b"a"))
        .await;
    assert_eq!(ext_i64(&sent, "queueOffset"), 0);

    // Ask the leader to hand over to a named node.
    let target = (first + 1) % 3;
    let mut transfer = RemotingCommand::request(request::DLEDGER_LEADERSHIP_TRANSFER);
    transfer
        .ext_fields
        .insert("transfereeId".into(), format!("n{target}"));
    let moved = group.call(first, transfer.clone()).await;
    assert_eq!(moved.code, response::SUCCESS, "{:?}", moved.remark);
    let second = group.wait_master(Some(first)).await;
    assert_eq!(second, target);
    // The old leader is no longer the one to ask.
    let refused = group.call(first, transfer).await;
    assert_eq!(refused.code, response::SYSTEM_ERROR);

    let sent = group
        .call(second, send_v2(&send_header("MoveTopic", 0, ""), b"b"))
        .await;
    assert_eq!(sent.code, response::SUCCESS, "{:?}", sent.remark);
    assert_eq!(ext_i64(&sent, "queueOffset"), 1, "queue offsets stay dense");

    // A graceful stop of the master hands leadership to a follower first.
    group.members[second].take().unwrap().shutdown().await;
    let third = group.wait_master(Some(second)).await;
    let sent = group
        .call(third, send_v2(&send_header("MoveTopic", 0, ""), b"c"))
        .await;
    assert_eq!(sent.code, response::SUCCESS, "{:?}", sent.remark);
    assert_eq!(ext_i64(&sent, "queueOffset"), 2, "queue offsets stay dense");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retention_trims_every_member_and_a_member_rebuilt_past_it_copies_the_metadata() {
    let namesrv_dir = tempfile::tempdir().unwrap();
    let namesrv = namesrv::server::start(
        namesrv::config::NamesrvConfig {
            listen_port: 0,
            kv_config_path: namesrv_dir.path().join("kvConfig.json"),
            ..Default::default()
        },
        "127.0.0.1",
    )
    .await
    .unwrap();
    let ns = namesrv.local_addr().to_string();
    let mut group = Group::start_with(|config| {
        config.namesrv_addrs = vec![ns.clone()];
        // Segments of about 200 messages, all expired as soon as they are full.
        config.store.mapped_file_size_commit_log = 256 * 1024;
        config.max_message_size = 8 * 1024;
        config.store.file_reserved_time_hours = 0;
        // ACL 2.0 on: the rebuilt member's copy is signed, and carries the users.
        config.auth.authentication_enabled = true;
        config.auth.authorization_enabled = true;
        config.auth.inner_credentials = Some((
            "inner-member".into(),
            broker::auth::model::Password::new("inner-member-secret"),
        ));
    })
    .await;
    let master = group.wait_master(None).await;
    let master_ctx = group.member(master).context().clone();
    eventually("the inner super user exists", || {
        master_ctx.auth.user("inner-member").is_some()
    })
    .await;
    let mut create_user = RemotingCommand::request(request::AUTH_CREATE_USER)
        .with_body(br#"{"username":"copied","password":"copied-password"}"#.to_vec());
    create_user
        .ext_fields
        .insert("username".into(), "copied".into());
    let created = group.call(master, create_user).await;
    assert_eq!(created.code, response::SUCCESS, "{:?}", created.remark);
    let mut create_acl = RemotingCommand::request(request::AUTH_CREATE_ACL).with_body(
        br#"{"subject":"User:copied","policies":[{"entries":[{"resource":"Topic:Early","actions":["Sub"],"decision":"Allow"}]}]}"#
            .to_vec(),
    );
    create_acl
        .ext_fields
        .insert("subject".into(), "User:copied".into());
    let created = group.call(master, create_acl).await;
    assert_eq!(created.code, response::SUCCESS, "{:?}", created.remark);
    let created = group.call(master, create_topic("Early", 2)).await;
    assert_eq!(created.code, response::SUCCESS, "{:?}", created.remark);
    let created = group.call(master, create_topic("Bulk", 1)).await;
    assert_eq!(created.code, response::SUCCESS, "{:?}", created.remark);
    let committed = group.call(master, update_offset("CG", "Early", 1, 3)).await;
    assert_eq!(committed.code, response::SUCCESS, "{:?}", committed.remark);
    let body = vec![b'x'; 1024];
    // A queue whose only messages retention will remove: a member rebuilt past them sees
    // no record of it in the log it receives.
    for _ in 0..5 {
        let answer = group
            .call(master, send_v2(&send_header("Early", 0, ""), &body))
            .await;
        assert_eq!(answer.code, response::SUCCESS, "{:?}", answer.remark);
    }
    let mut sent = 0i64;
    for _ in 0..800 {
        let answer = group
            .call(master, send_v2(&send_header("Bulk", 0, ""), &body))
            .await;
        assert_eq!(answer.code, response::SUCCESS, "{:?}", answer.remark);
        sent += 1;
    }
    // The no-op, four auth ops, then the two topics: long gone after retention.
    let early_index = 7u64;

    // One follower loses its disk while the others drop their old segments.
    let wiped = (master + 1) % 3;
    group.members[wiped].take().unwrap().shutdown().await;
    std::fs::remove_dir_all(&group.configs[wiped].store.store_path_root_dir).unwrap();
    let running: Vec<usize> = (0..3).filter(|&i| i != wiped).collect();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        for &i in &running {
            group.store(i).flush().unwrap();
            group.store(i).clean_expired_files_now().unwrap();
        }
        // Segments go at the raft node's next commit.
        let answer = group
            .call(master, send_v2(&send_header("Bulk", 0, ""), &body))
            .await;
        assert_eq!(answer.code, response::SUCCESS, "{:?}", answer.remark);
        sent += 1;
        if running.iter().all(|&i| {
            group.store(i).commit_log().first_index() > early_index + 100
                && group.store(i).reader().min_offset("Bulk", 0) > 0
        }) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "retention did not remove segments"
        );
    }
    for &i in &running {
        assert!(group.store(i).removed_segments() > 0);
    }

    // The wiped member starts from the leader's first retained entry: it never sees the
    // ops that created the topics, so it copies the tables from another member.
    group.members[wiped] = Some(broker::start(group.configs[wiped].clone()).await.unwrap());
    let ctx = group.member(wiped).context().clone();
    eventually("the rebuilt member copies the topics", || {
        ctx.topics.get("Early").is_some()
    })
    .await;
    eventually("the rebuilt member copies the offsets", || {
        ctx.offsets.query("CG", "Early", 1) == Some(3)
    })
    .await;
    eventually(
        "the rebuilt member copies the users and their policies",
        || ctx.auth.user("copied").is_some() && ctx.auth.acl("User:copied").is_some(),
    )
    .await;
    let store = group.store(wiped);
    // Its copy of that queue goes on where the group's did, though it never saw a record
    // of it: were it to lead, the next message there would not reuse offset 0.
    eventually("the rebuilt member's empty queue continues at 5", || {
        store.reader().max_offset("Early", 0) == 5
    })
    .await;
    assert_eq!(store.reader().min_offset("Early", 0), 5);
    eventually("the rebuilt member catches up", || {
        store.reader().max_offset("Bulk", 0) == sent
    })
    .await;
    assert!(store.commit_log().first_index() > early_index + 100);
    assert!(store.reader().min_offset("Bulk", 0) > 0);
    // Later metadata changes reach it through the log as usual.
    let created = group.call(master, create_topic("Late", 1)).await;
    assert_eq!(created.code, response::SUCCESS, "{:?}", created.remark);
    eventually("later ops apply", || ctx.topics.get("Late").is_some()).await;
    namesrv.shutdown().await;
}

/// Every message of a queue from offset 0 as a member serves it (at most 32).
async fn pull_all(group: &Group, i: usize, topic: &str) -> Vec<message::StoredMessage> {
    let pulled = group.call(i, pull(&pull_header("CG", topic, 0, 0))).await;
    if pulled.code != response::SUCCESS {
        return Vec::new();
    }
    message::decode_all(&pulled.body)
        .unwrap()
        .iter()
        .map(message::MessageView::to_owned_message)
        .collect()
}

/// Whether a member's replicated schedule progress covers every waiting message.
fn schedule_caught_up(ctx: &broker::BrokerContext) -> bool {
    use broker::schedule::{PROGRESS_GROUP, SCHEDULE_TOPIC};
    (0..ctx.delay_levels.max_level()).all(|queue_id| {
        ctx.offsets
            .query(PROGRESS_GROUP, SCHEDULE_TOPIC, queue_id)
            .unwrap_or(0)
            >= ctx.store.reader().max_offset(SCHEDULE_TOPIC, queue_id)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delayed_messages_are_delivered_by_the_group_and_survive_the_master_stopping() {
    let mut group =
        Group::start_with(|config| config.store.message_delay_level = "1s 5s".parse().unwrap())
            .await;
    let master = group.wait_master(None).await;
    let created = group.call(master, create_topic("GroupDelay", 1)).await;
    assert_eq!(created.code, response::SUCCESS, "{:?}", created.remark);
    let delayed = |level: &str, body: &[u8]| {
        send_v2(
            &send_header("GroupDelay", 0, &support::props(&[("DELAY", level)])),
            body,
        )
    };

    let sent = group.call(master, delayed("1", b"first")).await;
    assert_eq!(sent.code, response::SUCCESS, "{:?}", sent.remark);
    let deadline = tokio::time::Instant::now() + WAIT;
    while pull_all(&group, master, "GroupDelay").await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "not delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The delivery progress reaches every member through the log.
    for i in 0..3 {
        let ctx = group.member(i).context().clone();
        eventually("the schedule progress reaches every member", || {
            schedule_caught_up(&ctx) && ctx.store.reader().max_offset("GroupDelay", 0) == 1
        })
        .await;
    }

    // The master stops before the second message is due; the next master delivers it.
    let sent = group.call(master, delayed("2", b"second")).await;
    assert_eq!(sent.code, response::SUCCESS, "{:?}", sent.remark);
    group.members[master].take().unwrap().stop(false).await;
    let next = group.wait_master(Some(master)).await;
    let next_ctx = group.member(next).context().clone();
    assert_eq!(
        next_ctx.store.reader().max_offset("GroupDelay", 0),
        1,
        "the second message was not delivered before the master stopped"
    );
    eventually("the new master delivers the waiting message", || {
        next_ctx.store.reader().max_offset("GroupDelay", 0) >= 2 && schedule_caught_up(&next_ctx)
    })
    .await;
    let delivered = pull_all(&group, next, "GroupDelay").await;
    let bodies: Vec<&[u8]> = delivered.iter().map(|m| m.body.as_slice()).collect();
    assert_eq!(
        bodies,
        [&b"first"[..], &b"second"[..]],
        "each delivered once"
    );
    assert_eq!(delivered[1].store_host, next_ctx.store_host);
    assert_eq!(delivered[1].property("DELAY"), None);
}

async fn send_bulk(group: &Group, master: usize, count: usize) {
    for _ in 0..count {
        let answer = group
            .call(master, send_v2(&send_header("Bulk", 0, ""), &[b'x'; 1024]))
            .await;
        assert_eq!(answer.code, response::SUCCESS, "{:?}", answer.remark);
    }
}

/// Retention on every member, as the background cleaner does it, until `done` holds for
/// every member. Segments go at the raft node's next commit, so each pass sends one more.
async fn trim_until(
    group: &Group,
    master: usize,
    what: &str,
    done: impl Fn(&store::ReplicatedStore) -> bool,
) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        for i in 0..3 {
            group.store(i).flush().unwrap();
            group.store(i).clean_expired_files_now().unwrap();
        }
        send_bulk(group, master, 1).await;
        if (0..3).all(|i| done(group.store(i))) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "retention: {what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn timer_and_delayed_messages_outlive_the_retention_of_their_segments() {
    use broker::schedule::SCHEDULE_TOPIC;
    use broker::timer::TIMER_TOPIC;
    let group = Group::start_with(|config| {
        // Segments of about 200 messages, all expired as soon as they are full.
        config.store.mapped_file_size_commit_log = 256 * 1024;
        config.max_message_size = 8 * 1024;
        config.store.file_reserved_time_hours = 0;
        config.store.message_delay_level = "1s 12s".parse().unwrap();
    })
    .await;
    let master = group.wait_master(None).await;
    for topic in ["Later", "Bulk"] {
        let created = group.call(master, create_topic(topic, 1)).await;
        assert_eq!(created.code, response::SUCCESS, "{:?}", created.remark);
    }
    send_bulk(&group, master, 300).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let deliver_ms = (now + 12_000).to_string();
    for properties in [
        support::props(&[("TIMER_DELIVER_MS", deliver_ms.as_str())]),
        support::props(&[("DELAY", "2")]),
    ] {
        let body = if properties.contains("DELAY") {
            &b"delayed"[..]
        } else {
            &b"timer"[..]
        };
        let sent = group
            .call(master, send_v2(&send_header("Later", 0, &properties), body))
            .await;
        assert_eq!(sent.code, response::SUCCESS, "{:?}", sent.remark);
    }
    send_bulk(&group, master, 600).await;
    let waiting = |store: &store::ReplicatedStore| {
        let reader = store.reader();
        [
            reader.queue_entry_position(TIMER_TOPIC, 0, 0),
            reader.queue_entry_position(SCHEDULE_TOPIC, 1, 0),
        ]
        .map(|position| position.map_or(0, |p| p as u64))
    };
    for i in 0..3 {
        let store = group.store(i);
        eventually("both waiting messages reach every member", || {
            waiting(store).iter().all(|p| *p > 0)
        })
        .await;
    }

    // Every segment has expired: those before the waiting messages go, theirs stays.
    trim_until(
        &group,
        master,
        "segments before the waiting messages",
        |store| store.removed_segments() > 0,
    )
    .await;
    for i in 0..3 {
        let store = group.store(i);
        let first = store.commit_log().first_pos();
        assert!(first > 0);
        assert!(
            waiting(store).iter().all(|p| *p >= first),
            "member {i} removed a waiting message: log from {first}, messages at {:?}",
            waiting(store)
        );
    }

    // Each is delivered once when due.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut bodies: Vec<Vec<u8>> = pull_all(&group, master, "Later")
            .await
            .into_iter()
            .map(|m| m.body)
            .collect();
        bodies.sort();
        if bodies.len() >= 2 {
            assert_eq!(bodies, [b"delayed".to_vec(), b"timer".to_vec()]);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not delivered: {bodies:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Delivered, they hold nothing back any more.
    let positions: Vec<[u64; 2]> = (0..3).map(|i| waiting(group.store(i))).collect();
    trim_until(
        &group,
        master,
        "the delivered messages' segments",
        |store| {
            positions
                .iter()
                .flatten()
                .all(|p| store.commit_log().first_pos() > *p)
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_a_topic_or_a_subscription_group_reaches_every_member() {
    use remoting::body::SubscriptionGroupConfig;
    use remoting::header::admin::{DeleteSubscriptionGroupRequestHeader, TopicRequestHeader};

    let group = Group::start().await;
    let master = group.wait_master(None).await;
    let created = group.call(master, create_topic("Doomed", 2)).await;
    assert_eq!(created.code, response::SUCCESS, "{:?}", created.remark);
    let sub_group = RemotingCommand::request(request::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP)
        .with_body(serde_json::to_vec(&SubscriptionGroupConfig::new("DoomedGroup")).unwrap());
    let created = group.call(master, sub_group).await;
    assert_eq!(created.code, response::SUCCESS, "{:?}", created.remark);
    for i in 0..3 {
        let ctx = group.member(i).context().clone();
        eventually("the topic and group reach every member", || {
            ctx.topics.get("Doomed").is_some() && ctx.groups.get("DoomedGroup").is_some()
        })
        .await;
    }

    let delete_topic = RemotingCommand::request(request::DELETE_TOPIC_IN_BROKER).with_header(
        &TopicRequestHeader {
            topic: "Doomed".into(),
        },
    );
    let deleted = group.call(master, delete_topic).await;
    assert_eq!(deleted.code, response::SUCCESS, "{:?}", deleted.remark);
    let delete_group = RemotingCommand::request(request::DELETE_SUBSCRIPTIONGROUP).with_header(
        &DeleteSubscriptionGroupRequestHeader {
            group_name: "DoomedGroup".into(),
            clean_offset: true,
        },
    );
    let deleted = group.call(master, delete_group).await;
    assert_eq!(deleted.code, response::SUCCESS, "{:?}", deleted.remark);
    for i in 0..3 {
        let ctx = group.member(i).context().clone();
        eventually("the deletions reach every member", || {
            ctx.topics.get("Doomed").is_none() && ctx.groups.get("DoomedGroup").is_none()
        })
        .await;
    }
}
