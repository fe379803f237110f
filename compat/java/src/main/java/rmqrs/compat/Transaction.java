package rmqrs.compat;

import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.rocketmq.client.producer.LocalTransactionState;
import org.apache.rocketmq.client.producer.TransactionListener;
import org.apache.rocketmq.client.producer.TransactionMQProducer;
import org.apache.rocketmq.client.producer.TransactionSendResult;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;

/**
 * {@code transaction}: a TransactionMQProducer sending four transactional messages whose
 * local transactions end differently: {@code commit} (COMMIT_MESSAGE), {@code rollback}
 * (ROLLBACK_MESSAGE), {@code check-commit} and {@code check-rollback} (UNKNOW; the check
 * listener answers COMMIT_MESSAGE and ROLLBACK_MESSAGE when the broker checks them back).
 * Bodies are `TOPIC:NAME`, tag `TagTx`, key `tx-NAME`.
 *
 * <p>Prints a `sent` line per message (send result, local state), a `checked` line per check
 * (body, message id, transaction id, how often this message was checked), and `done` once
 * both unknown transactions were checked, or after --timeout-secs (exit 1 then). It lingers
 * --linger-ms after the last expected check so its answer leaves and a second check shows.
 */
final class Transaction {
    private Transaction() {}

    private static final String[] NAMES = {"commit", "rollback", "check-commit", "check-rollback"};

    static int run(Args args) throws Exception {
        args.only("-n", "-t", "--group", "--timeout-secs", "--linger-ms");
        String namesrv = args.required("-n");
        String topic = args.required("-t");
        long timeoutSecs = args.number("--timeout-secs", 60);
        long lingerMs = args.number("--linger-ms", 1000);
        Map<String, AtomicInteger> checks = new ConcurrentHashMap<>();
        CountDownLatch checked = new CountDownLatch(2);

        TransactionMQProducer producer = Clients.configure(
            new TransactionMQProducer(args.one("--group", "java_driver_tx_producer")), namesrv,
            false);
        producer.setSendMsgTimeout(10_000);
        producer.setTransactionListener(new TransactionListener() {
            @Override
            public LocalTransactionState executeLocalTransaction(Message msg, Object arg) {
                String name = name(msg.getBody());
                if (name.equals("commit")) {
                    return LocalTransactionState.COMMIT_MESSAGE;
                }
                if (name.equals("rollback")) {
                    return LocalTransactionState.ROLLBACK_MESSAGE;
                }
                return LocalTransactionState.UNKNOW;
            }

            @Override
            public LocalTransactionState checkLocalTransaction(MessageExt msg) {
                String name = name(msg.getBody());
                int times = checks.computeIfAbsent(name, k -> new AtomicInteger()).incrementAndGet();
                Report.print(Json.op("checked").put("name", name)
                    .put("body", new String(msg.getBody(), StandardCharsets.UTF_8))
                    .put("msg_id", msg.getMsgId()).put("transaction_id", msg.getTransactionId())
                    .put("topic", msg.getTopic()).put("times", times));
                if (times == 1 && name.startsWith("check-")) {
                    checked.countDown();
                }
                if (name.equals("check-commit")) {
                    return LocalTransactionState.COMMIT_MESSAGE;
                }
                if (name.equals("check-rollback")) {
                    return LocalTransactionState.ROLLBACK_MESSAGE;
                }
                return LocalTransactionState.UNKNOW;
            }
        });
        Report.print(Clients.started("transaction"));
        producer.start();
        int failures = 0;
        try {
            for (String name : NAMES) {
                Message m = new Message(topic, "TagTx", "tx-" + name,
                    (topic + ":" + name).getBytes(StandardCharsets.UTF_8));
                try {
                    TransactionSendResult r = producer.sendMessageInTransaction(m, null);
                    Report.print(Json.op("sent").put("name", name).putAll(Report.sendResult(r))
                        .put("transaction_id", r.getTransactionId())
                        .put("local_state", String.valueOf(r.getLocalTransactionState())));
                } catch (Exception e) {
                    failures++;
                    Report.print(Report.failure("send", e).put("op", "send_failed")
                        .put("name", name));
                }
            }
            if (!checked.await(timeoutSecs, TimeUnit.SECONDS)) {
                failures++;
                Report.print(Json.op("failed").put("step", "check")
                    .put("error", "unknown transactions not checked back within "
                        + timeoutSecs + " s: " + checked.getCount() + " left"));
            }
            Thread.sleep(lingerMs);
        } finally {
            producer.shutdown();
        }
        Report.print(Json.op("done").put("failed", failures));
        return failures == 0 ? 0 : 1;
    }

    /** The part of a body after `TOPIC:`. */
    private static String name(byte[] body) {
        String text = new String(body, StandardCharsets.UTF_8);
        return text.substring(text.indexOf(':') + 1);
    }
}
