//! Topic and subscription-group administration and the operator views.

mod support;

use remoting::body::{
    ConsumeStats, KvTable, MessageQueue, SubscriptionGroupConfig, SubscriptionGroupWrapper,
    TopicConfigSerializeWrapper, TopicStatsTable,
};
use remoting::code::{request, response};
use remoting::command::RemotingCommand;
use remoting::header::admin::{GetConsumeStatsRequestHeader, TopicRequestHeader};
use support::*;

fn topic_request(code: i32, topic: &str) -> RemotingCommand {
    RemotingCommand::request(code).with_header(&TopicRequestHeader {
        topic: topic.into(),
    })
}

async fn all_topics(broker: &TestBroker) -> TopicConfigSerializeWrapper {
    let all = broker
        .call(RemotingCommand::request(request::GET_ALL_TOPIC_CONFIG))
        .await;
    assert_eq!(all.code, response::SUCCESS);
    TopicConfigSerializeWrapper::decode(&all.body).unwrap()
}

#[tokio::test]
async fn topics_are_created_listed_deleted_and_survive_restarts() {
    let mut broker = TestBroker::start().await;
    let created = broker.call(create_topic("AdminTopic", 6)).await;
    assert_eq!(created.code, response::SUCCESS, "{:?}", created.remark);
    let wrapper = all_topics(&broker).await;
    assert_eq!(wrapper.topic_config_table["AdminTopic"].write_queue_nums, 6);
    assert!(wrapper.topic_config_table.contains_key("TBW102"));
    assert_eq!(wrapper.topic_config_table["TBW102"].perm, 7);

    broker.restart().await;
    let wrapper = all_topics(&broker).await;
    assert_eq!(wrapper.topic_config_table["AdminTopic"].write_queue_nums, 6);

    send_tagged(&broker, "AdminTopic", 0, "a", b"x").await;
    broker.call(update_offset("CG", "AdminTopic", 0, 1)).await;
    let deleted = broker
        .call(topic_request(request::DELETE_TOPIC_IN_BROKER, "AdminTopic"))
        .await;
    assert_eq!(deleted.code, response::SUCCESS);
    assert!(!all_topics(&broker)
        .await
        .topic_config_table
        .contains_key("AdminTopic"));
    assert!(broker.ctx().offsets.query("CG", "AdminTopic", 0).is_none());
    broker.restart().await;
    assert!(!all_topics(&broker)
        .await
        .topic_config_table
        .contains_key("AdminTopic"));
}

#[tokio::test]
async fn bad_topic_definitions_are_refused() {
    let broker = TestBroker::start().await;
    assert_eq!(
        broker.call(create_topic("bad name", 4)).await.code,
        response::SYSTEM_ERROR
    );
    assert_eq!(
        broker.call(create_topic("TBW102", 4)).await.code,
        response::SYSTEM_ERROR
    );
    assert_eq!(
        broker.call(create_topic("Zero", 0)).await.code,
        response::INVALID_PARAMETER
    );
    assert_eq!(
        broker.call(create_topic("Huge", 100_000)).await.code,
        response::INVALID_PARAMETER
    );
    let deleted = broker
        .call(topic_request(request::DELETE_TOPIC_IN_BROKER, "TBW102"))
        .await;
    assert_eq!(deleted.code, response::SYSTEM_ERROR);
}

#[tokio::test]
async fn subscription_groups_are_managed_and_persisted() {
    let mut broker = TestBroker::start().await;
    let mut config = SubscriptionGroupConfig::new("AdminGroup");
    config.retry_max_times = 5;
    let created = broker
        .call(
            RemotingCommand::request(request::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP)
                .with_body(serde_json::to_vec(&config).unwrap()),
        )
        .await;
    assert_eq!(created.code, response::SUCCESS, "{:?}", created.remark);
    broker.restart().await;
    let all = broker
        .call(RemotingCommand::request(
            request::GET_ALL_SUBSCRIPTIONGROUP_CONFIG,
        ))
        .await;
    let wrapper: SubscriptionGroupWrapper = serde_json::from_slice(&all.body).unwrap();
    assert_eq!(
        wrapper.subscription_group_table["AdminGroup"].retry_max_times,
        5
    );
}

