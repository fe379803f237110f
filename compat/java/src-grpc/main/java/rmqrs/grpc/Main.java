package rmqrs.grpc;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.rocketmq.client.apis.ClientConfiguration;
import org.apache.rocketmq.client.apis.ClientConfigurationBuilder;
import org.apache.rocketmq.client.apis.ClientServiceProvider;
import org.apache.rocketmq.client.apis.StaticSessionCredentialsProvider;
import org.apache.rocketmq.client.apis.consumer.ConsumeResult;
import org.apache.rocketmq.client.apis.consumer.FilterExpression;
import org.apache.rocketmq.client.apis.consumer.FilterExpressionType;
import org.apache.rocketmq.client.apis.consumer.PushConsumer;
import org.apache.rocketmq.client.apis.consumer.SimpleConsumer;
import org.apache.rocketmq.client.apis.message.Message;
import org.apache.rocketmq.client.apis.message.MessageView;
import org.apache.rocketmq.client.apis.producer.Producer;
import org.apache.rocketmq.client.apis.producer.SendReceipt;
import org.apache.rocketmq.client.apis.producer.Transaction;
import org.apache.rocketmq.client.apis.producer.TransactionResolution;

/**
 * Drives Apache's RocketMQ 5 gRPC client (rocketmq-client-java), unmodified, against a broker
 * that serves gRPC itself. One JSON object per line on stdout; exit 0 on success, 1 on a
 * failure (a `failed` line says why), 2 on a usage error.
 *
 * <pre>
 * Every command takes --tls: TLS on, as the client's default is (off otherwise).
 * produce --endpoints E -t TOPIC -c COUNT [--tag T] [--delay-ms MS] [--interval-ms MS]
 *         [--message-groups N]
 *     Producer.send, one message at a time: body `TOPIC:SEQ`, user property seq, key K-SEQ,
 *     with N message groups each message in group G(SEQ mod N) (a FIFO message); a send that
 *     fails after the client's retries is a `send_failed` line.
 * simple  --endpoints E -t TOPIC -g GROUP --expect N --timeout-secs S [--nack-first]
 *     SimpleConsumer.receive (invisible 20 s) and ack; with --nack-first each message's first
 *     delivery gets changeInvisibleDuration(1 s) instead, and must come back. A receive that
 *     fails is a `receive_failed` line, an ack or change that fails an `ack_failed` line (the
 *     message comes back), and receiving goes on.
 * push    --endpoints E -t TOPIC -g GROUP --expect N --timeout-secs S [--fail-first]
 *     PushConsumer; with --fail-first the listener fails each message's first delivery.
 * transaction --endpoints E -t TOPIC [--timeout-secs S] [--linger-ms MS]
 *     A Producer with a TransactionChecker: one transaction per name of TRANSACTIONS (body
 *     `TOPIC:NAME`, tag TagTx, key tx-NAME): committed, rolled back, and two left open that
 *     the broker checks back (the checker answers COMMIT and ROLLBACK). Lines: `sent` per send
 *     (name, msg_id, transaction_id, status OK), `checked` per check (name, msg_id,
 *     transaction_id, topic, times), then `done` once both open ones were checked (after
 *     lingering MS, so a second check would show), or `timeout` (exit 1).
 * </pre>
 */
public final class Main {
    private Main() {}

    public static void main(String[] argv) {
        int code;
        try {
            code = run(argv);
        } catch (IllegalArgumentException e) {
            System.err.println("grpc-driver: " + e.getMessage());
            code = 2;
        } catch (Throwable e) {
            line(Map.of("op", "failed", "error", String.valueOf(e)));
            e.printStackTrace();
            code = 1;
        }
        System.out.flush();
        System.exit(code);
    }

