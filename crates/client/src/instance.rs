//! The shared core of a client (RocketMQ's `MQClientInstance`): one transport, the route
//! cache and broker address table, and the background tasks that keep them fresh and keep
//! every broker hearing from this client.
//!
//! Producers, consumers and the admin API each hold a [`ClientInstance`]; several may
//! share one. The background tasks hold only a weak reference, so dropping the last
//! handle (or calling [`ClientInstance::shutdown`]) stops them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use dashmap::DashMap;
use message::properties::keys;
use message::{MessageView, UniqIdGenerator};
use parking_lot::{Mutex, RwLock};
use remoting::body::route::MASTER_ID;
use remoting::body::running::prop;
use remoting::body::{
    ConsumerData, ConsumerRunningInfo, GetConsumerStatusBody, HeartbeatData, MessageQueue,
    ProducerData, ResetOffsetBody, TopicRouteData,
};
use remoting::client::RemotingClient;
use remoting::code::request;
use remoting::code::response;
use remoting::command::RemotingCommand;
use remoting::connection::{ConnectionHandle, RequestProcessor};
use remoting::header::client::{
    GetConsumerRunningInfoRequestHeader, GetConsumerStatusRequestHeader,
    NotifyConsumerIdsChangedRequestHeader, ResetOffsetRequestHeader,
};
use remoting::header::reply::ReplyMessageRequestHeader;
use remoting::header::CommandHeader;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::ClientOptions;
use crate::error::{ClientError, Result};
use crate::message::ReceivedMessage;
use crate::replies::PendingReplies;
use crate::route::TopicRoute;
use crate::transaction_check::{answer_check, TransactionChecker};

/// How a consumer group appears in heartbeats, the signal that asks it to rebalance, and
/// what it tells operators about itself.
#[derive(Clone)]
pub(crate) struct ConsumerEntry {
    pub data: ConsumerData,
    pub rebalance: Arc<Notify>,
    /// `None`: only what the heartbeat says is reported.
    pub report: Option<Arc<dyn ConsumerReport>>,
}

/// A consumer's answers to the diagnostics brokers relay from `mqadmin`:
/// GET_CONSUMER_RUNNING_INFO (307) and GET_CONSUMER_STATUS_FROM_CLIENT (221).
pub(crate) trait ConsumerReport: Send + Sync {
    /// Its properties, subscriptions and assigned queues (the caller adds what every
    /// consumer shares: name servers, consume type, client version).
    fn running_info(&self) -> ConsumerRunningInfo;
    /// The offsets it holds for the queues of `topic` it consumes.
    fn offsets(&self, topic: &str) -> BTreeMap<MessageQueue, i64>;
    /// RESET_CONSUMER_CLIENT_OFFSET (220): the broker moved the group's offsets of
    /// `topic` (`mqadmin resetOffsetByTime`); consumption goes on from them.
    fn reset_offsets(&self, topic: &str, offsets: BTreeMap<MessageQueue, i64>);
}

type ConsumerTable = DashMap<String, ConsumerEntry>;
/// Producer group → what answers the brokers' transaction checks for it.
type CheckerTable = DashMap<String, Arc<dyn TransactionChecker>>;

/// The shared core; cheap to clone.
#[derive(Clone)]
pub struct ClientInstance {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) options: ClientOptions,
    pub(crate) client_id: String,
    pub(crate) remoting: RemotingClient,
    pub(crate) uniq_ids: UniqIdGenerator,
    namesrv_cursor: AtomicUsize,
    routes: RwLock<HashMap<String, Arc<TopicRoute>>>,
    /// Broker name → broker id → address, merged from every route fetched.
    broker_addrs: RwLock<HashMap<String, BTreeMap<i64, String>>>,
    /// When each topic's route was last fetched (for rate-limiting forced refreshes).
    refreshed_at: Mutex<HashMap<String, Instant>>,
    producer_groups: Mutex<HashMap<String, usize>>,
    consumers: Arc<ConsumerTable>,
    /// Requests of this client's producers waiting for replies.
    pub(crate) pending_replies: Arc<PendingReplies>,
    checkers: Arc<CheckerTable>,
    heartbeat_now: Arc<Notify>,
    stop: CancellationToken,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.cancel();
        self.remoting.shutdown();
    }
}

