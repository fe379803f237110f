//! The name server's request handling: decode, apply to the registry, answer as RocketMQ's
//! name server does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use access::files::AclFiles;
use access::guard::{AclGuard, RequestCheck};
use parking_lot::Mutex;
use remoting::body::{
    ClusterInfo, DataVersion, KeyQuoting, KvTable, RegisterBrokerBody, TopicList,
};
use remoting::code::{request, response};
use remoting::command::RemotingCommand;
use remoting::connection::{ConnectionHandle, RequestProcessor};
use remoting::header::namesrv::{
    AddWritePermOfBrokerRequestHeader, AddWritePermOfBrokerResponseHeader,
    DeleteKvConfigRequestHeader, DeleteTopicFromNamesrvRequestHeader, GetKvConfigRequestHeader,
    GetKvConfigResponseHeader, GetKvListByNamespaceRequestHeader, GetRouteInfoRequestHeader,
    PutKvConfigRequestHeader, QueryDataVersionResponseHeader, RegisterBrokerRequestHeader,
    RegisterBrokerResponseHeader, UnRegisterBrokerRequestHeader,
    WipeWritePermOfBrokerRequestHeader, WipeWritePermOfBrokerResponseHeader,
};
use remoting::server::{RemotingServer, ServerConfig};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::NamesrvConfig;
use crate::kvconfig::{KvConfig, KvConfigError};
use crate::registry::{RegisteredTopic, Registration, Registry, DEFAULT_BROKER_TIMEOUT};

/// The KV namespace RocketMQ keeps ordered-topic layouts (`orderTopicConf`) in.
pub const ORDER_TOPIC_CONFIG_NAMESPACE: &str = "ORDER_TOPIC_CONFIG";
/// A broker's own heartbeat timeout is honoured within these bounds.
const MIN_BROKER_TIMEOUT: Duration = Duration::from_secs(1);
const MAX_BROKER_TIMEOUT: Duration = Duration::from_secs(600);

/// The state behind the name server's port.
pub struct NameServer {
    registry: Mutex<Registry>,
    kv: Arc<KvConfig>,
    config: NamesrvConfig,
}

impl NameServer {
    /// The state of a name server with `kv` as its KV config (loaded from
    /// `config.kv_config_path` by [`start`]).
    pub fn new(config: NamesrvConfig, kv: KvConfig) -> Arc<NameServer> {
        Arc::new(NameServer {
            registry: Mutex::new(Registry::new()),
            kv: Arc::new(kv),
            config,
        })
    }

    /// What the registry holds now.
    pub fn census(&self) -> crate::registry::RegistryCensus {
        self.registry.lock().census()
    }

    fn register_broker(&self, conn: &ConnectionHandle, req: &RemotingCommand) -> RemotingCommand {
        let header = match req.decode_header::<RegisterBrokerRequestHeader>() {
            Ok(h) => h,
            Err(e) => return RemotingCommand::error_to(req, response::SYSTEM_ERROR, e.to_string()),
        };
        if header.body_crc32 != 0 {
            let crc = (crc32fast::hash(&req.body) & 0x7FFF_FFFF) as i32;
            if crc != header.body_crc32 {
                return RemotingCommand::error_to(req, response::SYSTEM_ERROR, "crc32 not match");
            }
        }
        if header.compressed {
            return RemotingCommand::error_to(
                req,
                response::SYSTEM_ERROR,
                "compressed REGISTER_BROKER bodies are not supported; send JSON",
            );
        }
        let (topics, data_version) = if req.body.is_empty() {
            (Vec::new(), DataVersion::default())
        } else {
            match RegisterBrokerBody::decode(&req.body) {
                Ok(body) => {
                    let wrapper = body.topic_config_serialize_wrapper;
                    let topics = wrapper
                        .topic_config_table
                        .into_values()
                        .map(|tc| RegisteredTopic {
                            queues: remoting::body::QueueData {
                                broker_name: header.broker_name.clone(),
                                read_queue_nums: tc.read_queue_nums,
                                write_queue_nums: tc.write_queue_nums,
                                perm: tc.perm,
                                topic_sys_flag: tc.topic_sys_flag,
                            },
                            name: tc.topic_name,
                        })
                        .collect();
                    (topics, wrapper.data_version)
                }
                Err(e) => {
                    return RemotingCommand::error_to(
                        req,
                        response::SYSTEM_ERROR,
                        format!("bad REGISTER_BROKER body: {e}"),
                    )
                }
            }
        };
        let timeout = header
            .heartbeat_timeout_millis
            .and_then(|ms| u64::try_from(ms).ok())
            .map(Duration::from_millis)
            .unwrap_or(DEFAULT_BROKER_TIMEOUT)
            .clamp(MIN_BROKER_TIMEOUT, MAX_BROKER_TIMEOUT);
        let registration = Registration {
            cluster: header.cluster_name,
            broker_name: header.broker_name,
            broker_addr: header.broker_addr,
            broker_id: header.broker_id,
            ha_server_addr: header.ha_server_addr,
            enable_acting_master: header.enable_acting_master.unwrap_or(false),
            topics,
            data_version,
            timeout,
            connection_id: Some(conn.id()),
            raft_term: header.raft_term.and_then(|t| u64::try_from(t).ok()),
        };
        let outcome = self.registry.lock().register(registration, Instant::now());
        match outcome {
            Ok(outcome) => {
                RemotingCommand::success_to(req).with_header(&RegisterBrokerResponseHeader {
                    ha_server_addr: outcome.ha_server_addr,
                    master_addr: outcome.master_addr,
                })
            }
            Err(e) => RemotingCommand::error_to(req, response::SYSTEM_ERROR, e.to_string()),
        }
    }