    private static int run(String[] argv) throws Exception {
        if (argv.length == 0) {
            throw new IllegalArgumentException("usage: produce|simple|push --endpoints E ...");
        }
        Map<String, String> flags = new HashMap<>();
        for (int i = 1; i < argv.length; i++) {
            String key = argv[i];
            if (key.equals("--nack-first") || key.equals("--fail-first") || key.equals("--tls")) {
                flags.put(key, "true");
            } else if (i + 1 < argv.length) {
                flags.put(key, argv[++i]);
            } else {
                throw new IllegalArgumentException(key + " needs a value");
            }
        }
        ClientServiceProvider provider = ClientServiceProvider.loadService();
        ClientConfigurationBuilder builder = ClientConfiguration.newBuilder()
            .setEndpoints(required(flags, "--endpoints"))
            // The client's default is TLS (trusting any certificate); the broker serves both.
            .enableSsl(flags.containsKey("--tls"))
            .setRequestTimeout(Duration.ofSeconds(10));
        // ACL: the client signs its calls when credentials are in the environment.
        String accessKey = System.getenv("ROCKETMQ_ACCESS_KEY");
        String secretKey = System.getenv("ROCKETMQ_SECRET_KEY");
        if (accessKey != null && secretKey != null) {
            builder.setCredentialProvider(new StaticSessionCredentialsProvider(accessKey, secretKey));
        }
        ClientConfiguration config = builder.build();
        String topic = required(flags, "-t");
        switch (argv[0]) {
            case "produce":
                return produce(provider, config, topic, flags);
            case "simple":
                return simple(provider, config, topic, flags);
            case "push":
                return push(provider, config, topic, flags);
            case "transaction":
                return transaction(provider, config, topic, flags);
            default:
                throw new IllegalArgumentException("unknown command " + argv[0]);
        }
    }

    private static int produce(ClientServiceProvider provider, ClientConfiguration config,
            String topic, Map<String, String> flags) throws Exception {
        int count = Integer.parseInt(required(flags, "-c"));
        long delayMs = Long.parseLong(flags.getOrDefault("--delay-ms", "0"));
        long intervalMs = Long.parseLong(flags.getOrDefault("--interval-ms", "0"));
        int messageGroups = Integer.parseInt(flags.getOrDefault("--message-groups", "0"));
        int failed = 0;
        try (Producer producer = provider.newProducerBuilder().setClientConfiguration(config)
                .setTopics(topic).build()) {
            line(Map.of("op", "started", "command", "produce"));
            for (int seq = 0; seq < count; seq++) {
                var builder = provider.newMessageBuilder().setTopic(topic)
                    .setKeys("K-" + seq).addProperty("seq", String.valueOf(seq))
                    .setBody((topic + ":" + seq).getBytes(StandardCharsets.UTF_8));
                if (flags.containsKey("--tag")) {
                    builder.setTag(flags.get("--tag"));
                }
                String group = null;
                if (messageGroups > 0) {
                    group = "G" + (seq % messageGroups);
                    builder.setMessageGroup(group);
                }
                long deliver = 0;
                if (delayMs > 0) {
                    deliver = System.currentTimeMillis() + delayMs;
                    builder.setDeliveryTimestamp(deliver);
                }
                Message message = builder.build();
                if (intervalMs > 0) {
                    Thread.sleep(intervalMs);
                }
                SendReceipt receipt;
                try {
                    receipt = producer.send(message);
                } catch (Exception e) {
                    // Through a failover some sends fail after the client's own retries; only
                    // acknowledged ones must survive.
                    failed++;
                    line(Map.of("op", "send_failed", "seq", seq, "error", String.valueOf(e)));
                    continue;
                }
                Map<String, Object> sent = new HashMap<>();
                sent.put("op", "sent");
                sent.put("seq", seq);
                sent.put("msg_id", receipt.getMessageId().toString());
                sent.put("deliver_ms", deliver);
                if (group != null) {
                    sent.put("group", group);
                }
                line(sent);
            }
        }
        line(Map.of("op", "done", "sent", count - failed, "failed", failed));
        return 0;
    }

