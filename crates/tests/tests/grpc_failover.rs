//! A broker group's follower hands a 5.x client's sends, receives and acks to the master
//! (see the broker's `grpc::relay`). Through a failover a call waits for the group's next
//! master and goes there, instead of failing the client: when the master has just been
//! killed (the call could not reach it, so it was never sent), when the name servers list
//! no master for a moment, and, for an ack, when the master may have stored it without
//! answering.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use grpc::v2::messaging_service_client::MessagingServiceClient;
use grpc::v2::{self, Code};
use tests::compat::{block_on, Servers, Setup};

const TOPIC: &str = "GrpcRelayTopic";

fn send_request(seq: usize) -> v2::SendMessageRequest {
    let message = v2::Message {
        topic: Some(v2::Resource {
            resource_namespace: String::new(),
            name: TOPIC.to_owned(),
        }),
        body: format!("relayed-{seq}").into_bytes(),
        system_properties: Some(v2::SystemProperties {
            message_id: format!("0102FC00000000000000000000{seq:08X}"),
            body_encoding: v2::Encoding::Identity as i32,
            message_type: v2::MessageType::Normal as i32,
            ..Default::default()
        }),
        ..Default::default()
    };
    v2::SendMessageRequest {
        messages: vec![message],
    }
}

/// Sends one message through `endpoint`; its status code.
async fn send(endpoint: &str, seq: usize) -> Result<Code> {
    let mut client = MessagingServiceClient::connect(format!("http://{endpoint}")).await?;
    let mut request = tonic::Request::new(send_request(seq));
    request.set_timeout(Duration::from_secs(15));
    request
        .metadata_mut()
        .insert("x-mq-client-id", "grpc-failover-test".parse()?);
    let answer = client.send_message(request).await?.into_inner();
    Ok(Code::try_from(answer.status.map_or(0, |s| s.code)).unwrap_or(Code::Unspecified))
}

/// The gRPC endpoint of a member other than `master`.
fn follower_endpoint(servers: &Servers, master: &str) -> Result<String> {
    servers
        .group
        .as_ref()
        .context("a group")?
        .members
        .iter()
        .find(|m| m.addr() != master)
        .context("a follower")?
        .grpc_addr()
}

/// The process of the member whose client address is `addr`.
fn process_of<'a>(servers: &'a mut Servers, addr: &str) -> Result<&'a mut tests::Process> {
    let member = servers
        .group
        .as_mut()
        .and_then(|g| g.member_mut(addr))
        .with_context(|| format!("{addr} is no member"))?;
    Ok(&mut member.process)
}

/// A group with the test topic, its master's client address and a follower's gRPC
/// endpoint, once that follower relays sends.
fn start_group(dir: &std::path::Path, name: &str) -> Result<(Servers, String, String)> {
    start_group_with(dir, name, &[])
}