    fn unregister_broker(&self, req: &RemotingCommand) -> RemotingCommand {
        match req.decode_header::<UnRegisterBrokerRequestHeader>() {
            Ok(h) => {
                info!(broker = %h.broker_addr, name = %h.broker_name, id = h.broker_id, "broker unregistered");
                self.registry.lock().unregister(
                    &h.cluster_name,
                    &h.broker_name,
                    &h.broker_addr,
                    h.broker_id,
                );
                RemotingCommand::success_to(req)
            }
            Err(e) => RemotingCommand::error_to(req, response::SYSTEM_ERROR, e.to_string()),
        }
    }

    fn route_by_topic(&self, req: &RemotingCommand) -> RemotingCommand {
        let header = match req.decode_header::<GetRouteInfoRequestHeader>() {
            Ok(h) => h,
            Err(e) => return RemotingCommand::error_to(req, response::SYSTEM_ERROR, e.to_string()),
        };
        let route = self.registry.lock().route(&header.topic);
        match route {
            Some(mut route) => {
                if let Some(conf) = self.order_topic_conf(&header.topic) {
                    route.order_topic_conf = Some(conf);
                }
                let quoting = KeyQuoting::for_route_request(
                    req.version,
                    header.accept_standard_json_only.unwrap_or(false),
                );
                RemotingCommand::success_to(req).with_body(route.encode(quoting))
            }
            None => RemotingCommand::error_to(
                req,
                response::TOPIC_NOT_EXIST,
                format!(
                    "No topic route info in name server for the topic: {}",
                    header.topic
                ),
            ),
        }
    }

    /// A topic's `orderTopicConf`, attached to its route only with `orderMessageEnable`.
    fn order_topic_conf(&self, topic: &str) -> Option<String> {
        if !self.config.order_message_enable {
            return None;
        }
        self.kv.get(ORDER_TOPIC_CONFIG_NAMESPACE, topic)
    }

    fn cluster_info(&self, req: &RemotingCommand) -> RemotingCommand {
        let registry = self.registry.lock();
        let (brokers, clusters) = registry.cluster_info();
        let info = ClusterInfo {
            broker_addr_table: brokers.clone(),
            cluster_addr_table: clusters.clone(),
        };
        drop(registry);
        // Java writes this body with plain fastjson (unquoted ids) whatever the requester.
        RemotingCommand::success_to(req).with_body(info.encode(KeyQuoting::Unquoted))
    }

    fn topic_list(&self, req: &RemotingCommand, topics: Vec<String>) -> RemotingCommand {
        let list = TopicList {
            topic_list: topics.into_iter().collect(),
            broker_addr: None,
        };
        self.topic_list_response(req, &list)
    }

    /// GET_SYSTEM_TOPIC_LIST_FROM_NS: cluster and broker names, and a broker to ask for the
    /// rest (RocketMQ's admin adds that broker's own system topics).
    fn system_topic_list(&self, req: &RemotingCommand) -> RemotingCommand {
        let (names, broker_addr) = self.registry.lock().system_topics();
        let list = TopicList {
            topic_list: names,
            broker_addr,
        };
        self.topic_list_response(req, &list)
    }

    fn topic_list_response(&self, req: &RemotingCommand, list: &TopicList) -> RemotingCommand {
        match serde_json::to_vec(&list) {
            Ok(body) => RemotingCommand::success_to(req).with_body(body),
            Err(e) => RemotingCommand::error_to(req, response::SYSTEM_ERROR, e.to_string()),
        }
    }