impl ClientInstance {
    /// Starts a client core for `options`. Needs a tokio runtime (it spawns the route and
    /// heartbeat tasks).
    pub fn new(options: ClientOptions) -> Result<Self> {
        options.validate()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            ClientError::InvalidArgument("a client must be created inside a tokio runtime".into())
        })?;
        let consumers: Arc<ConsumerTable> = Arc::new(DashMap::new());
        let pending_replies = Arc::new(PendingReplies::default());
        let checkers: Arc<CheckerTable> = Arc::new(DashMap::new());
        let handler = Arc::new(BrokerRequestHandler {
            consumers: Arc::clone(&consumers),
            pending_replies: Arc::clone(&pending_replies),
            checkers: Arc::clone(&checkers),
            namesrv_addrs: options.namesrv_addrs.join(";"),
        });
        let remoting = RemotingClient::with_request_handler(options.remoting.clone(), handler);
        let inner = Arc::new(Inner {
            client_id: options.client_id(),
            uniq_ids: UniqIdGenerator::new(options.local_ip()),
            options,
            remoting,
            namesrv_cursor: AtomicUsize::new(0),
            routes: RwLock::new(HashMap::new()),
            broker_addrs: RwLock::new(HashMap::new()),
            refreshed_at: Mutex::new(HashMap::new()),
            producer_groups: Mutex::new(HashMap::new()),
            consumers,
            pending_replies,
            checkers,
            heartbeat_now: Arc::new(Notify::new()),
            stop: CancellationToken::new(),
        });
        runtime.spawn(route_refresh_loop(
            Arc::downgrade(&inner),
            inner.stop.clone(),
        ));
        runtime.spawn(heartbeat_loop(
            Arc::downgrade(&inner),
            Arc::clone(&inner.heartbeat_now),
            inner.stop.clone(),
        ));
        info!(client_id = %inner.client_id, "client instance started");
        Ok(ClientInstance { inner })
    }

    /// The id brokers know this client by (`ip@instance`).
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// Stops the background tasks and closes every connection. Producers and consumers
    /// using this instance fail afterwards with [`ClientError::Shutdown`].
    pub fn shutdown(&self) {
        self.inner.stop.cancel();
        self.inner.remoting.shutdown();
    }

    pub(crate) fn is_shut_down(&self) -> bool {
        self.inner.stop.is_cancelled()
    }

    pub(crate) fn stopped(&self) -> CancellationToken {
        self.inner.stop.clone()
    }

    // ---- routes -------------------------------------------------------------------

    /// The cached route of `topic`, fetched from a name server when not cached.
    pub async fn route(&self, topic: &str) -> Result<Arc<TopicRoute>> {
        if let Some(route) = self.cached_route(topic) {
            return Ok(route);
        }
        self.refresh_route(topic).await
    }

    pub(crate) fn cached_route(&self, topic: &str) -> Option<Arc<TopicRoute>> {
        self.inner.routes.read().get(topic).cloned()
    }

    /// Fetches `topic`'s route from a name server now and caches it.
    pub async fn refresh_route(&self, topic: &str) -> Result<Arc<TopicRoute>> {
        let data = self
            .fetch_route(topic)
            .await?
            .ok_or_else(|| ClientError::NoRoute {
                topic: topic.to_owned(),
                reason: "the name servers do not know it".into(),
            })?;
        Ok(self.install_route(topic, TopicRoute::new(topic, data)))
    }

    /// Refreshes `topic`'s route unless that happened very recently; failures are logged
    /// (the caller is already handling a failure).
    pub(crate) async fn refresh_route_soon(&self, topic: &str) {
        let min_interval = self.inner.options.min_route_refresh_interval;
        let recently = self
            .inner
            .refreshed_at
            .lock()
            .get(topic)
            .is_some_and(|at| at.elapsed() < min_interval);
        if recently {
            return;
        }
        if let Err(error) = self.refresh_route(topic).await {
            debug!(topic, %error, "route refresh after a failure did not succeed");
        }
    }

    /// Caches a route (and the broker addresses in it) and returns it.
    pub(crate) fn install_route(&self, topic: &str, route: TopicRoute) -> Arc<TopicRoute> {
        let mut new_addr = false;
        {
            let mut addrs = self.inner.broker_addrs.write();
            for broker in &route.data.broker_datas {
                let entry = addrs.entry(broker.broker_name.clone()).or_default();
                if broker
                    .broker_addrs
                    .values()
                    .any(|a| !entry.values().any(|e| e == a))
                {
                    new_addr = true;
                }
                *entry = broker.broker_addrs.clone();
            }
        }
        let route = Arc::new(route);
        let changed = {
            let mut routes = self.inner.routes.write();
            let old = routes.insert(topic.to_owned(), Arc::clone(&route));
            old.is_none_or(|old| old.data != route.data)
        };
        self.inner
            .refreshed_at
            .lock()
            .insert(topic.to_owned(), Instant::now());
        if changed {
            debug!(topic, queues = route.publish_queues.len(), "route updated");
        }
        if new_addr {
            // A broker we have not heartbeated yet (e.g. a new leader) should learn about
            // our groups before we send it anything that depends on them.
            self.inner.heartbeat_now.notify_one();
        }
        route
    }

    /// Fetches a route from the name servers: `None` when they do not know the topic.
    pub(crate) async fn fetch_route(&self, topic: &str) -> Result<Option<TopicRouteData>> {
        let header = remoting::header::namesrv::GetRouteInfoRequestHeader {
            topic: topic.to_owned(),
            accept_standard_json_only: Some(true),
        };
        let result = self
            .invoke_namesrv(
                RemotingCommand::request(request::GET_ROUTEINFO_BY_TOPIC).with_header(&header),
            )
            .await;
        match result {
            Ok((addr, response)) => TopicRouteData::decode(&response.body)
                .map(Some)
                .map_err(|err| ClientError::malformed(&addr, err)),
            Err(error)
                if error.response_code() == Some(remoting::code::response::TOPIC_NOT_EXIST) =>
            {
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// Topics with a cached route.
    pub(crate) fn cached_topics(&self) -> Vec<String> {
        self.inner.routes.read().keys().cloned().collect()
    }

    // ---- broker addresses ---------------------------------------------------------

    /// The master (id 0) address of `broker_name`.
    pub fn master_addr(&self, broker_name: &str) -> Option<String> {
        self.inner
            .broker_addrs
            .read()
            .get(broker_name)
            .and_then(|addrs| addrs.get(&MASTER_ID).cloned())
    }

    /// The address to pull from: the suggested broker id if known, else the master, else
    /// any member of the group (a follower may redirect or refuse; the caller retries).
    pub(crate) fn pull_addr(&self, broker_name: &str, suggested_id: i64) -> Option<String> {
        let addrs = self.inner.broker_addrs.read();
        let group = addrs.get(broker_name)?;
        group
            .get(&suggested_id)
            .or_else(|| group.get(&MASTER_ID))
            .or_else(|| group.values().next())
            .cloned()
    }

    /// Every known address of every broker.
    pub(crate) fn all_broker_addrs(&self, masters_only: bool) -> Vec<String> {
        known_addrs(&self.inner, masters_only)
    }

    // ---- registrations ------------------------------------------------------------

    pub(crate) fn register_producer(&self, group: &str) {
        *self
            .inner
            .producer_groups
            .lock()
            .entry(group.to_owned())
            .or_default() += 1;
    }

    /// Makes `checker` answer the brokers' transaction checks for producer `group`.
    pub(crate) fn register_transaction_checker(
        &self,
        group: &str,
        checker: Arc<dyn TransactionChecker>,
    ) {
        self.inner.checkers.insert(group.to_owned(), checker);
    }

    pub(crate) fn unregister_transaction_checker(&self, group: &str) {
        self.inner.checkers.remove(group);
    }

    pub(crate) fn unregister_producer(&self, group: &str) {
        let mut groups = self.inner.producer_groups.lock();
        if let Some(count) = groups.get_mut(group) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                groups.remove(group);
            }
        }
    }

    /// Registers a consumer group for heartbeats; one instance serves each group once
    /// (brokers know a client by its id, so two members of one group need two instances).
    pub(crate) fn register_consumer(&self, entry: ConsumerEntry) -> Result<()> {
        use dashmap::mapref::entry::Entry;
        match self.inner.consumers.entry(entry.data.group_name.clone()) {
            Entry::Occupied(_) => Err(ClientError::InvalidArgument(format!(
                "consumer group `{}` is already registered on this client instance",
                entry.data.group_name
            ))),
            Entry::Vacant(slot) => {
                slot.insert(entry);
                Ok(())
            }
        }
    }

    pub(crate) fn unregister_consumer(&self, group: &str) {
        self.inner.consumers.remove(group);
    }

    /// Sends a heartbeat to every broker now, and waits for the answers.
    pub async fn send_heartbeat_now(&self) {
        send_heartbeats(&self.inner).await;
    }

    #[cfg(test)]
    pub(crate) fn heartbeat_data(&self) -> HeartbeatData {
        heartbeat_data(&self.inner)
    }
}

