//! An in-memory name server + broker in one process, speaking the RocketMQ protocol the
//! way a Java broker answers, so the client's logic can be tested without real servers.
//! It is deliberately simple (one broker, everything in maps) but follows the documented
//! codes: long-polled pulls, consumer lists with change notifications, queue locks,
//! send-back into `%RETRY%` / `%DLQ%`, offsets, admin queries. Faults can be injected.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use remoting::body::{
    BrokerData, ClusterInfo, ConsumeStats, ConsumerListBody, HeartbeatData, KeyQuoting, KvTable,
    LockBatchRequestBody, LockBatchResponseBody, MessageQueue, OffsetWrapper, QueueData, TopicList,
    TopicOffset, TopicRouteData, TopicStatsTable,
};
use remoting::code::{request, response};
use remoting::command::RemotingCommand;
use remoting::header::admin::{
    CreateTopicRequestHeader, GetConsumeStatsRequestHeader, TopicRequestHeader,
};
use remoting::header::client::{
    ConsumerSendMsgBackRequestHeader, GetConsumerListByGroupRequestHeader,
    UnregisterClientRequestHeader,
};
use remoting::header::offset::{
    GetMaxOffsetRequestHeader, GetMinOffsetRequestHeader, QueryConsumerOffsetRequestHeader,
    SearchOffsetRequestHeader, UpdateConsumerOffsetRequestHeader,
};
use remoting::header::pull::{PullMessageRequestHeader, PullMessageResponseHeader};
use remoting::header::query::{QueryMessageRequestHeader, ViewMessageRequestHeader};
use remoting::header::send::{SendMessageRequestHeader, SendMessageResponseHeader};
use remoting::message::{
    decode_batch, encode, MessageDraft, MessageProperties, MessageView, TagFilter,
};
use remoting::server::{ConnectionHandle, RemotingServer, RequestProcessor, ServerConfig};
use tokio::sync::Notify;

pub const BROKER_NAME: &str = "mini";
pub const CLUSTER: &str = "MiniCluster";
/// Bounds every wait in these tests.
pub const TEST_WAIT: Duration = Duration::from_secs(30);

struct Stored {
    record: Vec<u8>,
    tags: Option<String>,
}

#[derive(Default)]
struct State {
    /// topic → queue count.
    topics: BTreeMap<String, i32>,
    queues: HashMap<(String, i32), Vec<Stored>>,
    /// commit-log offset → (topic, queue id, queue offset).
    by_commit_offset: BTreeMap<i64, (String, i32, i64)>,
    next_commit_offset: i64,
    offsets: HashMap<(String, String, i32), i64>,
    /// group → client id → connection.
    members: BTreeMap<String, BTreeMap<String, ConnectionHandle>>,
    /// (group, queue) → client id.
    locks: HashMap<(String, MessageQueue), String>,
    /// Fail the next sends with this code.
    fail_sends: Vec<i32>,
    /// Refuse every send with this code (a follower after a failover).
    refuse_sends: Option<i32>,
    /// The broker address routes name as master (another server after a "failover").
    master_override: Option<String>,
    /// The next this many routes name no master (an election in progress).
    masterless_routes: u32,
    /// Retry limit per group (16 like Java unless the request says otherwise).
    send_backs: Vec<(String, i32)>,
    pulls: u64,
    /// Messages handed out by pulls.
    pulled_messages: u64,
}

pub struct MiniCluster {
    state: Mutex<State>,
    arrived: Notify,
    addr: Mutex<Option<SocketAddr>>,
}

pub struct Running {
    pub cluster: Arc<MiniCluster>,
    pub server: RemotingServer,
}

impl Running {
    pub fn addr(&self) -> String {
        self.server.local_addr().to_string()
    }
}

