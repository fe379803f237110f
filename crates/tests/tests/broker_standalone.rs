//! The real `mqnamesrv` and `mqbroker` binaries on free ports, driven with the requests
//! RocketMQ clients send: every produce form, pulls with tag filters and long polling,
//! durability across restarts, and bad input.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use message::batch::{encode_batch, BatchItem};
use message::decode_all;
use message::sysflag::pull as pull_flag;
use remoting::body::{KvTable, TopicConfigSerializeWrapper};
use remoting::client::{ClientConfig, RemotingClient};
use remoting::code::{request, response};
use remoting::command::RemotingCommand;
use tests::requests::*;
use tests::{Broker, NameServer};

const CALL_TIMEOUT: Duration = Duration::from_secs(10);

fn start(dir: &Path, extra: &[(&str, String)]) -> (NameServer, Broker) {
    let namesrv = NameServer::start(dir).unwrap();
    let mut settings = vec![("bindAddress", "127.0.0.1".to_string())];
    settings.extend(extra.iter().cloned());
    let broker = Broker::start(dir, "broker-e2e", &namesrv.addr(), &settings).unwrap();
    (namesrv, broker)
}

fn new_client() -> RemotingClient {
    RemotingClient::new(ClientConfig::default())
}

async fn call(client: &RemotingClient, addr: &str, command: RemotingCommand) -> RemotingCommand {
    client.invoke(addr, command, CALL_TIMEOUT).await.unwrap()
}

fn batch_body(prefix: &str, count: usize) -> Vec<u8> {
    let items: Vec<(String, String)> = (0..count)
        .map(|i| {
            (
                format!("{prefix}-{i}"),
                props(&[("TAGS", "TagA"), ("KEYS", &format!("{prefix}-key-{i}"))]),
            )
        })
        .collect();
    encode_batch(items.iter().map(|(body, properties)| BatchItem {
        flag: 0,
        body: body.as_bytes(),
        properties,
    }))
    .unwrap()
}

#[tokio::test]
async fn every_produce_form_is_stored_and_pulled_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (namesrv, broker) = start(dir.path(), &[]);
    let client = new_client();
    let addr = broker.addr();
    let topic = "E2eTopic";
    let single = props(&[("TAGS", "TagA"), ("KEYS", "single"), ("color", "blue")]);

    let v1 = call(
        &client,
        &addr,
        send_v1(&send_header(topic, 0, &single), b"v1"),
    )
    .await;
    assert_eq!(v1.code, response::SUCCESS, "{:?}", v1.remark);
    let v2 = call(
        &client,
        &addr,
        send_v2(&send_header(topic, 0, &single), b"v2"),
    )
    .await;
    assert_eq!(v2.code, response::SUCCESS, "{:?}", v2.remark);
    let mut batch = send_header(topic, 0, "");
    batch.batch = Some(true);
    let by_code = call(&client, &addr, send_batch(&batch, &batch_body("b320", 3))).await;
    assert_eq!(by_code.code, response::SUCCESS, "{:?}", by_code.remark);
    let by_flag = call(&client, &addr, send_v2(&batch, &batch_body("b310", 2))).await;
    assert_eq!(by_flag.code, response::SUCCESS, "{:?}", by_flag.remark);
    let offsets: Vec<i64> = [&v1, &v2, &by_code, &by_flag]
        .iter()
        .map(|r| ext_i64(r, "queueOffset").unwrap())
        .collect();
    assert_eq!(offsets, [0, 1, 2, 5]);

    let pulled = call(&client, &addr, pull(&pull_header("E2eGroup", topic, 0, 0))).await;
    assert_eq!(pulled.code, response::SUCCESS, "{:?}", pulled.remark);
    let messages = decode_all(&pulled.body).unwrap();
    let bodies: Vec<&[u8]> = messages.iter().map(|m| m.body()).collect();
    assert_eq!(
        bodies,
        [
            &b"v1"[..],
            b"v2",
            b"b320-0",
            b"b320-1",
            b"b320-2",
            b"b310-0",
            b"b310-1"
        ]
    );
    for (i, message) in messages.iter().enumerate() {
        assert_eq!(message.queue_offset(), i as i64);
        assert_eq!(message.topic(), topic);
        assert_eq!(message.store_host().to_string(), addr);
    }
    assert_eq!(messages[0].property("color"), Some("blue"));
    assert_eq!(messages[6].keys(), Some("b310-key-1"));
    assert_eq!(ext_i64(&pulled, "nextBeginOffset").unwrap(), 7);

    // The auto-created topic was announced to the name server right away.
    wait_for_route(&client, &namesrv.addr(), topic, &addr, CALL_TIMEOUT)
        .await
        .unwrap();
}