fn heartbeat_data(inner: &Inner) -> HeartbeatData {
    let mut producer_data_set: Vec<ProducerData> = inner
        .producer_groups
        .lock()
        .keys()
        .map(|group| ProducerData {
            group_name: group.clone(),
        })
        .collect();
    producer_data_set.sort_by(|a, b| a.group_name.cmp(&b.group_name));
    let mut consumer_data_set: Vec<ConsumerData> = inner
        .consumers
        .iter()
        .map(|entry| entry.value().data.clone())
        .collect();
    consumer_data_set.sort_by(|a, b| a.group_name.cmp(&b.group_name));
    HeartbeatData {
        client_id: inner.client_id.clone(),
        producer_data_set,
        consumer_data_set,
        heartbeat_fingerprint: 0,
        without_sub: false,
    }
}

async fn send_heartbeats(inner: &Inner) {
    let data = heartbeat_data(inner);
    if data.producer_data_set.is_empty() && data.consumer_data_set.is_empty() {
        return;
    }
    // Producers only need masters; consumers may pull from any member.
    let targets = known_addrs(inner, data.consumer_data_set.is_empty());
    let body = data.encode();
    let timeout = inner.options.request_timeout;
    let calls = targets.iter().map(|addr| {
        let request = RemotingCommand::request(request::HEART_BEAT).with_body(body.clone());
        async move {
            match inner.remoting.invoke(addr, request, timeout).await {
                Ok(response) if response.is_success() => {}
                Ok(response) => warn!(%addr, code = response.code, remark = ?response.remark, "heartbeat refused"),
                Err(error) => debug!(%addr, %error, "heartbeat failed"),
            }
        }
    });
    futures::future::join_all(calls).await;
}