fn start_group_with(
    dir: &std::path::Path,
    name: &str,
    settings: &[(&str, String)],
) -> Result<(Servers, String, String)> {
    let servers = Servers::start(Setup::Group, dir, name, settings)?;
    let namesrv = servers.ns();
    let cluster = servers.cluster.clone();
    block_on(async {
        let admin = client::Admin::start(client::ClientOptions::new(&namesrv))?;
        let created = admin
            .create_topic_in_cluster(&cluster, &client::Admin::topic_config(TOPIC, 4, 4))
            .await;
        admin.shutdown();
        created.map(drop).map_err(anyhow::Error::from)
    })?;
    let master = servers.master()?;
    let follower = follower_endpoint(&servers, &master)?;
    // Until the follower has applied the topic its relay may be refused: bounded retries.
    let mut relayed = false;
    for seq in 0..50 {
        if block_on(send(&follower, seq))? == Code::Ok {
            relayed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    ensure!(relayed, "no send through the follower succeeded");
    Ok((servers, master, follower))
}

#[test]
fn a_send_through_a_follower_just_after_the_masters_kill_reaches_the_next_master() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (mut servers, master, follower) = start_group(dir.path(), "GrpcRelay")?;
    process_of(&mut servers, &master)?.kill();
    let started = Instant::now();
    let code = block_on(send(&follower, 1000))?;
    println!(
        "a send through the follower {} ms after the master's kill -9: {code:?}",
        started.elapsed().as_millis()
    );
    ensure!(
        code == Code::Ok,
        "the send through the follower failed with {code:?} instead of waiting for the next master"
    );
    Ok(())
}

/// Between the old master's removal from the name servers (at once: its connection
/// closed) and the next master's registration, the name servers list no master: a call
/// through a follower then waits for the next one instead of failing.
#[test]
fn a_send_through_a_follower_while_no_master_is_listed_reaches_the_next_master() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (mut servers, master, follower) = start_group(dir.path(), "GrpcNoMaster")?;
    // The follower's relay looks the master up again after a second: past that, the name
    // servers' answer is what it goes by.
    std::thread::sleep(Duration::from_millis(1500));
    process_of(&mut servers, &master)?.kill();
    let broker_name = servers.broker_name.clone();
    let unlisted = block_on(async {
        let admin = client::Admin::start(client::ClientOptions::new(&servers.ns()))?;
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut unlisted = false;
        while !unlisted && Instant::now() < deadline {
            let route = admin.topic_route(&broker_name).await;
            unlisted = route
                .is_ok_and(|route| route.broker_datas.iter().all(|b| b.master_addr().is_none()));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        admin.shutdown();
        anyhow::Ok(unlisted)
    })?;
    ensure!(
        unlisted,
        "the name server never listed the group without a master after the kill"
    );
    let code = block_on(send(&follower, 2000))?;
    ensure!(
        code == Code::Ok,
        "the send through the follower, with no master listed, failed with {code:?}"
    );
    Ok(())
}

/// An ack the master may have stored without answering (here: it stopped, as in a long
/// pause, with the ack sent to it) goes to the next master too: acking twice changes
/// nothing, and the client is not told an ack failed that in fact held.
#[test]
fn an_ack_the_paused_master_never_answered_is_taken_by_the_next_master() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (mut servers, _, follower) = start_group(dir.path(), "GrpcAckRelay")?;
    let group = "grpc-relay-ack";
    // A receive through the follower (handed to the master) brings a message to ack.
    let entry = block_on(receive_one(&follower, group))?;
    // The master and a follower as they are now (an election after the start would make a
    // follower picked then the master, and the ack below local).
    let master = servers.master()?;
    let follower = follower_endpoint(&servers, &master)?;
    let paused = process_of(&mut servers, &master)?;
    paused.pause();
    let started = Instant::now();
    let acked = block_on(ack(&follower, group, entry));
    paused.resume();
    let code = acked?;
    println!(
        "an ack through the follower with the master paused: {code:?} after {} ms",
        started.elapsed().as_millis()
    );
    ensure!(
        code == Code::Ok,
        "the ack through the follower failed with {code:?} instead of going to the next master"
    );
    Ok(())
}

fn resource(name: &str) -> Option<v2::Resource> {
    Some(v2::Resource {
        resource_namespace: String::new(),
        name: name.to_owned(),
    })
}

fn seconds(s: i64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration {
        seconds: s,
        nanos: 0,
    })
}

/// A receive of `topic` for `group`: up to `batch` messages, invisible 60 s, polling up to
/// `poll_s` seconds.
fn receive_request(group: &str, topic: &str, batch: i32, poll_s: i64) -> v2::ReceiveMessageRequest {
    v2::ReceiveMessageRequest {
        group: resource(group),
        message_queue: Some(v2::MessageQueue {
            topic: resource(topic),
            id: -1,
            ..Default::default()
        }),
        filter_expression: Some(v2::FilterExpression {
            r#type: v2::FilterType::Tag as i32,
            expression: "*".to_owned(),
        }),
        batch_size: batch,
        invisible_duration: seconds(60),
        auto_renew: false,
        long_polling_timeout: seconds(poll_s),
        ..Default::default()
    }
}

/// Opens a client's Telemetry stream with its `settings` and waits for the broker's; the
/// stream stays open while the returned sender and answers live.
async fn open_telemetry(
    client: &mut MessagingServiceClient<tonic::transport::Channel>,
    client_id: &str,
    settings: v2::Settings,
) -> Result<(
    futures::channel::mpsc::Sender<v2::TelemetryCommand>,
    tonic::Streaming<v2::TelemetryCommand>,
)> {
    let (mut commands, outbound) = futures::channel::mpsc::channel(1);
    futures::SinkExt::send(
        &mut commands,
        v2::TelemetryCommand {
            status: None,
            command: Some(v2::telemetry_command::Command::Settings(settings)),
        },
    )
    .await?;
    let mut request = tonic::Request::new(outbound);
    request
        .metadata_mut()
        .insert("x-mq-client-id", client_id.parse()?);
    let mut answers = client.telemetry(request).await?.into_inner();
    answers.message().await?.context("no settings back")?;
    Ok((commands, answers))
}

/// Receives (bounded retries) one message of the topic for `group`: what acks it.
async fn receive_one(endpoint: &str, group: &str) -> Result<v2::AckMessageEntry> {
    let mut client = MessagingServiceClient::connect(format!("http://{endpoint}")).await?;
    for _ in 0..10 {
        let mut request = tonic::Request::new(receive_request(group, TOPIC, 1, 5));
        request.set_timeout(Duration::from_secs(15));
        request
            .metadata_mut()
            .insert("x-mq-client-id", "grpc-failover-test".parse()?);
        let mut stream = client.receive_message(request).await?.into_inner();
        while let Some(response) = stream.message().await? {
            if let Some(v2::receive_message_response::Content::Message(message)) = response.content
            {
                let system = message.system_properties.context("no system properties")?;
                return Ok(v2::AckMessageEntry {
                    message_id: system.message_id,
                    receipt_handle: system.receipt_handle.context("no receipt handle")?,
                    lite_topic: None,
                });
            }
        }
    }
    anyhow::bail!("no message received through {endpoint}")
}

