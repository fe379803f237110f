package rmqrs.compat;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.rocketmq.client.consumer.AllocateMessageQueueStrategy;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.MessageSelector;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.ConsumeOrderlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.consumer.listener.MessageListenerOrderly;
import org.apache.rocketmq.client.consumer.rebalance.AllocateMessageQueueAveragely;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;

/**
 * {@code consume}: DefaultMQPushConsumer instances (--instances, 1 by default) in one group.
 *
 * <p>Lines: `allocated` whenever the client's rebalance gives an instance a different set of
 * queues of a topic (the group's %RETRY% topic included); `received` for each accepted
 * delivery (with `instance`, `delivery` (1 for the first delivery of that message id to that
 * instance) and `duplicate`); `refused` for each delivery the listener refuses (RECONSUME_LATER,
 * or SUSPEND_CURRENT_QUEUE_A_MOMENT when --orderly); `instance_stopped` when
 * --stop-instance-after N shuts the last instance down after N accepted messages; `done` (or
 * `timeout`, exit 1) at the end.
 *
 * <p>Done when --expect N distinct message ids were accepted (by every instance when
 * --broadcast), or with --fail-always when --expect-refusals R refusals were made, then after
 * lingering --linger-ms for late extras. --fail-first K refuses the first K deliveries of each
 * message. Consumers start from the first offset of a new group unless --from last. With --pop
 * (5.x) the consumers leave rebalancing to the broker and pop when it says POP.
 */
final class Consume {
    private Consume() {}

    /** What all instances saw. */
    private static final class Tally {
        final Map<Integer, Set<String>> acceptedBy = new ConcurrentHashMap<>();
        final Set<String> accepted = ConcurrentHashMap.newKeySet();
        final Map<String, AtomicInteger> deliveries = new ConcurrentHashMap<>();
        final AtomicInteger acceptedDeliveries = new AtomicInteger();
        final AtomicInteger refusals = new AtomicInteger();
    }