/// Every address in the broker table, sorted, each once.
fn known_addrs(inner: &Inner, masters_only: bool) -> Vec<String> {
    let addrs = inner.broker_addrs.read();
    let unique: BTreeSet<&String> = addrs
        .values()
        .flat_map(|group| group.iter())
        .filter(|(id, _)| !masters_only || **id == MASTER_ID)
        .map(|(_, addr)| addr)
        .collect();
    unique.into_iter().cloned().collect()
}

async fn heartbeat_loop(weak: Weak<Inner>, wake: Arc<Notify>, stop: CancellationToken) {
    let Some(interval) = weak.upgrade().map(|i| i.options.heartbeat_interval) else {
        return;
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
            _ = wake.notified() => {}
        }
        let Some(inner) = weak.upgrade() else { return };
        send_heartbeats(&inner).await;
    }
}

async fn route_refresh_loop(weak: Weak<Inner>, stop: CancellationToken) {
    let Some(interval) = weak.upgrade().map(|i| i.options.poll_name_server_interval) else {
        return;
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let Some(inner) = weak.upgrade() else { return };
        let instance = ClientInstance { inner };
        for topic in instance.cached_topics() {
            if let Err(error) = instance.refresh_route(&topic).await {
                debug!(%topic, %error, "periodic route refresh failed");
            }
        }
    }
}

