package rmqrs.compat;

import java.lang.reflect.Field;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.common.TopicConfig;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;
import org.apache.rocketmq.tools.admin.DefaultMQAdminExt;

/**
 * {@code admin ACTION}: DefaultMQAdminExt, one action per run. Every action prints one line
 * named after it (or several, named below) and exits 0, or prints a `failed` line (`step` = the
 * call that failed, `response_code` = what the broker or name server answered) and exits 1.
 * Version-specific result classes are read through {@code var}, so one source compiles against
 * both client versions.
 *
 * <pre>
 * cluster                                     examineBrokerClusterInfo
 * route -t T                                  examineTopicRouteInfo
 * topic-list                                  fetchAllTopicList
 * topic-stats -t T                            examineTopicStats
 * consume-stats -g G [-t T]                   examineConsumeStats
 * query-key -t T -k KEY [--max N]             queryMessage: `queried` lines, then `query_done`
 * view -t T -i ID                             viewMessage (message id or offset message id)
 * offsets -t T [--timestamp MS]               per queue: minOffset, maxOffset,
 *                                             earliestMsgStoreTime, searchOffset (`offsets` lines)
 * reset-offset -t T -g G --timestamp MS [--force] [--no-fallback]
 *              [--with-consumer --expect N --timeout-secs S]
 *                                             resetOffsetByTimestamp; with --with-consumer a push
 *                                             consumer of G takes N messages first (`received`,
 *                                             pass 1), then the reset, then N again (pass 2)
 * consumer-info -t T -g G [--expr E] [--direct-msg-id OFFSET_MSG_ID]
 *                                             starts a push consumer of G, then
 *                                             examineConsumerConnectionInfo, getConsumerRunningInfo,
 *                                             getConsumeStatus, consumeMessageDirectly
 * producer-info -t T -g PG                    starts a producer of PG (one send), then
 *                                             examineProducerConnectionInfo
 * wipe-write-perm --broker-name B             wipeWritePermOfBroker on every name server
 * add-write-perm --broker-name B              addWritePermOfBroker on every name server
 * broker-config [-b ADDR]                     getBrokerConfig (every master without -b)
 * update-broker-config [-b ADDR] --set k=v... updateBrokerConfig, then getBrokerConfig
 * broker-stats [-b ADDR]                      fetchBrokerRuntimeStats
 * stats-data [-b ADDR] --name N --key K       viewBrokerStatsData
 * create-group [-b ADDR] -g G [--retry-max N] [--broadcast-enable true|false]
 *                                             createAndUpdateSubscriptionGroupConfig, then
 *                                             examineSubscriptionGroupConfig
 * delete-group [-b ADDR] -g G                 deleteSubscriptionGroup
 * set-consume-mode [-b ADDR] -t T -g G [--mode POP|PULL] [--pop-share N]
 *                                             setMessageRequestMode (5.x; mqadmin setConsumeMode)
 * create-topic [-b ADDR] -t T [--queues N] [--perm P] [--order]
 *                                             createAndUpdateTopicConfig
 * delete-topic -t T [-c CLUSTER]              deleteTopicInBroker (masters), deleteTopicInNameServer
 * consumed-by -t T                            queryTopicConsumeByWho
 * clone-offset --src G --dest G2 -t T         cloneGroupOffset
 * system-topics                               the client API's getSystemTopicList (name server
 *                                             code 304, then 305 at each broker it names)
 * </pre>
 * Without -b, broker actions go to every master in the cluster info.
 */
final class Admin {
    private Admin() {}

    private static final long QUERY_WINDOW_MS = 3_600_000L;

    static int run(Args args) throws Exception {
        if (args.words.size() != 1) {
            throw new Args.UsageException("admin needs one ACTION");
        }
        String action = args.words.get(0);
        args.only("-n", "-t", "-g", "-b", "-c", "-k", "-i", "--max", "--timestamp", "--force",
            "--no-fallback", "--with-consumer", "--expect", "--timeout-secs", "--expr",
            "--direct-msg-id", "--broker-name", "--set", "--name", "--key", "--retry-max",
            "--broadcast-enable", "--queues", "--perm", "--order", "--src", "--dest", "--vip",
            "--mode", "--pop-share");
        String namesrv = args.required("-n");
        DefaultMQAdminExt admin = Clients.configure(new DefaultMQAdminExt(), namesrv,
            args.has("--vip"));
        admin.setAdminExtGroup("java_driver_admin_" + ProcessHandle.current().pid());
        Report.print(Clients.started("admin").put("action", action));
        admin.start();
        try {
            return dispatch(action, args, admin);
        } finally {
            admin.shutdown();
        }
    }

