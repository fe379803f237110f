package rmqrs.compat;

import java.nio.charset.StandardCharsets;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageAccessor;
import org.apache.rocketmq.common.message.MessageExt;

/**
 * {@code timer}: RocketMQ 5 timer messages. Sends COUNT messages (bodies {@code timer-SEQ})
 * due FIRST_MS + SEQ * STEP_MS from now, latest first: with 5.x's
 * {@code Message.setDeliverTimeMs}, with 4.9.8 (which predates it) by the property it sets,
 * {@code TIMER_DELIVER_MS}. With {@code --recall} (5.x only) one more message
 * ({@code recalled}) is sent due as late as the last and cancelled with
 * {@code DefaultMQProducer.recallMessage} and its send result's recall handle. A push
 * consumer then takes everything from the topic's first offset.
 *
 * <p>Lines: {@code sent} per send ({@code body}, {@code deliver_ms}, {@code msg_id},
 * {@code recall_handle}), {@code recalled} ({@code msg_id} or {@code error}),
 * {@code received} per message ({@code body}, {@code store_ms}, {@code deliver_property}),
 * then {@code done} ({@code received}, {@code expected}). Exit 1 unless every timer message
 * arrived before the timeout.
 */
final class Timer {
    private Timer() {}

    static int run(Args args) throws Exception {
        args.only("-n", "-t", "-c", "--group", "--first-ms", "--step-ms", "--recall",
            "--timeout-secs", "--linger-ms");
        String namesrv = args.required("-n");
        String topic = args.required("-t");
        long count = args.requiredNumber("-c");
        String group = args.one("--group", "timer-" + topic);
        long firstMs = args.number("--first-ms", 2_000);
        long stepMs = args.number("--step-ms", 300);
        boolean recall = args.has("--recall");
        long timeoutSecs = args.number("--timeout-secs", 60);
        long lingerMs = args.number("--linger-ms", 1_000);
        if (count < 1 || count > 1000) {
            throw new Args.UsageException("-c must be 1..1000");
        }
        Report.print(Clients.started("timer").put("topic", topic).put("count", count));

        DefaultMQProducer producer = Clients.configure(new DefaultMQProducer(group), namesrv, false);
        producer.start();
        long base = System.currentTimeMillis();
        for (long seq = count - 1; seq >= 0; seq--) {
            send(producer, topic, "timer-" + seq, base + firstMs + seq * stepMs);
        }
        if (recall) {
            String handle = send(producer, topic, "recalled", base + firstMs + (count - 1) * stepMs);
            Json line = Json.op("recalled");
            try {
                line.put("msg_id", String.valueOf(Versioned.call(producer, "recallMessage", topic, handle)));
            } catch (Exception e) {
                line.put("error_class", e.getClass().getName()).put("error", String.valueOf(e.getMessage()));
            }
            Report.print(line);
        }

        Set<String> seen = ConcurrentHashMap.newKeySet();
        DefaultMQPushConsumer consumer =
            Clients.configure(new DefaultMQPushConsumer(group + "-consumer"), namesrv, false);
        consumer.subscribe(topic, "*");
        consumer.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        consumer.registerMessageListener((MessageListenerConcurrently) (msgs, context) -> {
            for (MessageExt msg : msgs) {
                String body = new String(msg.getBody(), StandardCharsets.UTF_8);
                seen.add(body);
                Report.print(Json.op("received").put("body", body)
                    .put("store_ms", msg.getStoreTimestamp())
                    .put("deliver_property", msg.getProperty("TIMER_DELIVER_MS")));
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        consumer.start();
        long deadline = System.currentTimeMillis() + timeoutSecs * 1000;
        while (System.currentTimeMillis() < deadline && !allSeen(seen, count)) {
            Thread.sleep(100);
        }
        // Long enough for a recalled message that was wrongly delivered to show up.
        Thread.sleep(lingerMs);
        consumer.shutdown();
        producer.shutdown();
        boolean ok = allSeen(seen, count);
        Report.print(Json.op("done").put("received", (long) seen.size()).put("expected", count)
            .put("ok", ok));
        return ok ? 0 : 1;
    }

    private static boolean allSeen(Set<String> seen, long count) {
        for (long seq = 0; seq < count; seq++) {
            if (!seen.contains("timer-" + seq)) {
                return false;
            }
        }
        return true;
    }

    /** Sends one timer message; returns its recall handle (null before 5.x). */
    private static String send(DefaultMQProducer producer, String topic, String body, long deliverMs)
        throws Exception {
        Message msg = new Message(topic, body.getBytes(StandardCharsets.UTF_8));
        try {
            Versioned.call(msg, "setDeliverTimeMs", deliverMs);
        } catch (NoSuchMethodException before5) {
            MessageAccessor.putProperty(msg, "TIMER_DELIVER_MS", String.valueOf(deliverMs));
        }
        SendResult result = producer.send(msg);
        String handle = null;
        try {
            Object h = Versioned.call(result, "getRecallHandle");
            handle = h == null ? null : h.toString();
        } catch (NoSuchMethodException before5) {
            // 4.9.8's SendResult has no recall handle
        }
        Report.print(Json.op("sent").put("body", body).put("deliver_ms", deliverMs)
            .put("msg_id", result.getMsgId()).put("status", result.getSendStatus().name())
            .put("recall_handle", handle));
        return handle;
    }
}
