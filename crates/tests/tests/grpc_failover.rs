//! A broker group's follower hands a 5.x client's sends, receives and acks to the master
//! (see the broker's `grpc::relay`). When the master has just been killed, a call that
//! cannot reach it was never sent: it waits for the group's next master and goes there,
//! instead of failing the client through the failover.

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

#[test]
fn a_send_through_a_follower_just_after_the_masters_kill_reaches_the_next_master() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut servers = Servers::start(Setup::Group, dir.path(), "GrpcRelay", &[])?;
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
    let group = servers.group.as_mut().context("a group")?;
    let follower = group
        .members
        .iter()
        .find(|m| m.addr() != master)
        .context("a follower")?
        .grpc_addr()?;
    // Until the follower has applied the topic its relay may be refused: bounded retries.
    let mut relayed = false;
    for seq in 0..50 {
        if block_on(send(&follower, seq))? == Code::Ok {
            relayed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    ensure!(
        relayed,
        "no send through the follower succeeded before the kill"
    );

    group
        .member_mut(&master)
        .context("the master is a member")?
        .process
        .kill();
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