    fn delete_topic(&self, req: &RemotingCommand) -> RemotingCommand {
        match req.decode_header::<DeleteTopicFromNamesrvRequestHeader>() {
            Ok(h) => {
                self.registry
                    .lock()
                    .delete_topic(&h.topic, h.cluster_name.as_deref());
                RemotingCommand::success_to(req)
            }
            Err(e) => RemotingCommand::error_to(req, response::SYSTEM_ERROR, e.to_string()),
        }
    }

    /// WIPE_WRITE_PERM_OF_BROKER: clients stop sending to the broker (RocketMQ's
    /// `mqadmin wipeWritePerm`, run before stopping a broker).
    fn wipe_write_perm(&self, req: &RemotingCommand) -> RemotingCommand {
        let h = match req.decode_header::<WipeWritePermOfBrokerRequestHeader>() {
            Ok(h) => h,
            Err(e) => return RemotingCommand::error_to(req, response::SYSTEM_ERROR, e.to_string()),
        };
        let topics = self.registry.lock().wipe_write_perm(&h.broker_name);
        info!(broker = %h.broker_name, topics, "write permission of broker wiped");
        RemotingCommand::success_to(req).with_header(&WipeWritePermOfBrokerResponseHeader {
            wipe_topic_count: count_header(topics),
        })
    }

    /// ADD_WRITE_PERM_OF_BROKER: the broker's queues become readable and writable again.
    fn add_write_perm(&self, req: &RemotingCommand) -> RemotingCommand {
        let h = match req.decode_header::<AddWritePermOfBrokerRequestHeader>() {
            Ok(h) => h,
            Err(e) => return RemotingCommand::error_to(req, response::SYSTEM_ERROR, e.to_string()),
        };
        let topics = self.registry.lock().add_write_perm(&h.broker_name);
        info!(broker = %h.broker_name, topics, "write permission of broker added");
        RemotingCommand::success_to(req).with_header(&AddWritePermOfBrokerResponseHeader {
            add_topic_count: count_header(topics),
        })
    }

    fn get_kv(&self, req: &RemotingCommand) -> RemotingCommand {
        let h = match req.decode_header::<GetKvConfigRequestHeader>() {
            Ok(h) => h,
            Err(e) => return RemotingCommand::error_to(req, response::SYSTEM_ERROR, e.to_string()),
        };
        match self.kv.get(&h.namespace, &h.key) {
            Some(value) => RemotingCommand::success_to(req)
                .with_header(&GetKvConfigResponseHeader { value: Some(value) }),
            None => RemotingCommand::error_to(
                req,
                response::QUERY_NOT_FOUND,
                format!("No config item, Namespace: {} Key: {}", h.namespace, h.key),
            ),
        }
    }

    /// GET_KVLIST_BY_NAMESPACE: the namespace's entries as a KVTable body.
    fn get_kv_list(&self, req: &RemotingCommand) -> RemotingCommand {
        let h = match req.decode_header::<GetKvListByNamespaceRequestHeader>() {
            Ok(h) => h,
            Err(e) => return RemotingCommand::error_to(req, response::SYSTEM_ERROR, e.to_string()),
        };
        match self.kv.namespace(&h.namespace) {
            Some(table) => RemotingCommand::success_to(req).with_body(KvTable { table }.encode()),
            None => RemotingCommand::error_to(
                req,
                response::QUERY_NOT_FOUND,
                format!("No config item, Namespace: {}", h.namespace),
            ),
        }
    }

    /// PUT_KV_CONFIG: answered once the change is on disk.
    async fn put_kv(&self, req: &RemotingCommand) -> RemotingCommand {
        let h = match req.decode_header::<PutKvConfigRequestHeader>() {
            Ok(h) => h,
            Err(e) => return RemotingCommand::error_to(req, response::SYSTEM_ERROR, e.to_string()),
        };
        let kv = Arc::clone(&self.kv);
        let (namespace, key) = (h.namespace.clone(), h.key.clone());
        let written = self
            .on_disk(move || kv.put(&h.namespace, &h.key, h.value))
            .await;
        match written {
            Ok(()) => {
                info!(%namespace, %key, "kv config item put");
                RemotingCommand::success_to(req)
            }
            Err(e) => RemotingCommand::error_to(req, response::SYSTEM_ERROR, e),
        }
    }