#[tokio::test]
async fn operator_views_report_offsets_and_runtime_facts() {
    let broker = TestBroker::start().await;
    broker.call(create_topic("StatTopic", 2)).await;
    for _ in 0..3 {
        send_tagged(&broker, "StatTopic", 1, "a", b"x").await;
    }
    broker.call(update_offset("SG", "StatTopic", 1, 2)).await;

    let stats = broker
        .call(topic_request(request::GET_TOPIC_STATS_INFO, "StatTopic"))
        .await;
    assert_eq!(stats.code, response::SUCCESS);
    let table = TopicStatsTable::decode(&stats.body).unwrap();
    let queue1 = &table.offset_table[&MessageQueue::new("StatTopic", "broker-t", 1)];
    assert_eq!((queue1.min_offset, queue1.max_offset), (0, 3));
    assert!(queue1.last_update_timestamp > 0);
    let missing = broker
        .call(topic_request(request::GET_TOPIC_STATS_INFO, "Nope"))
        .await;
    assert_eq!(missing.code, response::TOPIC_NOT_EXIST);

    let consume = broker
        .call(
            RemotingCommand::request(request::GET_CONSUME_STATS).with_header(
                &GetConsumeStatsRequestHeader {
                    consumer_group: "SG".into(),
                    topic: None,
                    topic_list: None,
                },
            ),
        )
        .await;
    assert_eq!(consume.code, response::SUCCESS);
    let consume = ConsumeStats::decode(&consume.body).unwrap();
    let queue1 = &consume.offset_table[&MessageQueue::new("StatTopic", "broker-t", 1)];
    assert_eq!((queue1.broker_offset, queue1.consumer_offset), (3, 2));
    assert_eq!(consume.total_diff(), 1);

    let info = broker
        .call(RemotingCommand::request(request::GET_BROKER_RUNTIME_INFO))
        .await;
    let table = KvTable::decode(&info.body).unwrap().table;
    assert_eq!(table["brokerVersion"], "479");
    assert!(table["putTps"].split(' ').count() == 3);
    assert_eq!(table["msgPutTotalTodayNow"], "3");

    let config = broker
        .call(RemotingCommand::request(request::GET_BROKER_CONFIG))
        .await;
    assert!(String::from_utf8_lossy(&config.body).contains("brokerName=broker-t"));
}

#[tokio::test]
async fn broker_config_updates_apply_at_once_and_refuse_what_they_cannot() {
    let broker = TestBroker::start().await;
    let update = |text: &str| {
        RemotingCommand::request(request::UPDATE_BROKER_CONFIG).with_body(text.as_bytes().to_vec())
    };
    let config_text = || async {
        let config = broker
            .call(RemotingCommand::request(request::GET_BROKER_CONFIG))
            .await;
        String::from_utf8_lossy(&config.body).into_owned()
    };
    let send = || broker.call(send_v2(&send_header("LiveTopic", 0, ""), b"x"));
    assert_eq!(send().await.code, response::SUCCESS);

    // Read-only (4): sends are refused until write permission is back.
    let updated = broker.call(update("brokerPermission=4\n")).await;
    assert_eq!(updated.code, response::SUCCESS, "{:?}", updated.remark);
    assert!(config_text().await.contains("brokerPermission=4\n"));
    assert_eq!(send().await.code, response::NO_PERMISSION);
    let updated = broker.call(update("brokerPermission=6\n")).await;
    assert_eq!(updated.code, response::SUCCESS);
    assert_eq!(send().await.code, response::SUCCESS);

    let black_listed = broker.call(update("brokerConfigPath=/etc/x\n")).await;
    assert_eq!(black_listed.code, response::NO_PERMISSION);
    assert_eq!(
        black_listed.remark.as_deref(),
        Some("Can not update config in black list.")
    );
    let start_up_only = broker
        .call(update("maxMessageSize=1000\nlistenPort=1\n"))
        .await;
    assert_eq!(start_up_only.code, response::SYSTEM_ERROR);
    assert!(start_up_only.remark.unwrap().contains("listenPort"));
    assert!(
        config_text().await.contains("maxMessageSize=1048576\n"),
        "nothing of a refused update applies"
    );
    let bad = broker.call(update("brokerPermission=99\n")).await;
    assert_eq!(bad.code, response::SYSTEM_ERROR);

    let smaller = broker.call(update("maxMessageSize=1000\n")).await;
    assert_eq!(smaller.code, response::SUCCESS);
    let big = broker
        .call(send_v2(&send_header("LiveTopic", 0, ""), &[7u8; 1001]))
        .await;
    assert_eq!(big.code, response::MESSAGE_ILLEGAL);
    let text = config_text().await;
    for key in [
        "flushDiskType=",
        "diskSpaceWarningLevelRatio=100",
        "messageIndexEnable=",
    ] {
        assert!(text.contains(key), "{key} in {text}");
    }
}