    private static int simple(ClientServiceProvider provider, ClientConfiguration config,
            String topic, Map<String, String> flags) throws Exception {
        String group = required(flags, "-g");
        int expect = Integer.parseInt(required(flags, "--expect"));
        long deadline = System.currentTimeMillis()
            + 1000L * Long.parseLong(required(flags, "--timeout-secs"));
        boolean nackFirst = flags.containsKey("--nack-first");
        Map<String, AtomicInteger> deliveries = new ConcurrentHashMap<>();
        Set<String> acked = ConcurrentHashMap.newKeySet();
        try (SimpleConsumer consumer = provider.newSimpleConsumerBuilder()
                .setClientConfiguration(config).setConsumerGroup(group)
                .setAwaitDuration(Duration.ofSeconds(5))
                .setSubscriptionExpressions(Map.of(topic,
                    new FilterExpression("*", FilterExpressionType.TAG)))
                .build()) {
            line(Map.of("op", "started", "command", "simple"));
            while (acked.size() < expect && System.currentTimeMillis() < deadline) {
                List<MessageView> views;
                try {
                    views = consumer.receive(16, Duration.ofSeconds(20));
                } catch (Exception e) {
                    // As an application would: through a failover receives fail for a
                    // moment; keep receiving.
                    line(Map.of("op", "receive_failed", "error", String.valueOf(e),
                        "at_ms", System.currentTimeMillis()));
                    Thread.sleep(200);
                    continue;
                }
                for (MessageView view : views) {
                    String id = view.getMessageId().toString();
                    int delivery = deliveries.computeIfAbsent(id, k -> new AtomicInteger())
                        .incrementAndGet();
                    Map<String, Object> received = describe(view, delivery);
                    try {
                        if (nackFirst && delivery == 1) {
                            consumer.changeInvisibleDuration(view, Duration.ofSeconds(1));
                            received.put("op", "nacked");
                        } else {
                            consumer.ack(view);
                            acked.add(id);
                            received.put("op", "received");
                        }
                    } catch (Exception e) {
                        // Through a failover an ack can fail; the message then comes back
                        // once its invisible time runs out.
                        received.put("op", "ack_failed");
                        received.put("error", String.valueOf(e));
                    }
                    line(received);
                }
            }
        }
        line(Map.of("op", acked.size() >= expect ? "done" : "timeout", "distinct", acked.size()));
        return acked.size() >= expect ? 0 : 1;
    }

    private static int push(ClientServiceProvider provider, ClientConfiguration config,
            String topic, Map<String, String> flags) throws Exception {
        String group = required(flags, "-g");
        int expect = Integer.parseInt(required(flags, "--expect"));
        long deadline = System.currentTimeMillis()
            + 1000L * Long.parseLong(required(flags, "--timeout-secs"));
        boolean failFirst = flags.containsKey("--fail-first");
        Map<String, AtomicInteger> deliveries = new ConcurrentHashMap<>();
        Set<String> accepted = ConcurrentHashMap.newKeySet();
        List<Map<String, Object>> lines = new ArrayList<>();
        PushConsumer consumer = provider.newPushConsumerBuilder().setClientConfiguration(config)
            .setConsumerGroup(group)
            .setSubscriptionExpressions(Map.of(topic,
                new FilterExpression("*", FilterExpressionType.TAG)))
            .setMessageListener(view -> {
                String id = view.getMessageId().toString();
                int delivery = deliveries.computeIfAbsent(id, k -> new AtomicInteger())
                    .incrementAndGet();
                Map<String, Object> received = describe(view, delivery);
                boolean refuse = failFirst && delivery == 1;
                received.put("op", refuse ? "refused" : "received");
                line(received);
                if (refuse) {
                    return ConsumeResult.FAILURE;
                }
                accepted.add(id);
                return ConsumeResult.SUCCESS;
            })
            .build();
        line(Map.of("op", "started", "command", "push"));
        while (accepted.size() < expect && System.currentTimeMillis() < deadline) {
            Thread.sleep(50);
        }
        // Let the last acknowledgements reach the broker.
        Thread.sleep(1000);
        consumer.close();
        line(Map.of("op", accepted.size() >= expect ? "done" : "timeout",
            "distinct", accepted.size()));
        return accepted.size() >= expect ? 0 : 1;
    }

    /** How each transaction ends: at once, or by the answer to the broker's check. */
    private static final String[] TRANSACTIONS = {"commit", "rollback", "check-commit", "check-rollback"};