    /// DELETE_KV_CONFIG: answered once the change is on disk.
    async fn delete_kv(&self, req: &RemotingCommand) -> RemotingCommand {
        let h = match req.decode_header::<DeleteKvConfigRequestHeader>() {
            Ok(h) => h,
            Err(e) => return RemotingCommand::error_to(req, response::SYSTEM_ERROR, e.to_string()),
        };
        let kv = Arc::clone(&self.kv);
        let (namespace, key) = (h.namespace.clone(), h.key.clone());
        let written = self.on_disk(move || kv.delete(&h.namespace, &h.key)).await;
        match written {
            Ok(()) => {
                info!(%namespace, %key, "kv config item deleted");
                RemotingCommand::success_to(req)
            }
            Err(e) => RemotingCommand::error_to(req, response::SYSTEM_ERROR, e),
        }
    }

    /// Runs a KV change (which writes and fsyncs the file) off the request tasks' threads;
    /// the error as a response remark.
    async fn on_disk(
        &self,
        change: impl FnOnce() -> Result<(), KvConfigError> + Send + 'static,
    ) -> Result<(), String> {
        match tokio::task::spawn_blocking(change).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                warn!(error = %e, "kv config change refused");
                Err(e.to_string())
            }
            Err(e) => Err(format!("kv config change failed: {e}")),
        }
    }

    fn topics_by_cluster(&self, req: &RemotingCommand) -> RemotingCommand {
        let Some(cluster) = req.ext_field("cluster").map(str::to_string) else {
            return RemotingCommand::error_to(req, response::SYSTEM_ERROR, "missing `cluster`");
        };
        let topics = self.registry.lock().topics_of_cluster(&cluster);
        self.topic_list(req, topics)
    }

    /// Drops brokers that stopped re-registering; runs until the process ends.
    pub async fn expire_brokers_periodically(self: Arc<Self>) {
        let mut ticker = tokio::time::interval(self.config.scan_not_active_broker_interval);
        loop {
            ticker.tick().await;
            let expired = self.registry.lock().expire(Instant::now());
            for addr in expired {
                warn!(broker = %addr, "broker expired: no registration within its timeout");
            }
        }
    }
}

/// A topic count as the `Integer` RocketMQ's response headers carry.
fn count_header(count: usize) -> i32 {
    i32::try_from(count).unwrap_or(i32::MAX)
}

impl RequestProcessor for NameServer {
    async fn process(
        &self,
        conn: &ConnectionHandle,
        req: RemotingCommand,
    ) -> Option<RemotingCommand> {
        let reply = match req.code {
            request::REGISTER_BROKER => self.register_broker(conn, &req),
            request::UNREGISTER_BROKER => self.unregister_broker(&req),
            request::GET_ROUTEINFO_BY_TOPIC => self.route_by_topic(&req),
            request::GET_BROKER_CLUSTER_INFO => self.cluster_info(&req),
            request::GET_ALL_TOPIC_LIST_FROM_NAMESERVER => {
                if !self.config.enable_all_topic_list {
                    RemotingCommand::error_to(&req, response::SYSTEM_ERROR, "disable")
                } else {
                    let topics = self.registry.lock().topics().map(str::to_string).collect();
                    self.topic_list(&req, topics)
                }
            }
            request::GET_TOPICS_BY_CLUSTER => self.topics_by_cluster(&req),
            request::GET_SYSTEM_TOPIC_LIST_FROM_NS => self.system_topic_list(&req),
            request::DELETE_TOPIC_IN_NAMESRV => self.delete_topic(&req),
            request::WIPE_WRITE_PERM_OF_BROKER => self.wipe_write_perm(&req),
            request::ADD_WRITE_PERM_OF_BROKER => self.add_write_perm(&req),
            request::GET_KV_CONFIG => self.get_kv(&req),
            request::PUT_KV_CONFIG => self.put_kv(&req).await,
            request::DELETE_KV_CONFIG => self.delete_kv(&req).await,
            request::GET_KVLIST_BY_NAMESPACE => self.get_kv_list(&req),
            // Our brokers always register in full (RocketMQ's forceRegister default), so
            // "changed" steers nothing; answer that it changed to be safe.
            request::QUERY_DATA_VERSION => RemotingCommand::success_to(&req)
                .with_header(&QueryDataVersionResponseHeader { changed: true }),
            _ => RemotingCommand::not_supported_to(&req),
        };
        Some(reply)
    }

    fn connection_closed(&self, conn: &ConnectionHandle) {
        let gone = self.registry.lock().connection_closed(conn.id());
        for addr in gone {
            info!(broker = %addr, "broker connection closed; removed from routes");
        }
    }
}