#[tokio::test]
async fn topic_attributes_are_checked_stored_and_altered() {
    let broker = TestBroker::start().await;
    let create = |attributes: &str| {
        create_topic("TypedTopic", 2).with_ext_field("attributes", attributes.to_owned())
    };
    let topic_config = || async {
        let answer = broker
            .call(
                RemotingCommand::request(request::GET_TOPIC_CONFIG).with_header(
                    &TopicRequestHeader {
                        topic: "TypedTopic".into(),
                    },
                ),
            )
            .await;
        assert_eq!(answer.code, response::SUCCESS, "{:?}", answer.remark);
        serde_json::from_slice::<remoting::body::TopicConfig>(&answer.body).unwrap()
    };
    let bad = broker.call(create("+message.type=LOUD")).await;
    assert_eq!(bad.code, response::SYSTEM_ERROR);
    assert_eq!(bad.remark.as_deref(), Some("value is not in set: LOUD"));

    let created = broker.call(create("+message.type=FIFO")).await;
    assert_eq!(created.code, response::SUCCESS, "{:?}", created.remark);
    assert_eq!(topic_config().await.attributes["message.type"], "FIFO");

    // An update without attributes keeps them; one with attributes alters them.
    let updated = broker.call(create_topic("TypedTopic", 4)).await;
    assert_eq!(updated.code, response::SUCCESS);
    let config = topic_config().await;
    assert_eq!(
        (
            config.write_queue_nums,
            config.attributes["message.type"].as_str()
        ),
        (4, "FIFO")
    );
    let altered = broker.call(create("+message.type=DELAY")).await;
    assert_eq!(altered.code, response::SUCCESS);
    assert_eq!(topic_config().await.attributes["message.type"], "DELAY");
}

#[tokio::test]
async fn broker_stats_data_reports_topic_traffic() {
    let broker = TestBroker::start().await;
    let view = |name: &str, key: &str| {
        let mut command = RemotingCommand::request(request::VIEW_BROKER_STATS_DATA);
        command = command
            .with_ext_field("statsName", name.to_owned())
            .with_ext_field("statsKey", key.to_owned());
        command
    };
    let send = || broker.call(send_v2(&send_header("StatsTopic", 0, ""), b"0123456789"));
    assert_eq!(send().await.code, response::SUCCESS);
    broker.ctx().stats_items.sample(broker::clock::now_ms());
    for _ in 0..2 {
        assert_eq!(send().await.code, response::SUCCESS);
    }

    let answer = broker.call(view("TOPIC_PUT_NUMS", "StatsTopic")).await;
    assert_eq!(answer.code, response::SUCCESS, "{:?}", answer.remark);
    let data: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    // Every send counts, the first burst of a new topic too, up to now.
    assert_eq!(data["statsMinute"]["sum"], 3);
    assert_eq!(data["statsDay"]["sum"], 3);
    assert!(data["statsMinute"]["tps"]
        .as_f64()
        .is_some_and(|tps| tps >= 0.0));
    let unknown = broker.call(view("TOPIC_PUT_NUMS", "NoTraffic")).await;
    assert_eq!(unknown.code, response::SYSTEM_ERROR);
    assert_eq!(
        unknown.remark.as_deref(),
        Some("The stats <TOPIC_PUT_NUMS> <NoTraffic> not exist")
    );
}

#[tokio::test]
async fn a_taken_grpc_port_leaves_remoting_clients_served() {
    // Something else (a RocketMQ proxy left running, say) holds the gRPC port.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let broker = TestBroker::start_with(|config| config.grpc_server_port = port).await;
    let answer = broker
        .call(RemotingCommand::request(request::GET_BROKER_CONFIG))
        .await;
    assert_eq!(answer.code, response::SUCCESS, "{:?}", answer.remark);
    drop(taken);
}