impl MiniCluster {
    pub async fn start() -> Running {
        let cluster = Arc::new(MiniCluster {
            state: Mutex::new(State::default()),
            arrived: Notify::new(),
            addr: Mutex::new(None),
        });
        cluster.state.lock().topics.insert("TBW102".into(), 8);
        let server =
            RemotingServer::bind("127.0.0.1:0", ServerConfig::default(), Arc::clone(&cluster))
                .await
                .expect("bind");
        *cluster.addr.lock() = Some(server.local_addr());
        Running { cluster, server }
    }

    /// Drops the auto-create template topic (TBW102), as with autoCreateTopicEnable=false.
    pub fn remove_template(&self) {
        self.state.lock().topics.remove("TBW102");
    }

    pub fn create_topic(&self, topic: &str, queues: i32) {
        self.state.lock().topics.insert(topic.into(), queues);
    }

    /// Plays a failover: this broker refuses sends with `code` (like a follower) and the
    /// routes it serves name `new_master` instead.
    pub fn fail_over_to(&self, new_master: Option<String>, refuse_with: Option<i32>) {
        let mut state = self.state.lock();
        state.master_override = new_master;
        state.refuse_sends = refuse_with;
    }

    /// The next `count` routes served name no master, as while a group elects a leader.
    pub fn hide_master_for_routes(&self, count: u32) {
        self.state.lock().masterless_routes = count;
    }

    pub fn fail_next_sends(&self, codes: &[i32]) {
        self.state.lock().fail_sends.extend_from_slice(codes);
    }

    pub fn queue_len(&self, topic: &str, queue_id: i32) -> usize {
        self.state
            .lock()
            .queues
            .get(&(topic.to_owned(), queue_id))
            .map_or(0, Vec::len)
    }

    /// Bodies stored in a topic, all queues.
    pub fn bodies(&self, topic: &str) -> Vec<String> {
        let state = self.state.lock();
        let mut out = Vec::new();
        for ((t, _), stored) in &state.queues {
            if t == topic {
                for s in stored {
                    let view = MessageView::parse(&s.record).unwrap();
                    out.push(String::from_utf8_lossy(view.body()).into_owned());
                }
            }
        }
        out
    }

    pub fn committed_offset(&self, group: &str, topic: &str, queue_id: i32) -> Option<i64> {
        self.state
            .lock()
            .offsets
            .get(&(group.to_owned(), topic.to_owned(), queue_id))
            .copied()
    }

    /// Messages handed out by pulls so far.
    pub fn pulled_messages(&self) -> u64 {
        self.state.lock().pulled_messages
    }