/// A running name server.
pub struct RunningNameServer {
    pub server: RemotingServer,
    pub state: Arc<NameServer>,
    expiry: tokio::task::JoinHandle<()>,
    /// The Prometheus endpoint (`metricsExporterType=PROM`) and what stops it.
    metrics: Option<(tokio::task::JoinHandle<()>, CancellationToken)>,
    /// What stops the ACL files' watcher (`aclEnable=true`).
    acl_watch: Option<CancellationToken>,
}

impl RunningNameServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    pub async fn shutdown(self) {
        self.expiry.abort();
        if let Some(stop) = self.acl_watch {
            stop.cancel();
        }
        if let Some((endpoint, stop)) = self.metrics {
            stop.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(2), endpoint).await;
        }
        self.server.shutdown(Duration::from_secs(2)).await;
    }
}

/// Loads the KV config from `config.kv_config_path`, binds `host:listenPort` and serves
/// until shut down. A KV config that cannot be read is an `InvalidData` error carrying the
/// [`KvConfigError`].
pub async fn start(config: NamesrvConfig, host: &str) -> std::io::Result<RunningNameServer> {
    let kv = KvConfig::load(&config.kv_config_path)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    start_with_kv(config, kv, host).await
}

/// [`start`] with a KV config already loaded (`mqnamesrv` loads it first, to report a bad
/// file as such). With `metricsExporterType=PROM` a Prometheus port that cannot be bound
/// stops start-up (an `AddrInUse`-like error carrying the reason).
pub async fn start_with_kv(
    config: NamesrvConfig,
    kv: KvConfig,
    host: &str,
) -> std::io::Result<RunningNameServer> {
    let metrics_listener = if config.metrics_exporter.enabled() {
        let bound = metrics::endpoint::bind(&config.metrics_exporter, host).await;
        Some(bound.map_err(|e| std::io::Error::new(e.source.kind(), e))?)
    } else {
        None
    };
    let acl = if config.acl_enable {
        let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        let home = config.rocketmq_home.as_deref().ok_or_else(|| {
            invalid(
                "aclEnable=true but neither rocketmqHome nor ROCKETMQ_HOME says where \
                 conf/plain_acl.yml is"
                    .into(),
            )
        })?;
        let files = AclFiles::open(home).map_err(|e| invalid(e.to_string()))?;
        info!(home = %home.display(), "ACL enabled");
        Some(Arc::new(files))
    } else {
        None
    };
    let state = NameServer::new(config.clone(), kv);
    let limits = ServerConfig::with_limits(&config.server_limits);
    let latency = metrics::rpc::RpcLatency::default();
    let addr = (host, config.listen_port);
    // Metrics time every request, refused ones too; ACL stands in front of the registry.
    let checks = |files: &Arc<AclFiles>| vec![Arc::clone(files) as Arc<dyn RequestCheck>];
    let server = match (&acl, metrics_listener.is_some()) {
        (Some(files), true) => {
            let guarded = Arc::new(AclGuard::new(Arc::clone(&state), checks(files)));
            let instrumented = metrics::rpc::Instrumented::new(guarded, latency.clone());
            RemotingServer::bind(addr, limits, Arc::new(instrumented)).await?
        }
        (Some(files), false) => {
            let guarded = AclGuard::new(Arc::clone(&state), checks(files));
            RemotingServer::bind(addr, limits, Arc::new(guarded)).await?
        }
        (None, true) => {
            let instrumented = metrics::rpc::Instrumented::new(Arc::clone(&state), latency.clone());
            RemotingServer::bind(addr, limits, Arc::new(instrumented)).await?
        }
        (None, false) => RemotingServer::bind(addr, limits, Arc::clone(&state)).await?,
    };
    let acl_watch = acl.map(|files| {
        let stop = CancellationToken::new();
        tokio::spawn(files.watch(stop.clone()));
        stop
    });
    let expiry = tokio::spawn(Arc::clone(&state).expire_brokers_periodically());
    let metrics = metrics_listener.map(|listener| {
        let stop = CancellationToken::new();
        let mut labels = vec![
            ("node_type".to_owned(), "namesrv".to_owned()),
            ("node_id".to_owned(), server.local_addr().to_string()),
        ];
        labels.extend(config.metrics_exporter.labels.iter().cloned());
        let census_of = Arc::clone(&state);
        let scrape = crate::scrape::NamesrvScrape {
            census: Box::new(move || census_of.census()),
            latency,
            labels,
        };
        let endpoint = metrics::endpoint::serve(listener, Arc::new(scrape), stop.clone());
        (endpoint, stop)
    });
    info!(addr = %server.local_addr(), "name server started");
    Ok(RunningNameServer {
        server,
        state,
        expiry,
        metrics,
        acl_watch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use remoting::body::{TopicConfig, TopicConfigSerializeWrapper, TopicRouteData};
    use remoting::client::{ClientConfig, RemotingClient};

    /// A name server on a free port keeping its KV config in `dir`.
    async fn start_in(dir: &std::path::Path, config: NamesrvConfig) -> RunningNameServer {
        let config = NamesrvConfig {
            listen_port: 0,
            kv_config_path: dir.join("kvConfig.json"),
            ..config
        };
        start(config, "127.0.0.1").await.unwrap()
    }

    fn register_request(name: &str, addr: &str, id: i64, topics: &[&str]) -> RemotingCommand {
        let mut wrapper = TopicConfigSerializeWrapper::default();
        for t in topics {
            wrapper
                .topic_config_table
                .insert(t.to_string(), TopicConfig::new(t, 4, 4, 6));
        }
        let body = RegisterBrokerBody {
            topic_config_serialize_wrapper: wrapper,
            filter_server_list: vec![],
        }
        .encode();
        let crc = (crc32fast::hash(&body) & 0x7FFF_FFFF) as i32;
        RemotingCommand::request(request::REGISTER_BROKER)
            .with_header(&RegisterBrokerRequestHeader {
                broker_name: name.into(),
                broker_addr: addr.into(),
                cluster_name: "C".into(),
                ha_server_addr: addr.into(),
                broker_id: id,
                heartbeat_timeout_millis: None,
                enable_acting_master: None,
                compressed: false,
                body_crc32: crc,
                zone_name: None,
                raft_term: None,
            })
            .with_body(Bytes::from(body))
    }

    #[tokio::test]
    async fn register_then_route_over_tcp() {
        let dir = tempfile::tempdir().unwrap();
        let ns = start_in(dir.path(), NamesrvConfig::default()).await;
        let addr = ns.local_addr().to_string();
        let client = RemotingClient::new(ClientConfig::default());
        let t = Duration::from_secs(5);

        let resp = client
            .invoke(&addr, register_request("b", "127.0.0.1:1", 0, &["T"]), t)
            .await
            .unwrap();
        assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);

        let route_req = RemotingCommand::request(request::GET_ROUTEINFO_BY_TOPIC).with_header(
            &GetRouteInfoRequestHeader {
                topic: "T".into(),
                accept_standard_json_only: None,
            },
        );
        let resp = client.invoke(&addr, route_req, t).await.unwrap();
        assert_eq!(resp.code, response::SUCCESS);
        let route = TopicRouteData::decode(&resp.body).unwrap();
        assert_eq!(route.broker_datas[0].master_addr(), Some("127.0.0.1:1"));
        assert_eq!(route.queue_datas[0].write_queue_nums, 4);

        let missing = RemotingCommand::request(request::GET_ROUTEINFO_BY_TOPIC).with_header(
            &GetRouteInfoRequestHeader {
                topic: "Nope".into(),
                accept_standard_json_only: None,
            },
        );
        let resp = client.invoke(&addr, missing, t).await.unwrap();
        assert_eq!(resp.code, response::TOPIC_NOT_EXIST);

        let mut bad_crc = register_request("b", "127.0.0.1:1", 0, &["T"]);
        bad_crc
            .ext_fields
            .insert("bodyCrc32".into(), "12345".into());
        let resp = client.invoke(&addr, bad_crc, t).await.unwrap();
        assert_eq!(resp.code, response::SYSTEM_ERROR);

        let unknown = RemotingCommand::request(9999);
        let resp = client.invoke(&addr, unknown, t).await.unwrap();
        assert_eq!(resp.code, response::REQUEST_CODE_NOT_SUPPORTED);
        ns.shutdown().await;
    }

    #[tokio::test]
    async fn broker_leaves_routes_when_its_connection_closes() {
        let dir = tempfile::tempdir().unwrap();
        let ns = start_in(dir.path(), NamesrvConfig::default()).await;
        let addr = ns.local_addr().to_string();
        let t = Duration::from_secs(5);
        let broker_side = RemotingClient::new(ClientConfig::default());
        broker_side
            .invoke(&addr, register_request("b", "127.0.0.1:1", 0, &["T"]), t)
            .await
            .unwrap();
        assert!(ns.state.registry.lock().route("T").is_some());
        broker_side.shutdown();
        let deadline = Instant::now() + Duration::from_secs(5);
        while ns.state.registry.lock().route("T").is_some() {
            assert!(
                Instant::now() < deadline,
                "route still there after the broker left"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        ns.shutdown().await;
    }

    fn route_perm(resp: &RemotingCommand) -> i32 {
        assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
        TopicRouteData::decode(&resp.body).unwrap().queue_datas[0].perm
    }

    fn route_request(topic: &str) -> RemotingCommand {
        RemotingCommand::request(request::GET_ROUTEINFO_BY_TOPIC).with_header(
            &GetRouteInfoRequestHeader {
                topic: topic.into(),
                accept_standard_json_only: None,
            },
        )
    }

    #[tokio::test]
    async fn wipe_and_add_write_perm_over_tcp() {
        let dir = tempfile::tempdir().unwrap();
        let ns = start_in(dir.path(), NamesrvConfig::default()).await;
        let addr = ns.local_addr().to_string();
        let client = RemotingClient::new(ClientConfig::default());
        let t = Duration::from_secs(5);
        client
            .invoke(
                &addr,
                register_request("b", "127.0.0.1:1", 0, &["T", "U"]),
                t,
            )
            .await
            .unwrap();

        let wipe = RemotingCommand::request(request::WIPE_WRITE_PERM_OF_BROKER).with_header(
            &WipeWritePermOfBrokerRequestHeader {
                broker_name: "b".into(),
            },
        );
        let resp = client.invoke(&addr, wipe, t).await.unwrap();
        assert_eq!(resp.code, response::SUCCESS);
        assert_eq!(resp.ext_field("wipeTopicCount"), Some("2"));
        let resp = client.invoke(&addr, route_request("T"), t).await.unwrap();
        assert_eq!(route_perm(&resp), 4);

        // The broker's next (unchanged) registration does not undo it.
        client
            .invoke(
                &addr,
                register_request("b", "127.0.0.1:1", 0, &["T", "U"]),
                t,
            )
            .await
            .unwrap();
        let resp = client.invoke(&addr, route_request("T"), t).await.unwrap();
        assert_eq!(route_perm(&resp), 4);

        let add = RemotingCommand::request(request::ADD_WRITE_PERM_OF_BROKER).with_header(
            &AddWritePermOfBrokerRequestHeader {
                broker_name: "b".into(),
            },
        );
        let resp = client.invoke(&addr, add, t).await.unwrap();
        assert_eq!(resp.code, response::SUCCESS);
        assert_eq!(resp.ext_field("addTopicCount"), Some("2"));
        let resp = client.invoke(&addr, route_request("U"), t).await.unwrap();
        assert_eq!(route_perm(&resp), 6);

        // An unknown broker changes nothing; a request without `brokerName` is refused.
        let wipe_unknown = RemotingCommand::request(request::WIPE_WRITE_PERM_OF_BROKER)
            .with_header(&WipeWritePermOfBrokerRequestHeader {
                broker_name: "nobody".into(),
            });
        let resp = client.invoke(&addr, wipe_unknown, t).await.unwrap();
        assert_eq!(resp.ext_field("wipeTopicCount"), Some("0"));
        let bare = RemotingCommand::request(request::ADD_WRITE_PERM_OF_BROKER);
        let resp = client.invoke(&addr, bare, t).await.unwrap();
        assert_eq!(resp.code, response::SYSTEM_ERROR);
        ns.shutdown().await;
    }

    #[tokio::test]
    async fn system_topic_list_over_tcp() {
        let dir = tempfile::tempdir().unwrap();
        let ns = start_in(dir.path(), NamesrvConfig::default()).await;
        let addr = ns.local_addr().to_string();
        let client = RemotingClient::new(ClientConfig::default());
        let t = Duration::from_secs(5);
        let ask = || RemotingCommand::request(request::GET_SYSTEM_TOPIC_LIST_FROM_NS);

        // No broker yet: an empty list and no address (fastjson leaves the null out).
        let resp = client.invoke(&addr, ask(), t).await.unwrap();
        assert_eq!(resp.code, response::SUCCESS);
        assert_eq!(&resp.body[..], br#"{"topicList":[]}"#);

        client
            .invoke(&addr, register_request("b", "127.0.0.1:1", 0, &["T"]), t)
            .await
            .unwrap();
        let resp = client.invoke(&addr, ask(), t).await.unwrap();
        assert_eq!(resp.code, response::SUCCESS);
        assert_eq!(
            &resp.body[..],
            br#"{"topicList":["C","b"],"brokerAddr":"127.0.0.1:1"}"#
        );
        ns.shutdown().await;
    }

    fn kv_request(code: i32, pairs: &[(&str, &str)]) -> RemotingCommand {
        let mut command = RemotingCommand::request(code);
        for (k, v) in pairs {
            command.ext_fields.insert((*k).into(), (*v).into());
        }
        command
    }

    #[tokio::test]
    async fn kv_config_is_kept_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let client = RemotingClient::new(ClientConfig::default());
        let t = Duration::from_secs(5);
        let get =
            |key: &str| kv_request(request::GET_KV_CONFIG, &[("namespace", "NS"), ("key", key)]);
        let list = |ns: &str| kv_request(request::GET_KVLIST_BY_NAMESPACE, &[("namespace", ns)]);

        let ns = start_in(dir.path(), NamesrvConfig::default()).await;
        let addr = ns.local_addr().to_string();
        for (key, value) in [("a", "1"), ("b", "2")] {
            let put = kv_request(
                request::PUT_KV_CONFIG,
                &[("namespace", "NS"), ("key", key), ("value", value)],
            );
            let resp = client.invoke(&addr, put, t).await.unwrap();
            assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
        }
        let delete = kv_request(
            request::DELETE_KV_CONFIG,
            &[("namespace", "NS"), ("key", "b")],
        );
        let resp = client.invoke(&addr, delete, t).await.unwrap();
        assert_eq!(resp.code, response::SUCCESS);
        let resp = client.invoke(&addr, list("NS"), t).await.unwrap();
        assert_eq!(resp.code, response::SUCCESS);
        assert_eq!(&resp.body[..], br#"{"table":{"a":"1"}}"#);
        let resp = client.invoke(&addr, list("Nope"), t).await.unwrap();
        assert_eq!(resp.code, response::QUERY_NOT_FOUND);
        assert_eq!(
            resp.remark.as_deref(),
            Some("No config item, Namespace: Nope")
        );
        let resp = client.invoke(&addr, list(""), t).await.unwrap();
        assert_eq!(resp.code, response::QUERY_NOT_FOUND);
        let bare = RemotingCommand::request(request::GET_KVLIST_BY_NAMESPACE);
        let resp = client.invoke(&addr, bare, t).await.unwrap();
        assert_eq!(resp.code, response::SYSTEM_ERROR, "namespace is required");
        ns.shutdown().await;

        let ns = start_in(dir.path(), NamesrvConfig::default()).await;
        let addr = ns.local_addr().to_string();
        let resp = client.invoke(&addr, get("a"), t).await.unwrap();
        assert_eq!(resp.code, response::SUCCESS);
        assert_eq!(resp.ext_field("value"), Some("1"));
        let resp = client.invoke(&addr, get("b"), t).await.unwrap();
        assert_eq!(resp.code, response::QUERY_NOT_FOUND);
        ns.shutdown().await;
    }

    #[tokio::test]
    async fn a_corrupt_kv_config_stops_start_up() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kvConfig.json"), "{oops").unwrap();
        let config = NamesrvConfig {
            listen_port: 0,
            kv_config_path: dir.path().join("kvConfig.json"),
            ..NamesrvConfig::default()
        };
        let Err(e) = start(config, "127.0.0.1").await else {
            panic!("started with a corrupt kvConfig.json");
        };
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("kvConfig.json"), "{e}");
    }

    #[tokio::test]
    async fn order_topic_conf_only_with_order_message_enable() {
        let client = RemotingClient::new(ClientConfig::default());
        let t = Duration::from_secs(5);
        for enabled in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let config = NamesrvConfig {
                order_message_enable: enabled,
                ..NamesrvConfig::default()
            };
            let ns = start_in(dir.path(), config).await;
            let addr = ns.local_addr().to_string();
            client
                .invoke(&addr, register_request("b", "127.0.0.1:1", 0, &["T"]), t)
                .await
                .unwrap();
            let put = kv_request(
                request::PUT_KV_CONFIG,
                &[
                    ("namespace", ORDER_TOPIC_CONFIG_NAMESPACE),
                    ("key", "T"),
                    ("value", "b:4"),
                ],
            );
            assert_eq!(client.invoke(&addr, put, t).await.unwrap().code, 0);
            let resp = client.invoke(&addr, route_request("T"), t).await.unwrap();
            let route = TopicRouteData::decode(&resp.body).unwrap();
            let expected = enabled.then(|| "b:4".to_owned());
            assert_eq!(
                route.order_topic_conf, expected,
                "orderMessageEnable={enabled}"
            );
            ns.shutdown().await;
        }
    }
}