/// The request's header, or the SYSTEM_ERROR answer saying why it does not decode.
fn header_of<H: CommandHeader>(request: &RemotingCommand) -> Result<H, Box<RemotingCommand>> {
    request.decode_header::<H>().map_err(|error| {
        Box::new(RemotingCommand::error_to(
            request,
            response::SYSTEM_ERROR,
            error.to_string(),
        ))
    })
}

/// Answers requests brokers send to this client.
struct BrokerRequestHandler {
    consumers: Arc<ConsumerTable>,
    pending_replies: Arc<PendingReplies>,
    checkers: Arc<CheckerTable>,
    /// As Java reports them in a consumer's running info.
    namesrv_addrs: String,
}

impl BrokerRequestHandler {
    /// PUSH_REPLY_MESSAGE_TO_CLIENT (326): a reply to one of this client's requests. Taken
    /// (SUCCESS) even when its request already timed out, as Java clients do: the broker
    /// delivered it.
    fn reply_pushed(&self, request: &RemotingCommand) -> RemotingCommand {
        let header = match header_of::<ReplyMessageRequestHeader>(request) {
            Ok(header) => header,
            Err(answer) => return *answer,
        };
        match ReceivedMessage::from_reply_push(&header, &request.body) {
            Ok(reply) => {
                self.pending_replies.deliver(reply);
                RemotingCommand::success_to(request)
            }
            Err(error) => {
                RemotingCommand::error_to(request, response::SYSTEM_ERROR, error.to_string())
            }
        }
    }

    /// GET_CONSUMER_RUNNING_INFO (307), relayed by a broker for `mqadmin consumerStatus`.
    fn running_info(&self, request: &RemotingCommand) -> RemotingCommand {
        let header = match header_of::<GetConsumerRunningInfoRequestHeader>(request) {
            Ok(header) => header,
            Err(answer) => return *answer,
        };
        let Some(entry) = self
            .consumers
            .get(&header.consumer_group)
            .map(|e| e.clone())
        else {
            return RemotingCommand::error_to(
                request,
                response::SYSTEM_ERROR,
                format!(
                    "The Consumer Group <{}> not exist in this consumer",
                    header.consumer_group
                ),
            );
        };
        let mut info = match &entry.report {
            Some(report) => report.running_info(),
            None => ConsumerRunningInfo {
                subscription_set: entry.data.subscription_data_set.clone(),
                ..ConsumerRunningInfo::default()
            },
        };
        let mut put = |key: &str, value: String| {
            info.properties.insert(key.to_owned(), value);
        };
        put(prop::NAMESERVER_ADDR, self.namesrv_addrs.clone());
        put(
            prop::CONSUME_TYPE,
            entry.data.consume_type.java_name().to_owned(),
        );
        put(
            prop::CLIENT_VERSION,
            remoting::command::version::desc(remoting::command::version::CURRENT),
        );
        // `jstackEnable` asks for a JVM thread dump, which a Rust client does not have.
        RemotingCommand::success_to(request).with_body(info.encode())
    }

    /// RESET_CONSUMER_CLIENT_OFFSET (220): the broker has reset the group's offsets.
    fn reset_offsets(&self, request: &RemotingCommand) {
        let header = match request.decode_header::<ResetOffsetRequestHeader>() {
            Ok(header) => header,
            Err(error) => return debug!(%error, "bad RESET_CONSUMER_CLIENT_OFFSET"),
        };
        let body = match ResetOffsetBody::decode(&request.body) {
            Ok(body) => body,
            Err(error) => return debug!(%error, "unreadable RESET_CONSUMER_CLIENT_OFFSET body"),
        };
        let report = self
            .consumers
            .get(&header.group)
            .and_then(|entry| entry.report.clone());
        if let Some(report) = report {
            info!(group = %header.group, topic = %header.topic, "broker reset the group's offsets");
            report.reset_offsets(&header.topic, body.offset_table);
        }
    }