/// Acks `entry` through `endpoint`; the ack's status code.
async fn ack(endpoint: &str, group: &str, entry: v2::AckMessageEntry) -> Result<Code> {
    let mut client = MessagingServiceClient::connect(format!("http://{endpoint}")).await?;
    let mut request = tonic::Request::new(v2::AckMessageRequest {
        group: resource(group),
        topic: resource(TOPIC),
        entries: vec![entry],
    });
    request.set_timeout(Duration::from_secs(40));
    request
        .metadata_mut()
        .insert("x-mq-client-id", "grpc-failover-test".parse()?);
    let answer = client.ack_message(request).await?.into_inner();
    Ok(Code::try_from(answer.status.map_or(0, |s| s.code)).unwrap_or(Code::Unspecified))
}

/// A 5.x pull consumer's offset commit through a follower is made by the master (the relay
/// hands it over) and read back on every member once replicated.
#[test]
fn an_offset_committed_through_a_follower_is_read_on_every_member() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (servers, _master, follower) = start_group(dir.path(), "GrpcOffsets")?;
    let queue = Some(v2::MessageQueue {
        topic: resource(TOPIC),
        id: 0,
        ..Default::default()
    });
    let group = resource("grpc-offset-group");
    let updated = block_on(async {
        let mut client = MessagingServiceClient::connect(format!("http://{follower}")).await?;
        let answer = client
            .update_offset(v2::UpdateOffsetRequest {
                group: group.clone(),
                message_queue: queue.clone(),
                offset: 1,
            })
            .await?
            .into_inner();
        anyhow::Ok(Code::try_from(answer.status.map_or(0, |s| s.code)).unwrap_or(Code::Unspecified))
    })?;
    ensure!(
        updated == Code::Ok,
        "the commit through the follower: {updated:?}"
    );
    let members = servers.group.as_ref().context("a group")?.members.iter();
    for endpoint in members.map(|m| m.grpc_addr()).collect::<Result<Vec<_>>>()? {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = block_on(async {
                let mut client =
                    MessagingServiceClient::connect(format!("http://{endpoint}")).await?;
                let answer = client
                    .get_offset(v2::GetOffsetRequest {
                        group: group.clone(),
                        message_queue: queue.clone(),
                    })
                    .await?
                    .into_inner();
                let code = Code::try_from(answer.status.map_or(0, |s| s.code))
                    .unwrap_or(Code::Unspecified);
                anyhow::Ok((code, answer.offset))
            })?;
            if got == (Code::Ok, 1) {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "{endpoint} answers {got:?} for the committed offset"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

/// A follower stands in for the 5.x producers on its Telemetry streams by heartbeating their
/// groups to the master. Once the last producer of a group left, the follower unregisters
/// the group: were it left to expire there (`channelExpiredTimeout`), the master would
/// close the follower's connection, failing whatever call the follower was relaying on it
/// (here a receive's long poll, answered an error instead of MESSAGE_NOT_FOUND).
#[test]
fn a_follower_whose_producers_left_keeps_relaying() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let settings = [("channelExpiredTimeout", "2000".to_owned())];
    let (_servers, _master, follower) = start_group_with(dir.path(), "GrpcRelayIdle", &settings)?;
    block_on(async {
        let mut client = MessagingServiceClient::connect(format!("http://{follower}")).await?;
        let settings = v2::Settings {
            client_type: Some(v2::ClientType::Producer as i32),
            pub_sub: Some(v2::settings::PubSub::Publishing(v2::Publishing {
                topics: vec![resource(TOPIC).context("a topic")?],
                ..Default::default()
            })),
            ..Default::default()
        };
        let (commands, answers) =
            open_telemetry(&mut client, "grpc-relay-producer", settings).await?;
        // The follower heartbeats the producer's group to the master, then the producer
        // goes away.
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(commands);
        drop(answers);
        receive_one(&follower, "relay-idle-group").await?;
        let mut request = tonic::Request::new(receive_request("relay-idle-group", TOPIC, 1, 8));
        request.set_timeout(Duration::from_secs(20));
        request
            .metadata_mut()
            .insert("x-mq-client-id", "grpc-failover-test".parse()?);
        let mut stream = client.receive_message(request).await?.into_inner();
        let mut status = None;
        while let Some(response) = stream.message().await? {
            if let Some(v2::receive_message_response::Content::Status(s)) = response.content {
                status = Some(s);
            }
        }
        let status = status.context("a receive without a status")?;
        ensure!(
            status.code == Code::MessageNotFound as i32,
            "a long poll relayed through the follower, after its producer left, ended with {status:?}"
        );
        Ok(())
    })
}

const LITE_PARENT: &str = "GrpcLiteParent";
const LITE_CLIENT: &str = "grpc-lite-failover";

/// A request from the lite consumer of these tests, over `client`.
fn as_lite_client<T>(message: T) -> Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(Duration::from_secs(20));
    request
        .metadata_mut()
        .insert("x-mq-client-id", LITE_CLIENT.parse()?);
    Ok(request)
}