    private static int dispatch(String action, Args args, DefaultMQAdminExt admin) throws Exception {
        switch (action) {
            case "cluster":
                return cluster(admin);
            case "route":
                return route(admin, args.required("-t"));
            case "topic-list": {
                var list = admin.fetchAllTopicList();
                Report.print(Json.op("topic_list").put("topics",
                    Json.list(new TreeSet<>(list.getTopicList()))));
                return 0;
            }
            case "topic-stats":
                return topicStats(admin, args.required("-t"));
            case "consume-stats":
                return consumeStats(admin, args.required("-g"), args.one("-t", null));
            case "query-key":
                return queryKey(admin, args.required("-t"), args.required("-k"),
                    (int) args.number("--max", 32));
            case "view": {
                MessageExt m = admin.viewMessage(args.required("-t"), args.required("-i"));
                Report.print(Report.message("viewed", m).put("looked_up", args.required("-i")));
                return 0;
            }
            case "offsets":
                return offsets(admin, args.required("-t"), args.number("--timestamp", -1));
            case "reset-offset":
                return resetOffset(admin, args);
            case "consumer-info":
                return consumerInfo(admin, args);
            case "producer-info":
                return producerInfo(admin, args);
            case "wipe-write-perm":
            case "add-write-perm": {
                String broker = args.required("--broker-name");
                int failures = 0;
                for (String ns : args.required("-n").split(";")) {
                    try {
                        int count = action.equals("wipe-write-perm")
                            ? admin.wipeWritePermOfBroker(ns, broker)
                            : admin.addWritePermOfBroker(ns, broker);
                        Report.print(Json.op(action.replace('-', '_')).put("namesrv", ns)
                            .put("broker_name", broker).put("topics_changed", count));
                    } catch (Exception e) {
                        failures++;
                        Report.print(Report.failure(action, e).put("namesrv", ns));
                    }
                }
                return failures == 0 ? 0 : 1;
            }
            case "broker-config":
                return perBroker(admin, args, addr -> {
                    Report.print(Json.op("broker_config").put("addr", addr)
                        .put("config", sorted(admin.getBrokerConfig(addr))));
                });
            case "update-broker-config": {
                Properties props = new Properties();
                for (String kv : args.all("--set")) {
                    int eq = kv.indexOf('=');
                    if (eq <= 0) {
                        throw new Args.UsageException("--set " + kv + ": expected k=v");
                    }
                    props.setProperty(kv.substring(0, eq), kv.substring(eq + 1));
                }
                if (props.isEmpty()) {
                    throw new Args.UsageException("--set k=v is required");
                }
                return perBroker(admin, args, addr -> {
                    admin.updateBrokerConfig(addr, props);
                    Properties now = admin.getBrokerConfig(addr);
                    Map<String, Object> values = new TreeMap<>();
                    for (String k : props.stringPropertyNames()) {
                        values.put(k, now.getProperty(k));
                    }
                    Report.print(Json.op("update_broker_config").put("addr", addr)
                        .put("asked", sorted(props)).put("read_back", values));
                });
            }
            case "broker-stats":
                return perBroker(admin, args, addr -> {
                    var kv = admin.fetchBrokerRuntimeStats(addr);
                    Report.print(Json.op("broker_stats").put("addr", addr)
                        .put("stats", new TreeMap<>(kv.getTable())));
                });
            case "stats-data": {
                String name = args.required("--name");
                String key = args.required("--key");
                return perBroker(admin, args, addr -> {
                    var data = admin.viewBrokerStatsData(addr, name, key);
                    Report.print(Json.op("stats_data").put("addr", addr)
                        .put("minute_sum", data.getStatsMinute().getSum())
                        .put("hour_sum", data.getStatsHour().getSum())
                        .put("day_sum", data.getStatsDay().getSum()));
                });
            }
            case "create-group": {
                String group = args.required("-g");
                Map<String, Object> settings = new LinkedHashMap<>();
                settings.put("groupName", group);
                if (args.has("--retry-max")) {
                    settings.put("retryMaxTimes", args.number("--retry-max", 16));
                }
                if (args.has("--broadcast-enable")) {
                    settings.put("consumeBroadcastEnable", args.one("--broadcast-enable", "true"));
                }
                Object config = Versioned.subscriptionGroupConfig(settings);
                return perBroker(admin, args, addr -> {
                    Versioned.call(admin, "createAndUpdateSubscriptionGroupConfig", addr, config);
                    var read = admin.examineSubscriptionGroupConfig(addr, group);
                    Report.print(Json.op("create_group").put("addr", addr)
                        .put("read_back", read == null ? null : new Json()
                            .put("group_name", read.getGroupName())
                            .put("retry_max_times", read.getRetryMaxTimes())
                            .put("retry_queue_nums", read.getRetryQueueNums())
                            .put("consume_enable", read.isConsumeEnable())
                            .put("consume_broadcast_enable", read.isConsumeBroadcastEnable())
                            .put("consume_from_min_enable", read.isConsumeFromMinEnable())));
                });
            }
            case "set-consume-mode": {
                String topic = args.required("-t");
                String group = args.required("-g");
                String mode = args.one("--mode", "POP");
                int share = (int) args.number("--pop-share", 0);
                return perBroker(admin, args, addr -> {
                    Versioned.setMessageRequestMode(admin, addr, topic, group, mode, share);
                    Report.print(Json.op("set_consume_mode").put("addr", addr).put("topic", topic)
                        .put("group", group).put("mode", mode));
                });
            }
            case "delete-group": {
                String group = args.required("-g");
                return perBroker(admin, args, addr -> {
                    admin.deleteSubscriptionGroup(addr, group);
                    Report.print(Json.op("delete_group").put("addr", addr).put("group", group));
                });
            }
            case "create-topic": {
                TopicConfig config = new TopicConfig(args.required("-t"));
                int queues = (int) args.number("--queues", 8);
                config.setReadQueueNums(queues);
                config.setWriteQueueNums(queues);
                config.setPerm((int) args.number("--perm", 6));
                config.setOrder(args.has("--order"));
                return perBroker(admin, args, addr -> {
                    admin.createAndUpdateTopicConfig(addr, config);
                    Report.print(Json.op("create_topic").put("addr", addr)
                        .put("topic", config.getTopicName()).put("queues", queues));
                });
            }
            case "delete-topic": {
                String topic = args.required("-t");
                Set<String> masters = new HashSet<>(masters(admin));
                step("delete_topic_in_broker", () -> admin.deleteTopicInBroker(masters, topic));
                String cluster = args.has("-c") ? args.required("-c")
                    : admin.examineBrokerClusterInfo().getClusterAddrTable().keySet().iterator().next();
                step("delete_topic_in_namesrv", () -> admin.deleteTopicInNameServer(
                    new HashSet<>(List.of(args.required("-n").split(";"))), topic, cluster));
                Report.print(Json.op("delete_topic").put("topic", topic)
                    .put("brokers", Json.list(new TreeSet<>(masters))));
                return 0;
            }
            case "consumed-by": {
                var groups = admin.queryTopicConsumeByWho(args.required("-t"));
                Report.print(Json.op("consumed_by").put("topic", args.required("-t"))
                    .put("groups", Json.list(new TreeSet<>(groups.getGroupList()))));
                return 0;
            }
            case "clone-offset":
                admin.cloneGroupOffset(args.required("--src"), args.required("--dest"),
                    args.required("-t"), false);
                Report.print(Json.op("clone_offset").put("src", args.required("--src"))
                    .put("dest", args.required("--dest")).put("topic", args.required("-t")));
                return 0;
            case "system-topics":
                return systemTopics(admin);
            default:
                throw new Args.UsageException("unknown admin action " + action);
        }
    }