async fn parked_pulls(client: &RemotingClient, addr: &str) -> usize {
    let info = call(
        client,
        addr,
        RemotingCommand::request(request::GET_BROKER_RUNTIME_INFO),
    )
    .await;
    KvTable::decode(&info.body).unwrap().table["parkedPulls"]
        .parse()
        .unwrap()
}

#[tokio::test]
async fn tags_filter_and_a_parked_pull_wakes_on_arrival() {
    let dir = tempfile::tempdir().unwrap();
    let (_namesrv, broker) = start(dir.path(), &[]);
    let client = new_client();
    let addr = broker.addr();
    let topic = "TagE2e";
    for tag in ["TagA", "TagB", "TagA"] {
        let sent = call(
            &client,
            &addr,
            send_v2(
                &send_header(topic, 0, &props(&[("TAGS", tag)])),
                tag.as_bytes(),
            ),
        )
        .await;
        assert_eq!(sent.code, response::SUCCESS);
    }
    let mut header = pull_header("TagGroup", topic, 0, 0);
    header.subscription = Some("TagB".into());
    let pulled = call(&client, &addr, pull(&header)).await;
    let tags: Vec<String> = decode_all(&pulled.body)
        .unwrap()
        .iter()
        .map(|m| m.tags().unwrap().to_owned())
        .collect();
    assert_eq!(tags, ["TagB"]);

    // Long polling: held far longer than this test may wait, so only an arrival answers it.
    let mut parked = pull_header("TagGroup", topic, 0, 3);
    parked.sys_flag |= pull_flag::SUSPEND;
    parked.suspend_timeout_millis = 20_000;
    parked.subscription = Some("TagB".into());
    let waiter = {
        let client = client.clone();
        let addr = addr.clone();
        tokio::spawn(async move {
            client
                .invoke(&addr, pull(&parked), Duration::from_secs(30))
                .await
                .unwrap()
        })
    };
    let mut is_parked = false;
    for _ in 0..500 {
        if parked_pulls(&client, &addr).await == 1 {
            is_parked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(is_parked, "the pull was never parked");
    for tag in ["TagA", "TagB"] {
        call(
            &client,
            &addr,
            send_v2(&send_header(topic, 0, &props(&[("TAGS", tag)])), b"late"),
        )
        .await;
    }
    let woken = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the TagB arrival woke the pull")
        .unwrap();
    assert_eq!(woken.code, response::SUCCESS);
    let messages = decode_all(&woken.body).unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].tags(), Some("TagB"));
    assert_eq!(messages[0].queue_offset(), 4);
}

async fn topic_table(client: &RemotingClient, addr: &str) -> TopicConfigSerializeWrapper {
    let all = call(
        client,
        addr,
        RemotingCommand::request(request::GET_ALL_TOPIC_CONFIG),
    )
    .await;
    TopicConfigSerializeWrapper::decode(&all.body).unwrap()
}

#[tokio::test]
async fn offsets_and_topic_configs_survive_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (_namesrv, mut broker) = start(dir.path(), &[]);
    let addr = broker.addr();
    {
        let client = new_client();
        let created = call(&client, &addr, create_topic("Durable", 3)).await;
        assert_eq!(created.code, response::SUCCESS, "{:?}", created.remark);
        call(
            &client,
            &addr,
            send_v2(&send_header("Durable", 1, ""), b"x"),
        )
        .await;
        let updated = call(
            &client,
            &addr,
            update_offset("DurableGroup", "Durable", 1, 1),
        )
        .await;
        assert_eq!(updated.code, response::SUCCESS, "{:?}", updated.remark);
        client.shutdown();
    }
    assert!(
        broker.process.terminate(Duration::from_secs(20)),
        "graceful stop"
    );
    broker.restart(dir.path()).unwrap();
    let client = new_client();
    let queried = call(&client, &addr, query_offset("DurableGroup", "Durable", 1)).await;
    assert_eq!(queried.code, response::SUCCESS);
    assert_eq!(ext_i64(&queried, "offset").unwrap(), 1);
    let table = topic_table(&client, &addr).await;
    assert_eq!(table.topic_config_table["Durable"].read_queue_nums, 3);
    let pulled = call(&client, &addr, pull(&pull_header("G", "Durable", 1, 0))).await;
    assert_eq!(decode_all(&pulled.body).unwrap()[0].body(), b"x");

    // Topic changes are written at once: they survive even kill -9.
    let created = call(&client, &addr, create_topic("Durable2", 2)).await;
    assert_eq!(created.code, response::SUCCESS);
    client.shutdown();
    broker.restart(dir.path()).unwrap();
    let client = new_client();
    let table = topic_table(&client, &addr).await;
    assert_eq!(table.topic_config_table["Durable2"].write_queue_nums, 2);
}

