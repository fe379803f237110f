package rmqrs.compat;

import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.rocketmq.client.consumer.DefaultLitePullConsumer;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;

/**
 * {@code pull}: a DefaultLitePullConsumer.
 *
 * <p>{@code --mode subscribe} (default): subscribe(topic, expr) in the group, auto commit.
 * {@code --mode assign}: fetchMessageQueues (a `queues` line), assign all of them, then
 * optionally seek every queue (--seek OFFSET, --seek-begin, --seek-end; a `seeked` line each),
 * and with --pause-ms MS pause every queue, poll for MS (a `paused` line counting what came
 * anyway) and resume them (`resumed`). A seek that fails because the client closed its own
 * connection (a 5.x race) is retried: `seek_retried` lines.
 *
 * <p>Lines: `received` per message; with --commit (auto commit off) a `committed` line per
 * queue after commitSync(offsets, persist=true) of each queue's last received offset + 1, read
 * back with committed(queue) (QUERY_CONSUMER_OFFSET); `done` or `timeout` (exit 1). Done when
 * --expect N distinct message ids were received, after --linger-ms more.
 */
final class Pull {
    private Pull() {}

    static int run(Args args) throws Exception {
        args.only("-n", "-t", "-g", "--mode", "--expr", "--expect", "--timeout-secs", "--linger-ms",
            "--seek", "--seek-begin", "--seek-end", "--commit", "--pause-ms", "--from", "--vip");
        String namesrv = args.required("-n");
        String topic = args.required("-t");
        String group = args.required("-g");
        String mode = args.one("--mode", "subscribe");
        long expect = args.requiredNumber("--expect");
        long timeoutMs = args.requiredNumber("--timeout-secs") * 1000;
        long lingerMs = args.number("--linger-ms", 0);
        boolean commit = args.has("--commit");
        long pauseMs = args.number("--pause-ms", 0);
        boolean assign = "assign".equals(mode);
        if (!assign && !"subscribe".equals(mode)) {
            throw new Args.UsageException("--mode must be subscribe or assign");
        }
        if (!assign && (args.has("--seek") || args.has("--seek-begin") || args.has("--seek-end")
                || pauseMs > 0)) {
            throw new Args.UsageException("--seek*, --pause-ms are for --mode assign");
        }
        if (assign && args.has("--expr")) {
            throw new Args.UsageException("--expr is for --mode subscribe");
        }

        DefaultLitePullConsumer c = Clients.configure(new DefaultLitePullConsumer(group), namesrv,
            args.has("--vip"));
        c.setConsumeFromWhere("last".equals(args.one("--from", "first"))
            ? ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET : ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        c.setAutoCommit(!commit);
        c.setAutoCommitIntervalMillis(1000);
        c.setPollTimeoutMillis(500);
        Report.print(Clients.started("pull").put("mode", mode).put("commit", commit));
        if (!assign) {
            c.subscribe(topic, args.one("--expr", "*"));
        }
        c.start();
        long deadline = System.currentTimeMillis() + timeoutMs;
        Set<String> seen = new HashSet<>();
        Map<MessageQueue, Long> next = new HashMap<>();
        int exitCode = 0;
        try {
            List<MessageQueue> queues = new ArrayList<>();
            if (assign) {
                Collection<MessageQueue> fetched = c.fetchMessageQueues(topic);
                queues.addAll(fetched);
                queues.sort((a, b) -> Report.queue(a).compareTo(Report.queue(b)));
                List<Object> names = new ArrayList<>();
                for (MessageQueue mq : queues) {
                    names.add(Report.queue(mq));
                }
                Report.print(Json.op("queues").put("topic", topic).put("queues", names));
                c.assign(queues);
                if (pauseMs > 0) {
                    c.pause(queues);
                }
                for (MessageQueue mq : queues) {
                    String how = null;
                    if (args.has("--seek-begin")) {
                        how = "begin";
                    } else if (args.has("--seek-end")) {
                        how = "end";
                    } else if (args.has("--seek")) {
                        how = "offset";
                    }
                    if (how != null) {
                        seek(c, mq, how, args.number("--seek", 0));
                        Json line = Json.op("seeked").putAll(Report.queueJson(mq)).put("to", how);
                        if (how.equals("offset")) {
                            line.put("offset", args.number("--seek", 0));
                        }
                        Report.print(line);
                    }
                }
                if (pauseMs > 0) {
                    long until = System.currentTimeMillis() + pauseMs;
                    int whilePaused = 0;
                    while (System.currentTimeMillis() < until) {
                        for (MessageExt m : c.poll(200)) {
                            whilePaused++;
                            receive(m, seen, next, true);
                        }
                    }
                    Report.print(Json.op("paused").put("queues", queues.size())
                        .put("received_while_paused", whilePaused));
                    c.resume(queues);
                    Report.print(Json.op("resumed").put("queues", queues.size()));
                }
            }
            boolean complete = seen.size() >= expect;
            while (!complete && System.currentTimeMillis() < deadline) {
                for (MessageExt m : c.poll(500)) {
                    receive(m, seen, next, false);
                }
                complete = seen.size() >= expect;
            }
            if (complete && lingerMs > 0) {
                long until = System.currentTimeMillis() + lingerMs;
                while (System.currentTimeMillis() < until) {
                    for (MessageExt m : c.poll(200)) {
                        receive(m, seen, next, false);
                    }
                }
            }
            if (commit && !next.isEmpty()) {
                try {
                    c.commitSync(new HashMap<>(next), true);
                    for (MessageQueue mq : next.keySet()) {
                        Report.print(Json.op("committed").putAll(Report.queueJson(mq))
                            .put("offset", next.get(mq)).put("read_back", c.committed(mq)));
                    }
                } catch (Exception e) {
                    Report.print(Report.failure("commit", e));
                    exitCode = 1;
                }
            }
            Report.print(Json.op(complete ? "done" : "timeout").put("distinct", seen.size())
                .put("t_ms", Report.elapsedMs()));
            if (!complete) {
                exitCode = 1;
            }
        } finally {
            c.shutdown();
        }
        return exitCode;
    }

    /**
     * seek, seekToBegin or seekToEnd. 5.x cancels the queue's pull task with an interrupt; a
     * pull request the interrupt hits makes the client close the broker connection, and the
     * seek's own request on it (the queue's max offset) fails: the client's race, not the
     * broker's answer. Such a failure is retried (a `seek_retried` line), twice at most.
     */
    private static void seek(DefaultLitePullConsumer c, MessageQueue mq, String how, long offset)
            throws Exception {
        for (int attempt = 1; ; attempt++) {
            try {
                if (how.equals("begin")) {
                    c.seekToBegin(mq);
                } else if (how.equals("end")) {
                    c.seekToEnd(mq);
                } else {
                    c.seek(mq, offset);
                }
                return;
            } catch (Exception e) {
                if (attempt >= 3 || !sendFailed(e)) {
                    throw e;
                }
                Report.print(Report.failure("seek", e).put("op", "seek_retried")
                    .put("attempt", attempt).putAll(Report.queueJson(mq)));
                Thread.sleep(200);
            }
        }
    }

    /** Whether the request never got an answer because the client's connection failed. */
    private static boolean sendFailed(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c.getClass().getSimpleName().equals("RemotingSendRequestException")) {
                return true;
            }
        }
        return false;
    }

    private static void receive(MessageExt m, Set<String> seen, Map<MessageQueue, Long> next,
            boolean paused) {
        boolean fresh = seen.add(Report.msgId(m));
        MessageQueue mq = new MessageQueue(m.getTopic(), m.getBrokerName(), m.getQueueId());
        next.merge(mq, m.getQueueOffset() + 1, Math::max);
        Report.print(Report.message("received", m).put("duplicate", !fresh)
            .put("while_paused", paused).put("t_ms", Report.elapsedMs()));
    }
}