    /// GET_CONSUMER_STATUS_FROM_CLIENT (221): this member's offsets of a topic, for
    /// INVOKE_BROKER_TO_GET_CONSUMER_STATUS (`mqadmin getConsumerStatus`).
    fn consumer_status(&self, request: &RemotingCommand) -> RemotingCommand {
        let header = match header_of::<GetConsumerStatusRequestHeader>(request) {
            Ok(header) => header,
            Err(answer) => return *answer,
        };
        let report = self
            .consumers
            .get(&header.group)
            .and_then(|entry| entry.report.clone());
        let body = GetConsumerStatusBody {
            message_queue_table: report.map(|r| r.offsets(&header.topic)).unwrap_or_default(),
            consumer_table: BTreeMap::new(),
        };
        RemotingCommand::success_to(request).with_body(body.encode())
    }
}

impl RequestProcessor for BrokerRequestHandler {
    async fn process(
        &self,
        conn: &ConnectionHandle,
        request: RemotingCommand,
    ) -> Option<RemotingCommand> {
        match request.code {
            request::CHECK_TRANSACTION_STATE => {
                let group = MessageView::parse(&request.body)
                    .ok()
                    .and_then(|view| view.property(keys::PGROUP).map(str::to_owned))
                    .unwrap_or_default();
                let checker = self.checkers.get(&group).map(|c| Arc::clone(c.value()));
                answer_check(checker, conn, &request);
                // One-way from the broker; the answer is a request of its own.
                None
            }
            request::NOTIFY_CONSUMER_IDS_CHANGED => {
                match request.decode_header::<NotifyConsumerIdsChangedRequestHeader>() {
                    Ok(header) => {
                        if let Some(entry) = self.consumers.get(&header.consumer_group) {
                            debug!(group = %header.consumer_group, "broker says the group changed");
                            entry.rebalance.notify_one();
                        }
                    }
                    Err(error) => debug!(%error, "bad NOTIFY_CONSUMER_IDS_CHANGED"),
                }
                // One-way from the broker: the server loop sends nothing back.
                Some(RemotingCommand::success_to(&request))
            }
            request::RESET_CONSUMER_CLIENT_OFFSET => {
                self.reset_offsets(&request);
                // One-way from the broker: the server loop sends nothing back.
                Some(RemotingCommand::success_to(&request))
            }
            request::GET_CONSUMER_RUNNING_INFO => Some(self.running_info(&request)),
            request::PUSH_REPLY_MESSAGE_TO_CLIENT => Some(self.reply_pushed(&request)),
            request::GET_CONSUMER_STATUS_FROM_CLIENT => Some(self.consumer_status(&request)),
            _ => Some(RemotingCommand::not_supported_to(&request)),
        }
    }
}