    pub fn members(&self, group: &str) -> Vec<String> {
        self.state
            .lock()
            .members
            .get(group)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    pub fn lock_owner(&self, group: &str, queue: &MessageQueue) -> Option<String> {
        self.state
            .lock()
            .locks
            .get(&(group.to_owned(), queue.clone()))
            .cloned()
    }

    fn addr(&self) -> SocketAddr {
        self.addr.lock().expect("bound")
    }

    fn route(&self, topic: &str) -> Option<TopicRouteData> {
        let mut state = self.state.lock();
        if topic.starts_with("%RETRY%") || topic.starts_with("%DLQ%") {
            state.topics.entry(topic.to_owned()).or_insert(1);
        }
        let nums = *state.topics.get(topic)?;
        let masterless = state.masterless_routes > 0;
        state.masterless_routes = state.masterless_routes.saturating_sub(1);
        drop(state);
        let mut broker = self.broker_data();
        if masterless {
            let addr = broker.broker_addrs.remove(&0).unwrap_or_default();
            broker.broker_addrs.insert(1, addr);
        }
        Some(TopicRouteData {
            queue_datas: vec![QueueData {
                broker_name: BROKER_NAME.into(),
                read_queue_nums: nums,
                write_queue_nums: nums,
                perm: 6 | if topic == "TBW102" { 1 } else { 0 },
                topic_sys_flag: 0,
            }],
            broker_datas: vec![broker],
            ..TopicRouteData::default()
        })
    }

    fn broker_data(&self) -> BrokerData {
        let master = self
            .state
            .lock()
            .master_override
            .clone()
            .unwrap_or_else(|| self.addr().to_string());
        BrokerData {
            cluster: CLUSTER.into(),
            broker_name: BROKER_NAME.into(),
            broker_addrs: [(0, master)].into_iter().collect(),
            enable_acting_master: false,
            zone_name: None,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn store(
        &self,
        state: &mut State,
        topic: &str,
        queue_id: i32,
        body: &[u8],
        flag: i32,
        properties: &str,
        sys_flag: i32,
        reconsume_times: i32,
    ) -> (i64, i64, String) {
        let commit_offset = state.next_commit_offset;
        let queue = state
            .queues
            .entry((topic.to_owned(), queue_id))
            .or_default();
        let queue_offset = queue.len() as i64;
        let draft = MessageDraft {
            topic,
            body,
            flag,
            properties,
            queue_id,
            sys_flag,
            born_timestamp_ms: now_ms(),
            born_host: "127.0.0.1:9".parse().unwrap(),
            store_host: self.addr(),
            reconsume_times,
            prepared_transaction_offset: 0,
            queue_offset,
            physical_offset: commit_offset,
            store_timestamp_ms: now_ms(),
        };
        let record = encode(&draft).expect("encode");
        state.next_commit_offset += record.len() as i64;
        let tags = MessageProperties::parse(properties)
            .get("TAGS")
            .map(str::to_owned);
        let msg_id = remoting::message::offset_msg_id(self.addr(), commit_offset);
        queue.push(Stored { record, tags });
        state
            .by_commit_offset
            .insert(commit_offset, (topic.to_owned(), queue_id, queue_offset));
        (commit_offset, queue_offset, msg_id)
    }

    fn handle_send(&self, req: &RemotingCommand) -> RemotingCommand {
        let header = match SendMessageRequestHeader::from_request(req.code, &req.ext_fields) {
            Ok(h) => h,
            Err(e) => return RemotingCommand::error_to(req, response::SYSTEM_ERROR, e.to_string()),
        };
        let mut state = self.state.lock();
        if let Some(code) = state.refuse_sends {
            return RemotingCommand::error_to(req, code, "not the leader");
        }
        if !state.fail_sends.is_empty() {
            let code = state.fail_sends.remove(0);
            return RemotingCommand::error_to(req, code, "injected failure");
        }
        if !state.topics.contains_key(&header.topic) {
            // Auto-create from the template, as a Java broker with autoCreateTopicEnable.
            if header.default_topic == "TBW102" {
                state
                    .topics
                    .insert(header.topic.clone(), header.default_topic_queue_nums.max(1));
            } else {
                return RemotingCommand::error_to(req, response::TOPIC_NOT_EXIST, "no topic");
            }
        }
        let nums = state.topics[&header.topic];
        let queue_id = if header.queue_id < 0 {
            0
        } else {
            header.queue_id
        };
        if queue_id >= nums {
            return RemotingCommand::error_to(req, response::INVALID_PARAMETER, "queueId");
        }
        let props = header.properties.clone().unwrap_or_default();
        let (first_offset, ids) = if header.is_batch() {
            let items = match decode_batch(&req.body, 1024) {
                Ok(items) => items,
                Err(e) => {
                    return RemotingCommand::error_to(req, response::MESSAGE_ILLEGAL, e.to_string())
                }
            };
            let mut first = None;
            let mut ids = Vec::new();
            for item in items {
                let (_, qo, id) = self.store(
                    &mut state,
                    &header.topic,
                    queue_id,
                    item.body,
                    item.flag,
                    item.properties,
                    0,
                    0,
                );
                first.get_or_insert(qo);
                ids.push(id);
            }
            (first.unwrap_or(0), ids.join(","))
        } else {
            let (_, qo, id) = self.store(
                &mut state,
                &header.topic,
                queue_id,
                &req.body,
                header.flag,
                &props,
                header.sys_flag,
                header.reconsume_times.unwrap_or(0),
            );
            (qo, id)
        };
        drop(state);
        self.arrived.notify_waiters();
        let uniq = MessageProperties::parse(&props)
            .get("UNIQ_KEY")
            .map(str::to_owned);
        RemotingCommand::success_to(req).with_header(&SendMessageResponseHeader {
            msg_id: ids,
            queue_id,
            queue_offset: first_offset,
            transaction_id: uniq,
            batch_uniq_id: None,
            recall_handle: None,
            msg_region: Some("DefaultRegion".into()),
            trace_on: Some(true),
        })
    }

    fn try_pull(
        &self,
        header: &PullMessageRequestHeader,
        filter: &TagFilter,
    ) -> (i32, PullMessageResponseHeader, Vec<u8>) {
        let state = self.state.lock();
        let queue = state.queues.get(&(header.topic.clone(), header.queue_id));
        let max = queue.map_or(0, Vec::len) as i64;
        let make = |next: i64| PullMessageResponseHeader {
            suggest_which_broker_id: 0,
            next_begin_offset: next,
            min_offset: 0,
            max_offset: max,
            offset_delta: None,
            topic_sys_flag: None,
            group_sys_flag: None,
            forbidden_type: None,
        };
        let offset = header.queue_offset;
        if offset > max || offset < 0 {
            return (
                response::PULL_OFFSET_MOVED,
                make(max.min(offset.max(0))),
                Vec::new(),
            );
        }
        if offset == max {
            return (response::PULL_NOT_FOUND, make(offset), Vec::new());
        }
        let mut body = Vec::new();
        let mut next = offset;
        let mut found = 0;
        for stored in queue.unwrap().iter().skip(offset as usize) {
            next += 1;
            if filter.matches_tag(stored.tags.as_deref()) {
                body.extend_from_slice(&stored.record);
                found += 1;
                if found >= header.max_msg_nums {
                    break;
                }
            }
        }
        drop(state);
        if found == 0 {
            (response::PULL_RETRY_IMMEDIATELY, make(next), Vec::new())
        } else {
            (response::SUCCESS, make(next), body)
        }
    }

    async fn handle_pull(&self, req: &RemotingCommand) -> RemotingCommand {
        let header: PullMessageRequestHeader = match req.decode_header() {
            Ok(h) => h,
            Err(e) => return RemotingCommand::error_to(req, response::SYSTEM_ERROR, e.to_string()),
        };
        self.state.lock().pulls += 1;
        let filter = TagFilter::parse(header.subscription.as_deref().unwrap_or("*"))
            .unwrap_or_else(|_| TagFilter::all());
        if header.sys_flag & 1 != 0 {
            self.state.lock().offsets.insert(
                (
                    header.consumer_group.clone(),
                    header.topic.clone(),
                    header.queue_id,
                ),
                header.commit_offset,
            );
        }
        let hold = Duration::from_millis(header.suspend_timeout_millis.clamp(0, 20_000) as u64);
        let deadline = tokio::time::Instant::now() + hold;
        loop {
            let arrived = self.arrived.notified();
            let (code, response_header, body) = self.try_pull(&header, &filter);
            if code == response::SUCCESS {
                let count = remoting::message::MessageIter::new(&body).count() as u64;
                self.state.lock().pulled_messages += count;
            }
            if code != response::PULL_NOT_FOUND
                || header.sys_flag & 2 == 0
                || tokio::time::Instant::now() >= deadline
            {
                return RemotingCommand::response_to(req, code)
                    .with_header(&response_header)
                    .with_body(body);
            }
            let _ = tokio::time::timeout_at(deadline, arrived).await;
        }
    }

    fn handle_send_back(&self, req: &RemotingCommand) -> RemotingCommand {
        let header: ConsumerSendMsgBackRequestHeader = match req.decode_header() {
            Ok(h) => h,
            Err(e) => return RemotingCommand::error_to(req, response::SYSTEM_ERROR, e.to_string()),
        };
        let mut state = self.state.lock();
        let Some((topic, queue_id, queue_offset)) =
            state.by_commit_offset.get(&header.offset).cloned()
        else {
            return RemotingCommand::error_to(
                req,
                response::SYSTEM_ERROR,
                "look message by offset failed",
            );
        };
        let record = state.queues[&(topic.clone(), queue_id)][queue_offset as usize]
            .record
            .clone();
        let view = MessageView::parse(&record).unwrap();
        let mut props = MessageProperties::parse(view.properties());
        if props.get("RETRY_TOPIC").is_none() {
            props.put("RETRY_TOPIC", view.topic()).unwrap();
        }
        props
            .put(
                "ORIGIN_MESSAGE_ID",
                header.origin_msg_id.as_deref().unwrap_or(""),
            )
            .ok();
        let max = header.max_reconsume_times.unwrap_or(16);
        let reconsume = view.reconsume_times();
        let target = if header.delay_level < 0 || reconsume >= max {
            format!("%DLQ%{}", header.group)
        } else {
            format!("%RETRY%{}", header.group)
        };
        state.topics.entry(target.clone()).or_insert(1);
        state
            .send_backs
            .push((header.group.clone(), header.delay_level));
        let body = view.body().to_vec();
        let encoded = props.encode();
        self.store(
            &mut state,
            &target,
            0,
            &body,
            view.flag(),
            &encoded,
            view.sys_flag(),
            reconsume + 1,
        );
        drop(state);
        self.arrived.notify_waiters();
        RemotingCommand::success_to(req)
    }

    async fn handle_heartbeat(
        &self,
        conn: &ConnectionHandle,
        req: &RemotingCommand,
    ) -> RemotingCommand {
        let Ok(heartbeat) = HeartbeatData::decode(&req.body) else {
            return RemotingCommand::error_to(req, response::SYSTEM_ERROR, "bad heartbeat");
        };
        let mut changed = Vec::new();
        {
            let mut state = self.state.lock();
            for consumer in &heartbeat.consumer_data_set {
                let members = state
                    .members
                    .entry(consumer.group_name.clone())
                    .or_default();
                if members
                    .insert(heartbeat.client_id.clone(), conn.clone())
                    .is_none()
                {
                    changed.push(consumer.group_name.clone());
                }
            }
        }
        for group in changed {
            self.notify_group(&group).await;
        }
        RemotingCommand::success_to(req)
    }

    async fn notify_group(&self, group: &str) {
        let conns: Vec<ConnectionHandle> = self
            .state
            .lock()
            .members
            .get(group)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        for conn in conns {
            let notify = RemotingCommand::request(request::NOTIFY_CONSUMER_IDS_CHANGED)
                .with_ext_field("consumerGroup", group);
            let _ = conn.invoke_oneway(notify, Duration::from_secs(1)).await;
        }
    }

    async fn handle_unregister(&self, req: &RemotingCommand) -> RemotingCommand {
        let Ok(header) = req.decode_header::<UnregisterClientRequestHeader>() else {
            return RemotingCommand::error_to(req, response::SYSTEM_ERROR, "bad header");
        };
        if let Some(group) = header.consumer_group {
            let removed = {
                let mut state = self.state.lock();
                let removed = state
                    .members
                    .get_mut(&group)
                    .is_some_and(|m| m.remove(&header.client_id).is_some());
                state
                    .locks
                    .retain(|(g, _), owner| !(g == &group && owner == &header.client_id));
                removed
            };
            if removed {
                self.notify_group(&group).await;
            }
        }
        RemotingCommand::success_to(req)
    }

    fn handle_lock(&self, req: &RemotingCommand, lock: bool) -> RemotingCommand {
        let Ok(body) = LockBatchRequestBody::decode(&req.body) else {
            return RemotingCommand::error_to(req, response::SYSTEM_ERROR, "bad body");
        };
        let mut state = self.state.lock();
        let mut ok = BTreeSet::new();
        for mq in body.mq_set {
            let key = (body.consumer_group.clone(), mq.clone());
            if lock {
                let owner = state
                    .locks
                    .entry(key)
                    .or_insert_with(|| body.client_id.clone());
                if *owner == body.client_id {
                    ok.insert(mq);
                }
            } else if state.locks.get(&key) == Some(&body.client_id) {
                state.locks.remove(&key);
            }
        }
        let response = RemotingCommand::success_to(req);
        if lock {
            response.with_body(LockBatchResponseBody { lock_ok_mq_set: ok }.encode())
        } else {
            response
        }
    }

    fn handle_query_message(&self, req: &RemotingCommand) -> RemotingCommand {
        let Ok(header) = req.decode_header::<QueryMessageRequestHeader>() else {
            return RemotingCommand::error_to(req, response::SYSTEM_ERROR, "bad header");
        };
        let state = self.state.lock();
        let mut body = Vec::new();
        for ((topic, _), stored) in &state.queues {
            if *topic != header.topic {
                continue;
            }
            for s in stored {
                let view = MessageView::parse(&s.record).unwrap();
                let keys_match = view
                    .keys()
                    .is_some_and(|k| k.split(' ').any(|k| k == header.key));
                if keys_match || view.uniq_key() == Some(header.key.as_str()) {
                    body.extend_from_slice(&s.record);
                }
            }
        }
        if body.is_empty() {
            return RemotingCommand::error_to(req, response::QUERY_NOT_FOUND, "not found");
        }
        RemotingCommand::success_to(req)
            .with_ext_field("indexLastUpdateTimestamp", "0")
            .with_ext_field("indexLastUpdatePhyoffset", "0")
            .with_body(body)
    }

    fn handle_view(&self, req: &RemotingCommand) -> RemotingCommand {
        let Ok(header) = req.decode_header::<ViewMessageRequestHeader>() else {
            return RemotingCommand::error_to(req, response::SYSTEM_ERROR, "bad header");
        };
        let state = self.state.lock();
        match state.by_commit_offset.get(&header.offset) {
            Some((topic, queue_id, queue_offset)) => {
                let record = state.queues[&(topic.clone(), *queue_id)][*queue_offset as usize]
                    .record
                    .clone();
                RemotingCommand::success_to(req).with_body(record)
            }
            None => RemotingCommand::error_to(
                req,
                response::SYSTEM_ERROR,
                "can not find message by the offset",
            ),
        }
    }

    fn queue_max(&self, topic: &str, queue_id: i32) -> i64 {
        self.queue_len(topic, queue_id) as i64
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn offset_response(req: &RemotingCommand, offset: i64) -> RemotingCommand {
    RemotingCommand::success_to(req).with_ext_field("offset", offset.to_string())
}

impl RequestProcessor for MiniCluster {
    async fn process(
        &self,
        conn: &ConnectionHandle,
        req: RemotingCommand,
    ) -> Option<RemotingCommand> {
        let bad = |e: remoting::header::HeaderError| {
            RemotingCommand::error_to(&req, response::SYSTEM_ERROR, e.to_string())
        };
        Some(match req.code {
            request::GET_ROUTEINFO_BY_TOPIC => {
                let topic = req.ext_field("topic").unwrap_or("").to_owned();
                match self.route(&topic) {
                    Some(route) => RemotingCommand::success_to(&req)
                        .with_body(route.encode(KeyQuoting::Quoted)),
                    None => RemotingCommand::error_to(
                        &req,
                        response::TOPIC_NOT_EXIST,
                        format!("No topic route info in name server for the topic: {topic}"),
                    ),
                }
            }
            request::SEND_MESSAGE | request::SEND_MESSAGE_V2 | request::SEND_BATCH_MESSAGE => {
                self.handle_send(&req)
            }
            request::PULL_MESSAGE => self.handle_pull(&req).await,
            request::HEART_BEAT => self.handle_heartbeat(conn, &req).await,
            request::UNREGISTER_CLIENT => self.handle_unregister(&req).await,
            request::GET_CONSUMER_LIST_BY_GROUP => {
                match req.decode_header::<GetConsumerListByGroupRequestHeader>() {
                    Ok(header) => {
                        let ids = self.members(&header.consumer_group);
                        if ids.is_empty() {
                            RemotingCommand::error_to(
                                &req,
                                response::SYSTEM_ERROR,
                                "no consumer for this group",
                            )
                        } else {
                            RemotingCommand::success_to(&req).with_body(
                                ConsumerListBody {
                                    consumer_id_list: ids,
                                }
                                .encode(),
                            )
                        }
                    }
                    Err(e) => bad(e),
                }
            }
            request::QUERY_CONSUMER_OFFSET => match req
                .decode_header::<QueryConsumerOffsetRequestHeader>()
            {
                Ok(h) => match self.committed_offset(&h.consumer_group, &h.topic, h.queue_id) {
                    Some(offset) => offset_response(&req, offset),
                    None => RemotingCommand::error_to(&req, response::QUERY_NOT_FOUND, "Not found"),
                },
                Err(e) => bad(e),
            },
            request::UPDATE_CONSUMER_OFFSET => {
                match req.decode_header::<UpdateConsumerOffsetRequestHeader>() {
                    Ok(h) => {
                        self.state
                            .lock()
                            .offsets
                            .insert((h.consumer_group, h.topic, h.queue_id), h.commit_offset);
                        RemotingCommand::success_to(&req)
                    }
                    Err(e) => bad(e),
                }
            }
            request::GET_MAX_OFFSET => match req.decode_header::<GetMaxOffsetRequestHeader>() {
                Ok(h) => offset_response(&req, self.queue_max(&h.topic, h.queue_id)),
                Err(e) => bad(e),
            },
            request::GET_MIN_OFFSET => match req.decode_header::<GetMinOffsetRequestHeader>() {
                Ok(_) => offset_response(&req, 0),
                Err(e) => bad(e),
            },
            request::SEARCH_OFFSET_BY_TIMESTAMP => {
                match req.decode_header::<SearchOffsetRequestHeader>() {
                    Ok(h) => offset_response(&req, self.queue_max(&h.topic, h.queue_id)),
                    Err(e) => bad(e),
                }
            }
            request::LOCK_BATCH_MQ => self.handle_lock(&req, true),
            request::UNLOCK_BATCH_MQ => self.handle_lock(&req, false),
            request::CONSUMER_SEND_MSG_BACK => self.handle_send_back(&req),
            request::QUERY_MESSAGE => self.handle_query_message(&req),
            request::VIEW_MESSAGE_BY_ID => self.handle_view(&req),
            request::GET_BROKER_CLUSTER_INFO => {
                let info = ClusterInfo {
                    broker_addr_table: [(BROKER_NAME.to_owned(), self.broker_data())]
                        .into_iter()
                        .collect(),
                    cluster_addr_table: [(
                        CLUSTER.to_owned(),
                        [BROKER_NAME.to_owned()].into_iter().collect(),
                    )]
                    .into_iter()
                    .collect(),
                };
                RemotingCommand::success_to(&req).with_body(info.encode(KeyQuoting::Unquoted))
            }
            request::GET_ALL_TOPIC_LIST_FROM_NAMESERVER => {
                let list = TopicList {
                    topic_list: self.state.lock().topics.keys().cloned().collect(),
                    broker_addr: None,
                };
                RemotingCommand::success_to(&req).with_body(serde_json::to_vec(&list).unwrap())
            }
            request::UPDATE_AND_CREATE_TOPIC => {
                match req.decode_header::<CreateTopicRequestHeader>() {
                    Ok(h) => {
                        self.create_topic(&h.topic, h.write_queue_nums);
                        RemotingCommand::success_to(&req)
                    }
                    Err(e) => bad(e),
                }
            }
            request::DELETE_TOPIC_IN_BROKER | request::DELETE_TOPIC_IN_NAMESRV => {
                match req.decode_header::<TopicRequestHeader>() {
                    Ok(h) => {
                        self.state.lock().topics.remove(&h.topic);
                        RemotingCommand::success_to(&req)
                    }
                    Err(e) => bad(e),
                }
            }
            request::GET_TOPIC_STATS_INFO => match req.decode_header::<TopicRequestHeader>() {
                Ok(h) => {
                    let nums = self.state.lock().topics.get(&h.topic).copied();
                    match nums {
                        None => {
                            RemotingCommand::error_to(&req, response::TOPIC_NOT_EXIST, "no topic")
                        }
                        Some(nums) => {
                            let table = TopicStatsTable {
                                offset_table: (0..nums)
                                    .map(|q| {
                                        (
                                            MessageQueue::new(&h.topic, BROKER_NAME, q),
                                            TopicOffset {
                                                last_update_timestamp: 0,
                                                max_offset: self.queue_max(&h.topic, q),
                                                min_offset: 0,
                                            },
                                        )
                                    })
                                    .collect(),
                                topic_put_tps: 0.0,
                            };
                            RemotingCommand::success_to(&req).with_body(table.encode())
                        }
                    }
                }
                Err(e) => bad(e),
            },
            request::GET_CONSUME_STATS => match req.decode_header::<GetConsumeStatsRequestHeader>()
            {
                Ok(h) => {
                    let state = self.state.lock();
                    let mut table = BTreeMap::new();
                    for ((group, topic, queue_id), offset) in &state.offsets {
                        if *group == h.consumer_group
                            && h.topic.as_ref().is_none_or(|t| t.is_empty() || t == topic)
                        {
                            let max = state
                                .queues
                                .get(&(topic.clone(), *queue_id))
                                .map_or(0, Vec::len) as i64;
                            table.insert(
                                MessageQueue::new(topic, BROKER_NAME, *queue_id),
                                OffsetWrapper {
                                    broker_offset: max,
                                    consumer_offset: *offset,
                                    last_timestamp: 0,
                                    pull_offset: *offset,
                                },
                            );
                        }
                    }
                    RemotingCommand::success_to(&req).with_body(
                        ConsumeStats {
                            offset_table: table,
                            consume_tps: 0.0,
                        }
                        .encode(),
                    )
                }
                Err(e) => bad(e),
            },
            request::GET_BROKER_RUNTIME_INFO => {
                let table = KvTable {
                    table: [
                        ("brokerVersionDesc".to_owned(), "V5_3_3".to_owned()),
                        ("putTps".to_owned(), "1.5 1.0 1.0".to_owned()),
                        ("getTransferedTps".to_owned(), "2.0 1.0 1.0".to_owned()),
                    ]
                    .into_iter()
                    .collect(),
                };
                RemotingCommand::success_to(&req).with_body(table.encode())
            }
            _ => RemotingCommand::not_supported_to(&req),
        })
    }

    fn connection_closed(&self, conn: &ConnectionHandle) {
        let mut state = self.state.lock();
        for members in state.members.values_mut() {
            members.retain(|_, c| c.id() != conn.id());
        }
    }
}

/// Waits (bounded) until `check` holds.
pub async fn eventually<F: FnMut() -> bool>(what: &str, mut check: F) {
    let deadline = tokio::time::Instant::now() + TEST_WAIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn body(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}