    private static int transaction(ClientServiceProvider provider, ClientConfiguration config,
            String topic, Map<String, String> flags) throws Exception {
        long deadline = System.currentTimeMillis()
            + 1000L * Long.parseLong(flags.getOrDefault("--timeout-secs", "60"));
        long lingerMs = Long.parseLong(flags.getOrDefault("--linger-ms", "1000"));
        Map<String, AtomicInteger> checks = new ConcurrentHashMap<>();
        try (Producer producer = provider.newProducerBuilder().setClientConfiguration(config)
                .setTopics(topic)
                .setTransactionChecker(view -> {
                    ByteBuffer body = view.getBody();
                    byte[] bytes = new byte[body.remaining()];
                    body.get(bytes);
                    String text = new String(bytes, StandardCharsets.UTF_8);
                    String name = text.substring(text.indexOf(':') + 1);
                    int times = checks.computeIfAbsent(name, k -> new AtomicInteger()).incrementAndGet();
                    Map<String, Object> checked = new HashMap<>();
                    checked.put("op", "checked");
                    checked.put("name", name);
                    checked.put("msg_id", view.getMessageId().toString());
                    checked.put("topic", view.getTopic());
                    checked.put("times", times);
                    line(checked);
                    switch (name) {
                        case "check-commit": return TransactionResolution.COMMIT;
                        case "check-rollback": return TransactionResolution.ROLLBACK;
                        default: return TransactionResolution.UNKNOWN;
                    }
                })
                .build()) {
            line(Map.of("op", "started", "command", "transaction"));
            for (String name : TRANSACTIONS) {
                Message message = provider.newMessageBuilder().setTopic(topic).setTag("TagTx")
                    .setKeys("tx-" + name)
                    .setBody((topic + ":" + name).getBytes(StandardCharsets.UTF_8)).build();
                Transaction transaction = producer.beginTransaction();
                SendReceipt receipt = producer.send(message, transaction);
                Map<String, Object> sent = new HashMap<>();
                sent.put("op", "sent");
                sent.put("name", name);
                sent.put("status", "OK");
                sent.put("msg_id", receipt.getMessageId().toString());
                line(sent);
                if (name.equals("commit")) {
                    transaction.commit();
                } else if (name.equals("rollback")) {
                    transaction.rollback();
                }
            }
            while (!(checks.containsKey("check-commit") && checks.containsKey("check-rollback"))
                    && System.currentTimeMillis() < deadline) {
                Thread.sleep(50);
            }
            boolean checked = checks.containsKey("check-commit") && checks.containsKey("check-rollback");
            if (checked) {
                // The answers travel as EndTransaction calls; a second check would show here.
                Thread.sleep(lingerMs);
            }
            line(Map.of("op", checked ? "done" : "timeout", "checked", checks.size()));
            return checked ? 0 : 1;
        }
    }

    private static Map<String, Object> describe(MessageView view, int delivery) {
        ByteBuffer body = view.getBody();
        byte[] bytes = new byte[body.remaining()];
        body.get(bytes);
        Map<String, Object> out = new HashMap<>();
        out.put("msg_id", view.getMessageId().toString());
        out.put("topic", view.getTopic());
        out.put("body", new String(bytes, StandardCharsets.UTF_8));
        out.put("seq", view.getProperties().get("seq"));
        out.put("delivery_attempt", view.getDeliveryAttempt());
        out.put("delivery", delivery);
        out.put("at_ms", System.currentTimeMillis());
        out.put("tag", view.getTag().orElse(null));
        out.put("keys", String.join(" ", view.getKeys()));
        out.put("group", view.getMessageGroup().orElse(""));
        return out;
    }

    private static String required(Map<String, String> flags, String key) {
        String value = flags.get(key);
        if (value == null) {
            throw new IllegalArgumentException("missing " + key);
        }
        return value;
    }

    private static synchronized void line(Map<String, ?> fields) {
        StringBuilder out = new StringBuilder("{");
        boolean first = true;
        for (Map.Entry<String, ?> e : fields.entrySet()) {
            if (!first) {
                out.append(',');
            }
            first = false;
            out.append(quote(e.getKey())).append(':');
            Object v = e.getValue();
            if (v == null) {
                out.append("null");
            } else if (v instanceof Number || v instanceof Boolean) {
                out.append(v);
            } else {
                out.append(quote(v.toString()));
            }
        }
        System.out.println(out.append('}'));
    }

    private static String quote(String s) {
        StringBuilder out = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"': out.append("\\\""); break;
                case '\\': out.append("\\\\"); break;
                case '\n': out.append("\\n"); break;
                default:
                    if (c < 0x20) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
            }
        }
        return out.append('"').toString();
    }
}