impl ClientInstance {
    /// Sends `request` to the name servers, starting with the last one that worked and
    /// moving on after transport failures. A refusal (non-success code) is returned as is.
    pub(crate) async fn invoke_namesrv(
        &self,
        request: RemotingCommand,
    ) -> Result<(String, RemotingCommand)> {
        let addrs = &self.inner.options.namesrv_addrs;
        let start = self.inner.namesrv_cursor.load(Ordering::Relaxed);
        let mut last_error = None;
        for step in 0..addrs.len() {
            let index = (start + step) % addrs.len();
            let Some(addr) = addrs.get(index) else {
                continue;
            };
            let mut attempt = request.clone();
            attempt.opaque = remoting::command::next_opaque();
            match self
                .invoke_ok(addr, attempt, self.inner.options.request_timeout)
                .await
            {
                Ok(response) => {
                    self.inner.namesrv_cursor.store(index, Ordering::Relaxed);
                    return Ok((addr.clone(), response));
                }
                Err(error @ ClientError::Broker { .. }) => return Err(error),
                Err(error) => {
                    debug!(%addr, %error, "name server unreachable; trying the next");
                    last_error = Some(error);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| {
            ClientError::InvalidArgument("no name server address configured".into())
        }))
    }

    /// Sends `request` to `addr` and returns the response whatever its code.
    pub(crate) async fn invoke(
        &self,
        addr: &str,
        request: RemotingCommand,
        timeout: Duration,
    ) -> Result<RemotingCommand> {
        if self.is_shut_down() {
            return Err(ClientError::Shutdown);
        }
        self.inner
            .remoting
            .invoke(addr, request, timeout)
            .await
            .map_err(|source| ClientError::from_remoting(addr, source))
    }

    /// Sends `request` to `addr`; a non-success code becomes [`ClientError::Broker`].
    pub(crate) async fn invoke_ok(
        &self,
        addr: &str,
        request: RemotingCommand,
        timeout: Duration,
    ) -> Result<RemotingCommand> {
        let response = self.invoke(addr, request, timeout).await?;
        if response.is_success() {
            Ok(response)
        } else {
            Err(broker_error(addr, &response))
        }
    }

    pub(crate) async fn invoke_oneway(
        &self,
        addr: &str,
        request: RemotingCommand,
        timeout: Duration,
    ) -> Result<()> {
        if self.is_shut_down() {
            return Err(ClientError::Shutdown);
        }
        self.inner
            .remoting
            .invoke_oneway(addr, request.into_oneway(), timeout)
            .await
            .map_err(|source| ClientError::from_remoting(addr, source))
    }
}

pub(crate) fn broker_error(addr: &str, response: &RemotingCommand) -> ClientError {
    ClientError::Broker {
        addr: addr.to_owned(),
        code: response.code,
        remark: response.remark.clone().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use remoting::body::{BrokerData, QueueData};

    fn data(master: &str) -> TopicRouteData {
        TopicRouteData {
            queue_datas: vec![QueueData {
                broker_name: "g".into(),
                read_queue_nums: 2,
                write_queue_nums: 2,
                perm: 6,
                topic_sys_flag: 0,
            }],
            broker_datas: vec![BrokerData {
                cluster: "C".into(),
                broker_name: "g".into(),
                broker_addrs: [(0, master.to_owned()), (2, "127.0.0.1:3".to_owned())]
                    .into_iter()
                    .collect(),
                enable_acting_master: false,
                zone_name: None,
            }],
            ..TopicRouteData::default()
        }
    }

    #[tokio::test]
    async fn installing_a_route_replaces_the_groups_addresses() {
        let instance = ClientInstance::new(ClientOptions::new("127.0.0.1:1")).unwrap();
        instance.install_route("T", TopicRoute::new("T", data("127.0.0.1:1")));
        assert_eq!(instance.master_addr("g").as_deref(), Some("127.0.0.1:1"));
        assert_eq!(instance.pull_addr("g", 2).as_deref(), Some("127.0.0.1:3"));
        assert_eq!(instance.pull_addr("g", 7).as_deref(), Some("127.0.0.1:1"));
        // A failover: the same group has a new master.
        instance.install_route("T", TopicRoute::new("T", data("127.0.0.1:2")));
        assert_eq!(instance.master_addr("g").as_deref(), Some("127.0.0.1:2"));
        assert_eq!(instance.all_broker_addrs(true), ["127.0.0.1:2".to_owned()]);
        assert_eq!(instance.all_broker_addrs(false).len(), 2);
        assert!(instance.cached_route("T").is_some());
        instance.shutdown();
    }

    #[tokio::test]
    async fn a_group_registers_once_per_instance() {
        let instance = ClientInstance::new(ClientOptions::new("127.0.0.1:1")).unwrap();
        let entry = ConsumerEntry {
            data: ConsumerData {
                group_name: "CG".into(),
                consume_type: remoting::body::ConsumeType::ConsumePassively,
                message_model: remoting::body::MessageModel::Clustering,
                consume_from_where: remoting::body::ConsumeFromWhere::ConsumeFromLastOffset,
                subscription_data_set: vec![],
                unit_mode: false,
            },
            rebalance: Arc::new(Notify::new()),
            report: None,
        };
        instance.register_consumer(entry.clone()).unwrap();
        assert!(instance.register_consumer(entry).is_err());
        instance.register_producer("PG");
        let heartbeat = instance.heartbeat_data();
        assert_eq!(heartbeat.consumer_data_set.len(), 1);
        assert_eq!(heartbeat.producer_data_set[0].group_name, "PG");
        assert_eq!(heartbeat.client_id, instance.client_id());
        instance.unregister_consumer("CG");
        instance.unregister_producer("PG");
        assert!(instance.heartbeat_data().consumer_data_set.is_empty());
    }

    #[test]
    fn creating_outside_a_runtime_is_an_error_not_a_panic() {
        assert!(ClientInstance::new(ClientOptions::new("127.0.0.1:1")).is_err());
    }
}