    interface BrokerAction {
        void run(String addr) throws Exception;
    }

    interface Step {
        void run() throws Exception;
    }

    /** Runs a step; a failure propagates after its `failed` line. */
    private static void step(String name, Step step) throws Exception {
        try {
            step.run();
        } catch (Exception e) {
            Report.print(Report.failure(name, e));
            throw new Reported(e);
        }
    }

    /** An error whose `failed` line was printed already. */
    static final class Reported extends Exception {
        Reported(Exception cause) {
            super(cause);
        }
    }

    /** Runs {@code action} on -b ADDR, or on every master; 1 if any failed. */
    private static int perBroker(DefaultMQAdminExt admin, Args args, BrokerAction action)
            throws Exception {
        List<String> addrs = new ArrayList<>();
        if (args.has("-b")) {
            addrs.add(args.required("-b"));
        } else {
            addrs.addAll(masters(admin));
        }
        int failures = 0;
        for (String addr : addrs) {
            try {
                action.run(addr);
            } catch (Exception e) {
                failures++;
                Report.print(Report.failure(args.words.get(0), e).put("addr", addr));
            }
        }
        return failures == 0 ? 0 : 1;
    }

    /** The address of every master (brokerId 0) the name servers know. */
    static List<String> masters(DefaultMQAdminExt admin) throws Exception {
        var info = admin.examineBrokerClusterInfo();
        List<String> out = new ArrayList<>();
        for (var broker : info.getBrokerAddrTable().values()) {
            String addr = broker.getBrokerAddrs().get(0L);
            if (addr != null) {
                out.add(addr);
            }
        }
        Collections.sort(out);
        return out;
    }