/// The lite topic subscriptions of a LitePushConsumer are replicated with the group's
/// metadata: after the master's kill -9, the next master delivers the lite topic the client
/// subscribed before, without the client subscribing again (a 5.x client re-sends its set
/// only every 30 s).
#[test]
fn lite_subscriptions_outlive_the_masters_kill() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (mut servers, master, follower) = start_group(dir.path(), "GrpcLiteFailover")?;
    let namesrv = servers.ns();
    let cluster = servers.cluster.clone();
    block_on(async {
        let admin = client::Admin::start(client::ClientOptions::new(&namesrv))?;
        let mut config = client::Admin::topic_config(LITE_PARENT, 2, 2);
        config
            .attributes
            .insert("+message.type".to_owned(), "LITE".to_owned());
        let created = admin.create_topic_in_cluster(&cluster, &config).await;
        admin.shutdown();
        created.map(drop).map_err(anyhow::Error::from)
    })?;
    let mut client = block_on(MessagingServiceClient::connect(format!(
        "http://{follower}"
    )))?;
    // The consumer's settings, on a Telemetry stream it keeps open.
    let settings = v2::Settings {
        client_type: Some(v2::ClientType::LitePushConsumer as i32),
        pub_sub: Some(v2::settings::PubSub::Subscription(v2::Subscription {
            group: resource("lite-failover-group"),
            subscriptions: vec![v2::SubscriptionEntry {
                topic: resource(LITE_PARENT),
                expression: None,
            }],
            ..Default::default()
        })),
        ..Default::default()
    };
    let _telemetry = block_on(open_telemetry(&mut client, LITE_CLIENT, settings))?;
    let mut sent = 0;
    for seq in 0..50 {
        let mut request = send_request(seq);
        for message in &mut request.messages {
            message.topic = resource(LITE_PARENT);
            if let Some(system) = message.system_properties.as_mut() {
                system.message_type = v2::MessageType::Lite as i32;
                system.lite_topic = Some("L0".to_owned());
            }
        }
        let answer = block_on(client.send_message(as_lite_client(request)?))?.into_inner();
        if answer.status.is_some_and(|s| s.code == Code::Ok as i32) {
            sent += 1;
            if sent == 3 {
                break;
            }
        } else {
            // The follower may not have the topic yet.
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    ensure!(
        sent == 3,
        "{sent} of 3 lite messages sent through the follower"
    );
    let subscribe = v2::SyncLiteSubscriptionRequest {
        action: v2::LiteSubscriptionAction::PartialAdd as i32,
        topic: resource(LITE_PARENT),
        group: resource("lite-failover-group"),
        lite_topic_set: vec!["L0".to_owned()],
        ..Default::default()
    };
    let answer = block_on(client.sync_lite_subscription(as_lite_client(subscribe)?))?.into_inner();
    ensure!(
        answer
            .status
            .as_ref()
            .is_some_and(|s| s.code == Code::Ok as i32),
        "subscribe: {answer:?}"
    );

    process_of(&mut servers, &master)?.kill();
    let killed = Instant::now();
    let mut received = 0;
    // Bounded: ten receives of at most a 5 s poll each (plus the relay's wait for a master).
    for _ in 0..10 {
        let request = receive_request("lite-failover-group", LITE_PARENT, 32, 5);
        let Ok(stream) = block_on(client.receive_message(as_lite_client(request)?)) else {
            continue;
        };
        let mut stream = stream.into_inner();
        while let Some(Ok(response)) = block_on(stream.message()).transpose() {
            if let Some(v2::receive_message_response::Content::Message(message)) = response.content
            {
                let lite = message.system_properties.and_then(|s| s.lite_topic);
                ensure!(
                    lite.as_deref() == Some("L0"),
                    "a message of lite topic {lite:?}"
                );
                received += 1;
            }
        }
        if received >= 3 {
            break;
        }
    }
    println!(
        "lite messages received through the follower {} ms after the master's kill -9: {received}",
        killed.elapsed().as_millis()
    );
    ensure!(
        received >= 3,
        "{received} of the 3 messages of the subscribed lite topic came from the next master"
    );
    Ok(())
}