    static int run(Args args) throws Exception {
        args.only("-n", "-t", "-g", "--expr", "--sql", "--expect", "--timeout-secs", "--linger-ms",
            "--orderly", "--broadcast", "--instances", "--stop-instance-after", "--fail-first",
            "--fail-always", "--expect-refusals", "--max-reconsume-times", "--consume-delay-ms",
            "--threads", "--from", "--vip", "--pop");
        String namesrv = args.required("-n");
        String topic = args.required("-t");
        String group = args.required("-g");
        String expr = args.one("--expr", "*");
        String sql = args.one("--sql", null);
        boolean failAlways = args.has("--fail-always");
        long expect = failAlways ? args.number("--expect", 0) : args.requiredNumber("--expect");
        long expectRefusals = failAlways ? args.requiredNumber("--expect-refusals") : 0;
        long timeoutMs = args.requiredNumber("--timeout-secs") * 1000;
        long lingerMs = args.number("--linger-ms", 0);
        boolean orderly = args.has("--orderly");
        boolean broadcast = args.has("--broadcast");
        int instances = (int) args.number("--instances", 1);
        long stopAfter = args.number("--stop-instance-after", -1);
        long failFirst = args.number("--fail-first", 0);
        long delayMs = args.number("--consume-delay-ms", 0);
        String from = args.one("--from", "first");
        if (instances < 1 || instances > 8) {
            throw new Args.UsageException("--instances must be 1..8");
        }
        if (stopAfter >= 0 && instances < 2) {
            throw new Args.UsageException("--stop-instance-after needs --instances 2 or more");
        }

        Report.print(Clients.started("consume").put("orderly", orderly).put("broadcast", broadcast)
            .put("instances", instances).put("expr", expr).put("sql", sql));
        Tally tally = new Tally();
        List<DefaultMQPushConsumer> consumers = new ArrayList<>();
        for (int i = 0; i < instances; i++) {
            final int instance = i;
            tally.acceptedBy.put(i, ConcurrentHashMap.newKeySet());
            DefaultMQPushConsumer c = Clients.configure(new DefaultMQPushConsumer(group), namesrv,
                args.has("--vip"));
            if (sql != null) {
                c.subscribe(topic, MessageSelector.bySql(sql));
            } else {
                c.subscribe(topic, expr);
            }
            c.setConsumeFromWhere("last".equals(from) ? ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET
                : ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
            if (broadcast) {
                Versioned.setMessageModel(c, "BROADCASTING");
            }
            if (args.has("--pop")) {
                // 5.x: leave rebalancing to the broker, which answers POP for the topic
                // (mqadmin setConsumeMode); the consumer then pops and acknowledges.
                Versioned.call(c, "setClientRebalance", false);
            }
            if (args.has("--max-reconsume-times")) {
                c.setMaxReconsumeTimes((int) args.number("--max-reconsume-times", 16));
            }
            if (args.has("--threads")) {
                int threads = (int) args.number("--threads", 20);
                c.setConsumeThreadMin(threads);
                c.setConsumeThreadMax(threads);
            }
            c.setAllocateMessageQueueStrategy(new ReportingAllocation(instance));
            if (orderly) {
                c.registerMessageListener((MessageListenerOrderly) (msgs, context) -> {
                    boolean ok = handle(tally, instance, msgs, failAlways, failFirst, delayMs);
                    return ok ? ConsumeOrderlyStatus.SUCCESS
                        : ConsumeOrderlyStatus.SUSPEND_CURRENT_QUEUE_A_MOMENT;
                });
            } else {
                c.registerMessageListener((MessageListenerConcurrently) (msgs, context) -> {
                    boolean ok = handle(tally, instance, msgs, failAlways, failFirst, delayMs);
                    return ok ? ConsumeConcurrentlyStatus.CONSUME_SUCCESS
                        : ConsumeConcurrentlyStatus.RECONSUME_LATER;
                });
            }
            consumers.add(c);
        }
        for (DefaultMQPushConsumer c : consumers) {
            c.start();
        }

        long deadline = System.currentTimeMillis() + timeoutMs;
        boolean stopped = false;
        boolean complete = false;
        while (System.currentTimeMillis() < deadline) {
            if (!stopped && stopAfter >= 0 && tally.accepted.size() >= stopAfter) {
                stopped = true;
                DefaultMQPushConsumer last = consumers.get(consumers.size() - 1);
                last.shutdown();
                Report.print(Json.op("instance_stopped").put("instance", consumers.size() - 1)
                    .put("accepted_so_far", tally.accepted.size()).put("t_ms", Report.elapsedMs()));
            }
            if (failAlways ? tally.refusals.get() >= expectRefusals
                    : complete(tally, expect, broadcast, instances)) {
                complete = true;
                break;
            }
            Thread.sleep(50);
        }
        if (complete && lingerMs > 0) {
            Thread.sleep(lingerMs);
        }
        for (int i = 0; i < consumers.size(); i++) {
            if (!(stopped && i == consumers.size() - 1)) {
                consumers.get(i).shutdown();
            }
        }
        Map<String, Object> perInstance = new HashMap<>();
        for (Map.Entry<Integer, Set<String>> e : tally.acceptedBy.entrySet()) {
            perInstance.put(String.valueOf(e.getKey()), e.getValue().size());
        }
        Report.print(Json.op(complete ? "done" : "timeout")
            .put("distinct", tally.accepted.size())
            .put("accepted_deliveries", tally.acceptedDeliveries.get())
            .put("refusals", tally.refusals.get())
            .put("distinct_by_instance", perInstance)
            .put("t_ms", Report.elapsedMs()));
        return complete ? 0 : 1;
    }

    private static boolean complete(Tally tally, long expect, boolean broadcast, int instances) {
        if (!broadcast) {
            return tally.accepted.size() >= expect;
        }
        for (int i = 0; i < instances; i++) {
            if (tally.acceptedBy.get(i).size() < expect) {
                return false;
            }
        }
        return true;
    }

    /** Reports a listener call's messages; false to refuse them. */
    private static boolean handle(Tally tally, int instance, List<MessageExt> msgs,
            boolean failAlways, long failFirst, long delayMs) {
        boolean accept = true;
        List<Json> lines = new ArrayList<>();
        for (MessageExt m : msgs) {
            String id = Report.msgId(m);
            int delivery = tally.deliveries.computeIfAbsent(instance + "/" + id,
                k -> new AtomicInteger()).incrementAndGet();
            if (failAlways || delivery <= failFirst) {
                accept = false;
            }
            lines.add(Report.message("received", m).put("instance", instance)
                .put("delivery", delivery).put("batch", msgs.size()));
        }
        if (delayMs > 0) {
            try {
                Thread.sleep(delayMs * msgs.size());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        for (int i = 0; i < msgs.size(); i++) {
            Json line = lines.get(i);
            if (accept) {
                String id = Report.msgId(msgs.get(i));
                boolean fresh = tally.acceptedBy.get(instance).add(id);
                tally.accepted.add(id);
                tally.acceptedDeliveries.incrementAndGet();
                Report.print(line.put("duplicate", !fresh).put("t_ms", Report.elapsedMs()));
            } else {
                tally.refusals.incrementAndGet();
                Report.print(line.put("op", "refused").put("t_ms", Report.elapsedMs()));
            }
        }
        return accept;
    }

    /** Averaged allocation, reporting each change of an instance's queues per topic. */
    private static final class ReportingAllocation implements AllocateMessageQueueStrategy {
        private final AllocateMessageQueueAveragely inner = new AllocateMessageQueueAveragely();
        private final int instance;
        private final Map<String, Set<String>> last = new HashMap<>();

        ReportingAllocation(int instance) {
            this.instance = instance;
        }

        @Override
        public synchronized List<MessageQueue> allocate(String group, String currentCID,
                List<MessageQueue> mqAll, List<String> cidAll) {
            List<MessageQueue> mine = inner.allocate(group, currentCID, mqAll, cidAll);
            String topic = mqAll.isEmpty() ? "" : mqAll.get(0).getTopic();
            Set<String> queues = new TreeSet<>();
            for (MessageQueue mq : mine) {
                queues.add(Report.queue(mq));
            }
            if (!queues.equals(last.get(topic))) {
                last.put(topic, queues);
                Report.print(Json.op("allocated").put("instance", instance).put("topic", topic)
                    .put("client_id", currentCID).put("consumers", Json.list(cidAll))
                    .put("queues", Json.list(queues)).put("all_queues", mqAll.size())
                    .put("t_ms", Report.elapsedMs()));
            }
            return mine;
        }

        @Override
        public String getName() {
            return "AVG_REPORTING";
        }
    }
}