    private static Map<String, Object> sorted(Properties props) {
        Map<String, Object> out = new TreeMap<>();
        for (String k : props.stringPropertyNames()) {
            out.put(k, props.getProperty(k));
        }
        return out;
    }

    private static int cluster(DefaultMQAdminExt admin) throws Exception {
        var info = admin.examineBrokerClusterInfo();
        Map<String, Object> clusters = new TreeMap<>();
        for (var e : info.getClusterAddrTable().entrySet()) {
            clusters.put(e.getKey(), Json.list(new TreeSet<>(e.getValue())));
        }
        Map<String, Object> brokers = new TreeMap<>();
        for (var e : info.getBrokerAddrTable().entrySet()) {
            Map<String, Object> addrs = new TreeMap<>();
            for (var a : e.getValue().getBrokerAddrs().entrySet()) {
                addrs.put(String.valueOf(a.getKey()), a.getValue());
            }
            brokers.put(e.getKey(), new Json().put("cluster", e.getValue().getCluster())
                .put("addrs", addrs));
        }
        Report.print(Json.op("cluster").put("clusters", clusters).put("brokers", brokers));
        return 0;
    }

    private static int route(DefaultMQAdminExt admin, String topic) throws Exception {
        var route = admin.examineTopicRouteInfo(topic);
        List<Object> brokers = new ArrayList<>();
        for (var b : route.getBrokerDatas()) {
            Map<String, Object> addrs = new TreeMap<>();
            for (var a : b.getBrokerAddrs().entrySet()) {
                addrs.put(String.valueOf(a.getKey()), a.getValue());
            }
            brokers.add(new Json().put("broker_name", b.getBrokerName())
                .put("cluster", b.getCluster()).put("addrs", addrs));
        }
        List<Object> queues = new ArrayList<>();
        for (var q : route.getQueueDatas()) {
            queues.add(new Json().put("broker_name", q.getBrokerName())
                .put("read", q.getReadQueueNums()).put("write", q.getWriteQueueNums())
                .put("perm", q.getPerm()).put("sys_flag", q.getTopicSysFlag()));
        }
        Report.print(Json.op("route").put("topic", topic).put("brokers", brokers)
            .put("queues", queues).put("order_topic_conf", route.getOrderTopicConf()));
        return 0;
    }

    private static int topicStats(DefaultMQAdminExt admin, String topic) throws Exception {
        var stats = admin.examineTopicStats(topic);
        List<Object> queues = new ArrayList<>();
        for (var e : new TreeMap<>(stats.getOffsetTable()).entrySet()) {
            queues.add(Report.queueJson(e.getKey())
                .put("min_offset", e.getValue().getMinOffset())
                .put("max_offset", e.getValue().getMaxOffset())
                .put("last_update", e.getValue().getLastUpdateTimestamp()));
        }
        Report.print(Json.op("topic_stats").put("topic", topic).put("queues", queues));
        return 0;
    }