/// Writes raw bytes on a fresh connection and reports whether the broker closed it.
fn closes_connection(addr: &str, bytes: &[u8]) -> bool {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    if stream.write_all(bytes).is_err() {
        return true;
    }
    let mut buf = [0u8; 256];
    match stream.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[tokio::test]
async fn bad_input_gets_the_expected_answer_or_a_closed_connection() {
    let dir = tempfile::tempdir().unwrap();
    let (_namesrv, broker) = start(dir.path(), &[("maxMessageSize", "1024".to_string())]);
    let client = new_client();
    let addr = broker.addr();

    let big = call(
        &client,
        &addr,
        send_v2(&send_header("BadIn", 0, ""), &[1u8; 1025]),
    )
    .await;
    assert_eq!(big.code, response::MESSAGE_ILLEGAL);
    let bad_topic = call(
        &client,
        &addr,
        send_v2(&send_header("no spaces", 0, ""), b"x"),
    )
    .await;
    assert_eq!(bad_topic.code, response::INVALID_PARAMETER);
    let reserved = call(
        &client,
        &addr,
        send_v2(&send_header("SCHEDULE_TOPIC_XXXX", 0, ""), b"x"),
    )
    .await;
    assert_eq!(reserved.code, response::NO_PERMISSION);
    let unknown = call(&client, &addr, RemotingCommand::request(12_345)).await;
    assert_eq!(unknown.code, response::REQUEST_CODE_NOT_SUPPORTED);
    let mut missing = send_v2(&send_header("BadIn", 0, ""), b"x");
    missing.ext_fields.remove("a");
    assert_eq!(
        call(&client, &addr, missing).await.code,
        response::SYSTEM_ERROR
    );

    // A header length larger than its frame.
    let mut frame = Vec::new();
    frame.extend_from_slice(&8u32.to_be_bytes());
    frame.extend_from_slice(&1000u32.to_be_bytes());
    frame.extend_from_slice(b"{}{}");
    assert!(closes_connection(&addr, &frame));
    // A header that is not JSON.
    let header = b"{this is not json";
    let mut frame = Vec::new();
    frame.extend_from_slice(&((4 + header.len()) as u32).to_be_bytes());
    frame.extend_from_slice(&(header.len() as u32).to_be_bytes());
    frame.extend_from_slice(header);
    assert!(closes_connection(&addr, &frame));
    // A frame far over the size limit (only its length is sent).
    assert!(closes_connection(&addr, &0x7FFF_FFF0u32.to_be_bytes()));

    // Other connections never noticed.
    let still = call(
        &client,
        &addr,
        send_v2(&send_header("BadIn", 0, ""), b"fine"),
    )
    .await;
    assert_eq!(still.code, response::SUCCESS);
    let pulled = call(&client, &addr, pull(&pull_header("G", "BadIn", 0, 0))).await;
    assert_eq!(decode_all(&pulled.body).unwrap()[0].body(), b"fine");
}

/// RocketMQ's "VIP channel": the broker also serves on `listenPort - 2`, where clients with
/// `vipChannelEnabled` (and the dashboard) send their requests.
#[tokio::test]
async fn the_vip_channel_on_listen_port_minus_two_serves_the_same_requests() {
    let dir = tempfile::tempdir().unwrap();
    let (_namesrv, broker) = start(dir.path(), &[]);
    let client = new_client();
    let vip = format!("127.0.0.1:{}", broker.port - 2);
    let sent = call(
        &client,
        &vip,
        send_v2(&send_header("VipTopic", 0, ""), b"through the VIP channel"),
    )
    .await;
    assert_eq!(sent.code, response::SUCCESS, "{:?}", sent.remark);
    let pulled = call(
        &client,
        &broker.addr(),
        pull(&pull_header("VipGroup", "VipTopic", 0, 0)),
    )
    .await;
    assert_eq!(pulled.code, response::SUCCESS, "{:?}", pulled.remark);
    let messages = decode_all(&pulled.body).unwrap();
    assert_eq!(messages[0].body(), b"through the VIP channel");
    // Messages stored through either port name the client port as their store host.
    assert_eq!(messages[0].store_host().to_string(), broker.addr());
}

/// As with RocketMQ's broker, the name server routes a topic by the time CREATE_TOPIC is
/// answered: clients (the Go admin API among them) read the route right after creating.
#[tokio::test]
async fn a_created_topic_is_routed_when_the_create_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let (namesrv, broker) = start(dir.path(), &[]);
    let client = new_client();
    for i in 0..20 {
        let topic = format!("RoutedAtOnce{i}");
        let created = call(&client, &broker.addr(), create_topic(&topic, 4)).await;
        assert_eq!(created.code, response::SUCCESS, "{:?}", created.remark);
        let routed = route(&client, &namesrv.addr(), &topic).await.unwrap();
        assert!(
            routed.is_some(),
            "{topic} not routed when its creation was answered"
        );
    }
}