    private static int consumeStats(DefaultMQAdminExt admin, String group, String topic)
            throws Exception {
        var stats = topic == null ? admin.examineConsumeStats(group)
            : admin.examineConsumeStats(group, topic);
        List<Object> queues = new ArrayList<>();
        for (var e : new TreeMap<>(stats.getOffsetTable()).entrySet()) {
            queues.add(Report.queueJson(e.getKey())
                .put("broker_offset", e.getValue().getBrokerOffset())
                .put("consumer_offset", e.getValue().getConsumerOffset())
                .put("last_timestamp", e.getValue().getLastTimestamp()));
        }
        Report.print(Json.op("consume_stats").put("group", group).put("topic", topic)
            .put("consume_tps", stats.getConsumeTps()).put("diff_total", stats.computeTotalDiff())
            .put("queues", queues));
        return 0;
    }

    private static int queryKey(DefaultMQAdminExt admin, String topic, String key, int max)
            throws Exception {
        long now = System.currentTimeMillis();
        var result = admin.queryMessage(topic, key, max, now - QUERY_WINDOW_MS, now + QUERY_WINDOW_MS);
        for (MessageExt m : result.getMessageList()) {
            Report.print(Report.message("queried", m).put("looked_up", key));
        }
        Report.print(Json.op("query_done").put("key", key).put("count", result.getMessageList().size())
            .put("index_last_update", result.getIndexLastUpdateTimestamp()));
        return 0;
    }

    private static int offsets(DefaultMQAdminExt admin, String topic, long timestamp)
            throws Exception {
        var route = admin.examineTopicRouteInfo(topic);
        int failures = 0;
        for (var q : route.getQueueDatas()) {
            for (int id = 0; id < q.getReadQueueNums(); id++) {
                MessageQueue mq = new MessageQueue(topic, q.getBrokerName(), id);
                Json line = Json.op("offsets").putAll(Report.queueJson(mq));
                List<Object> errors = new ArrayList<>();
                try {
                    line.put("min_offset", admin.minOffset(mq));
                } catch (Exception e) {
                    errors.add(Report.failure("minOffset", e));
                }
                try {
                    line.put("max_offset", admin.maxOffset(mq));
                } catch (Exception e) {
                    errors.add(Report.failure("maxOffset", e));
                }
                try {
                    line.put("earliest_msg_store_time", admin.earliestMsgStoreTime(mq));
                } catch (Exception e) {
                    errors.add(Report.failure("earliestMsgStoreTime", e));
                }
                if (timestamp >= 0) {
                    try {
                        line.put("search_offset", admin.searchOffset(mq, timestamp));
                    } catch (Exception e) {
                        errors.add(Report.failure("searchOffset", e));
                    }
                }
                line.put("errors", errors);
                failures += errors.size();
                Report.print(line);
            }
        }
        return failures == 0 ? 0 : 1;
    }

    /** A push consumer of {@code group} on {@code topic} reporting `received` lines. */
    private static DefaultMQPushConsumer startConsumer(String namesrv, String topic, String group,
            String expr, Set<String> seen, AtomicInteger pass, AtomicInteger deliveries)
            throws Exception {
        DefaultMQPushConsumer c = Clients.configure(new DefaultMQPushConsumer(group), namesrv, false);
        c.subscribe(topic, expr);
        c.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        c.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
            for (MessageExt m : msgs) {
                deliveries.incrementAndGet();
                seen.add(pass.get() + "/" + Report.msgId(m));
                Report.print(Report.message("received", m).put("pass", pass.get())
                    .put("t_ms", Report.elapsedMs()));
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        c.start();
        return c;
    }

    private static long count(Set<String> seen, int pass) {
        return seen.stream().filter(s -> s.startsWith(pass + "/")).count();
    }

    private static boolean await(Set<String> seen, int pass, long expect, long deadline)
            throws InterruptedException {
        while (System.currentTimeMillis() < deadline) {
            if (count(seen, pass) >= expect) {
                return true;
            }
            Thread.sleep(50);
        }
        return false;
    }

    private static int resetOffset(DefaultMQAdminExt admin, Args args) throws Exception {
        String topic = args.required("-t");
        String group = args.required("-g");
        long timestamp = args.requiredNumber("--timestamp");
        boolean force = args.has("--force");
        DefaultMQPushConsumer consumer = null;
        Set<String> seen = ConcurrentHashMap.newKeySet();
        AtomicInteger pass = new AtomicInteger(1);
        long expect = 0;
        long deadline = 0;
        try {
            if (args.has("--with-consumer")) {
                expect = args.requiredNumber("--expect");
                deadline = System.currentTimeMillis() + args.requiredNumber("--timeout-secs") * 1000;
                consumer = startConsumer(args.required("-n"), topic, group, "*", seen, pass,
                    new AtomicInteger());
                if (!await(seen, 1, expect, deadline)) {
                    Report.print(Json.op("timeout").put("pass", 1).put("distinct", count(seen, 1)));
                    return 1;
                }
                // Let the consumer report its offsets so the broker's view is current.
                Thread.sleep(1000);
                pass.set(2);
            }
            Map<MessageQueue, Long> table;
            try {
                table = admin.resetOffsetByTimestamp(topic, group, timestamp, force);
            } catch (Exception e) {
                Report.print(Report.failure("resetOffsetByTimestamp", e));
                Integer code = Report.responseCode(e);
                // What mqadmin's resetOffsetByTime does when no consumer is online (206):
                // rewrite the stored offsets through the old path.
                if (args.has("--no-fallback") || code == null || code != 206) {
                    return 1;
                }
                var rolled = admin.resetOffsetByTimestampOld(group, topic, timestamp, force);
                List<Object> stats = new ArrayList<>();
                for (var r : rolled) {
                    stats.add(new Json().put("broker_name", r.getBrokerName())
                        .put("queue_id", r.getQueueId()).put("broker_offset", r.getBrokerOffset())
                        .put("consumer_offset", r.getConsumerOffset())
                        .put("timestamp_offset", r.getTimestampOffset())
                        .put("rollback_offset", r.getRollbackOffset()));
                }
                Report.print(Json.op("reset_offset_old").put("stats", stats));
                return 0;
            }
            List<Object> offsets = new ArrayList<>();
            for (var e : new TreeMap<>(table).entrySet()) {
                offsets.add(Report.queueJson(e.getKey()).put("offset", e.getValue()));
            }
            Report.print(Json.op("reset_offset").put("topic", topic).put("group", group)
                .put("timestamp", timestamp).put("offsets", offsets));
            if (consumer != null) {
                boolean again = await(seen, 2, expect, deadline);
                Report.print(Json.op(again ? "done" : "timeout").put("pass", 2)
                    .put("distinct", count(seen, 2)));
                return again ? 0 : 1;
            }
            return 0;
        } finally {
            if (consumer != null) {
                consumer.shutdown();
            }
        }
    }

    private static int consumerInfo(DefaultMQAdminExt admin, Args args) throws Exception {
        String topic = args.required("-t");
        String group = args.required("-g");
        Set<String> seen = ConcurrentHashMap.newKeySet();
        DefaultMQPushConsumer consumer = startConsumer(args.required("-n"), topic, group,
            args.one("--expr", "*"), seen, new AtomicInteger(1), new AtomicInteger());
        int failures = 0;
        try {
            // The consumer's first heartbeat goes out at start; give the broker a moment.
            Thread.sleep(2000);
            List<String> clientIds = new ArrayList<>();
            try {
                var cc = admin.examineConsumerConnectionInfo(group);
                List<Object> conns = new ArrayList<>();
                for (var c : cc.getConnectionSet()) {
                    clientIds.add(c.getClientId());
                    conns.add(new Json().put("client_id", c.getClientId())
                        .put("client_addr", c.getClientAddr())
                        .put("language", String.valueOf(c.getLanguage()))
                        .put("version", c.getVersion()));
                }
                Map<String, Object> subs = new TreeMap<>();
                for (var e : cc.getSubscriptionTable().entrySet()) {
                    subs.put(e.getKey(), new Json().put("expression", e.getValue().getSubString())
                        .put("tags", Json.list(e.getValue().getTagsSet()))
                        .put("codes", Json.list(e.getValue().getCodeSet()))
                        .put("type", e.getValue().getExpressionType()));
                }
                Report.print(Json.op("consumer_connection").put("group", group)
                    .put("connections", conns).put("subscriptions", subs)
                    .put("consume_type", String.valueOf(cc.getConsumeType()))
                    .put("message_model", String.valueOf(cc.getMessageModel()))
                    .put("consume_from_where", String.valueOf(cc.getConsumeFromWhere())));
            } catch (Exception e) {
                failures++;
                Report.print(Report.failure("examineConsumerConnectionInfo", e));
            }
            for (String clientId : clientIds) {
                try {
                    var info = admin.getConsumerRunningInfo(group, clientId, false);
                    List<Object> queues = new ArrayList<>();
                    for (var mq : info.getMqTable().keySet()) {
                        queues.add(Report.queue(mq));
                    }
                    List<Object> subs = new ArrayList<>();
                    for (var s : info.getSubscriptionSet()) {
                        subs.add(s.getTopic() + " " + s.getSubString());
                    }
                    Report.print(Json.op("consumer_running_info").put("client_id", clientId)
                        .put("properties", sorted(info.getProperties()))
                        .put("subscriptions", subs).put("queues", queues));
                } catch (Exception e) {
                    failures++;
                    Report.print(Report.failure("getConsumerRunningInfo", e)
                        .put("client_id", clientId));
                }
            }
            try {
                var status = admin.getConsumeStatus(topic, group, "");
                Map<String, Object> byClient = new TreeMap<>();
                for (var e : status.entrySet()) {
                    Map<String, Object> offsets = new TreeMap<>();
                    for (var q : e.getValue().entrySet()) {
                        offsets.put(Report.queue(q.getKey()), q.getValue());
                    }
                    byClient.put(e.getKey(), offsets);
                }
                Report.print(Json.op("consume_status").put("clients", byClient));
            } catch (Exception e) {
                failures++;
                Report.print(Report.failure("getConsumeStatus", e));
            }
            String directId = args.one("--direct-msg-id", null);
            if (directId != null) {
                for (String clientId : clientIds) {
                    try {
                        var r = admin.consumeMessageDirectly(group, clientId, topic, directId);
                        Report.print(Json.op("consume_message_directly").put("client_id", clientId)
                            .put("result", String.valueOf(r.getConsumeResult()))
                            .put("remark", r.getRemark()).put("order", r.isOrder()));
                    } catch (Exception e) {
                        failures++;
                        Report.print(Report.failure("consumeMessageDirectly", e)
                            .put("client_id", clientId));
                    }
                }
            }
        } finally {
            consumer.shutdown();
        }
        return failures == 0 ? 0 : 1;
    }

    private static int producerInfo(DefaultMQAdminExt admin, Args args) throws Exception {
        String topic = args.required("-t");
        String group = args.required("-g");
        DefaultMQProducer producer = Clients.configure(new DefaultMQProducer(group),
            args.required("-n"), false);
        producer.setRetryTimesWhenSendFailed(0);
        producer.start();
        try {
            var sent = producer.send(new Message(topic, "producer-info".getBytes()));
            Report.print(Json.op("sent").putAll(Report.sendResult(sent)));
            // 4.9.8 heartbeats only every 30 s, and its first one went out before it knew any
            // broker: heartbeat now, so the broker knows the group (5.x does this itself).
            producer.getDefaultMQProducerImpl().getMqClientFactory().sendHeartbeatToAllBrokerWithLock();
            var pc = admin.examineProducerConnectionInfo(group, topic);
            List<Object> conns = new ArrayList<>();
            for (var c : pc.getConnectionSet()) {
                conns.add(new Json().put("client_id", c.getClientId())
                    .put("client_addr", c.getClientAddr())
                    .put("language", String.valueOf(c.getLanguage()))
                    .put("version", c.getVersion()));
            }
            Report.print(Json.op("producer_connection").put("group", group).put("connections", conns));
            return 0;
        } catch (Exception e) {
            Report.print(Report.failure("examineProducerConnectionInfo", e));
            return 1;
        } finally {
            producer.shutdown();
        }
    }

    /** The client API's getSystemTopicList, reached through the admin's client instance. */
    private static int systemTopics(DefaultMQAdminExt admin) throws Exception {
        Field implField = DefaultMQAdminExt.class.getDeclaredField("defaultMQAdminExtImpl");
        implField.setAccessible(true);
        Object impl = implField.get(admin);
        Field instanceField = impl.getClass().getDeclaredField("mqClientInstance");
        instanceField.setAccessible(true);
        Object instance = instanceField.get(impl);
        Object api = Versioned.call(instance, "getMQClientAPIImpl");
        try {
            Object list = Versioned.call(api, "getSystemTopicList", 5000L);
            @SuppressWarnings("unchecked")
            Set<String> topics = (Set<String>) Versioned.call(list, "getTopicList");
            Report.print(Json.op("system_topics").put("topics", Json.list(new TreeSet<>(topics))));
            return 0;
        } catch (Exception e) {
            Report.print(Report.failure("getSystemTopicList", e));
            return 1;
        }
    }
}
