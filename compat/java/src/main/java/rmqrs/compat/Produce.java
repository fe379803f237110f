package rmqrs.compat;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.MessageQueueSelector;
import org.apache.rocketmq.client.producer.SendCallback;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageClientIDSetter;

/**
 * {@code produce}: a DefaultMQProducer sending COUNT numbered messages.
 *
 * <p>Modes: {@code sync} (send, one `sent` line each), {@code async} (send with a callback,
 * all in flight at once; `sent` or `send_failed` lines as callbacks come), {@code oneway}
 * (sendOneway; `sent_oneway` lines with the client-made message id), {@code batch} (one send of
 * all messages; one `sent_batch` line) and {@code ordered} (send with a MessageQueueSelector
 * picking queue {@code (SEQ mod order-keys) mod queues}; `sent` lines with `order_key`).
 * {@code --interval-ms MS} paces sync, ordered and oneway sends (a producer that keeps
 * sending through a broker failure).
 * A final `done` line counts what was acknowledged. Exit 1 if any send failed.
 */
final class Produce {
    private Produce() {}

    /** The body of message {@code seq}: `TOPIC:SEQ:` padded with a..z to {@code bytes}. */
    static byte[] body(String topic, long seq, long bytes) {
        StringBuilder body = new StringBuilder(topic).append(':').append(seq).append(':');
        int index = 0;
        while (body.length() < bytes) {
            body.append((char) ('a' + index % 26));
            index++;
        }
        return body.toString().getBytes(StandardCharsets.UTF_8);
    }

    static int run(Args args) throws Exception {
        args.only("-n", "-t", "-c", "--mode", "--group", "--tag", "--key", "--prop", "--body-bytes",
            "--delay-level", "--vip", "--no-compress", "--order-keys", "--retries", "--timeout-ms",
            "--interval-ms");
        String namesrv = args.required("-n");
        String topic = args.required("-t");
        long count = args.requiredNumber("-c");
        String mode = args.one("--mode", "sync");
        if (!Arrays.asList("sync", "async", "oneway", "batch", "ordered").contains(mode)) {
            throw new Args.UsageException("--mode must be sync, async, oneway, batch or ordered");
        }
        if (count < 1 || count > 100_000) {
            throw new Args.UsageException("-c must be 1..100000");
        }
        long bodyBytes = args.number("--body-bytes", 0);
        if (bodyBytes > 16 * 1024 * 1024) {
            throw new Args.UsageException("--body-bytes must be at most 16 MiB");
        }
        List<String> tags = args.all("--tag");
        String key = args.one("--key", null);
        int delayLevel = (int) args.number("--delay-level", 0);
        long orderKeys = args.number("--order-keys", 4);
        List<String[]> props = new ArrayList<>();
        for (String p : args.all("--prop")) {
            int eq = p.indexOf('=');
            if (eq <= 0) {
                throw new Args.UsageException("--prop " + p + ": expected k=v");
            }
            props.add(new String[] {p.substring(0, eq), p.substring(eq + 1)});
        }
        boolean vip = args.has("--vip");
        long intervalMs = args.number("--interval-ms", 0);
        if (intervalMs > 0 && (mode.equals("async") || mode.equals("batch"))) {
            throw new Args.UsageException("--interval-ms is for sync, ordered and oneway sends");
        }

        DefaultMQProducer producer = Clients.configure(
            new DefaultMQProducer(args.one("--group", "java_driver_producer"), Clients.rpcHook()),
            namesrv, vip);
        // Each message is sent once unless asked, so a test can tell a duplicate from a retry.
        int retries = (int) args.number("--retries", 0);
        producer.setRetryTimesWhenSendFailed(retries);
        producer.setRetryTimesWhenSendAsyncFailed(retries);
        producer.setSendMsgTimeout((int) args.number("--timeout-ms", 10_000));
        if (args.has("--no-compress")) {
            producer.setCompressMsgBodyOverHowmuch(Integer.MAX_VALUE);
        }
        Report.print(Clients.started("produce").put("mode", mode).put("vip_channel", vip)
            .put("compress_over", producer.getCompressMsgBodyOverHowmuch()));
        producer.start();

        List<Message> messages = new ArrayList<>();
        for (long seq = 0; seq < count; seq++) {
            Message m = new Message(topic, body(topic, seq, bodyBytes));
            if (!tags.isEmpty()) {
                m.setTags(tags.get((int) (seq % tags.size())));
            }
            if (key != null) {
                m.setKeys(key + "-" + seq);
            }
            if (delayLevel > 0) {
                m.setDelayTimeLevel(delayLevel);
            }
            m.putUserProperty("seq", Long.toString(seq));
            for (String[] p : props) {
                m.putUserProperty(p[0], p[1]);
            }
            messages.add(m);
        }

        int failures = 0;
        AtomicInteger acked = new AtomicInteger();
        try {
            switch (mode) {
                case "sync":
                    for (int seq = 0; seq < messages.size(); seq++) {
                        pause(seq, intervalMs);
                        failures += syncSend(producer, messages.get(seq), seq, acked, null);
                    }
                    break;
                case "ordered": {
                    MessageQueueSelector selector =
                        (mqs, msg, arg) -> mqs.get((int) ((Long) arg % mqs.size()));
                    for (int seq = 0; seq < messages.size(); seq++) {
                        pause(seq, intervalMs);
                        failures += syncSend(producer, messages.get(seq), seq, acked,
                            new Object[] {selector, seq % orderKeys});
                    }
                    break;
                }
                case "async":
                    failures += asyncSend(producer, messages, acked);
                    break;
                case "oneway":
                    for (int seq = 0; seq < messages.size(); seq++) {
                        pause(seq, intervalMs);
                        Message m = messages.get(seq);
                        try {
                            producer.sendOneway(m);
                            acked.incrementAndGet();
                            Report.print(bodyFields(Json.op("sent_oneway").put("seq", seq), m)
                                .put("msg_id", MessageClientIDSetter.getUniqID(m)));
                        } catch (Exception e) {
                            failures++;
                            Report.print(Report.failure("send", e).put("op", "send_failed")
                                .put("seq", seq));
                        }
                    }
                    break;
                case "batch":
                    try {
                        SendResult r = producer.send(messages);
                        if (r.getSendStatus() == SendStatus.SEND_OK) {
                            acked.addAndGet(messages.size());
                        } else {
                            failures++;
                        }
                        Report.print(Json.op("sent_batch").putAll(Report.sendResult(r))
                            .put("count", messages.size())
                            .put("msg_ids", split(r.getMsgId()))
                            .put("offset_msg_ids", split(r.getOffsetMsgId())));
                    } catch (Exception e) {
                        failures++;
                        Report.print(Report.failure("send", e).put("op", "send_failed")
                            .put("count", messages.size()));
                    }
                    break;
                default:
                    throw new IllegalStateException(mode);
            }
        } finally {
            producer.shutdown();
        }
        Report.print(Json.op("done").put("acked", acked.get()).put("failed", failures));
        return failures == 0 ? 0 : 1;
    }

    /** Waits {@code intervalMs} before every send but the first (--interval-ms). */
    private static void pause(int seq, long intervalMs) throws InterruptedException {
        if (seq > 0 && intervalMs > 0) {
            Thread.sleep(intervalMs);
        }
    }

    private static List<Object> split(String ids) {
        List<Object> out = new ArrayList<>();
        if (ids != null && !ids.isEmpty()) {
            out.addAll(Arrays.asList(ids.split(",")));
        }
        return out;
    }

    private static Json bodyFields(Json line, Message m) {
        return line.put("body_len", m.getBody().length).put("body_crc32", Report.crc32(m.getBody()))
            .put("tags", m.getTags()).put("keys", m.getKeys());
    }

    /** One sync send ({@code ordered}: selector and argument); returns 1 if it failed. */
    private static int syncSend(DefaultMQProducer producer, Message m, int seq, AtomicInteger acked,
            Object[] ordered) {
        // The client compresses the body in place for the send: measure it before.
        Json line = bodyFields(Json.op("sent").put("seq", seq), m);
        try {
            SendResult r;
            if (ordered == null) {
                r = producer.send(m);
            } else {
                r = producer.send(m, (MessageQueueSelector) ordered[0], ordered[1]);
                line.put("order_key", ordered[1]);
            }
            Report.print(line.putAll(Report.sendResult(r)));
            if (r.getSendStatus() == SendStatus.SEND_OK) {
                acked.incrementAndGet();
                return 0;
            }
            return 1;
        } catch (Exception e) {
            Report.print(Report.failure("send", e).put("op", "send_failed").put("seq", seq));
            return 1;
        }
    }

    /** Every message sent with a callback at once; waits for every callback. */
    private static int asyncSend(DefaultMQProducer producer, List<Message> messages,
            AtomicInteger acked) throws InterruptedException {
        CountDownLatch done = new CountDownLatch(messages.size());
        AtomicInteger failures = new AtomicInteger();
        for (int i = 0; i < messages.size(); i++) {
            final int seq = i;
            Message m = messages.get(seq);
            Json line = bodyFields(Json.op("sent").put("seq", seq).put("async", true), m);
            try {
                producer.send(m, new SendCallback() {
                    @Override
                    public void onSuccess(SendResult r) {
                        Report.print(line.putAll(Report.sendResult(r)));
                        if (r.getSendStatus() == SendStatus.SEND_OK) {
                            acked.incrementAndGet();
                        } else {
                            failures.incrementAndGet();
                        }
                        done.countDown();
                    }

                    @Override
                    public void onException(Throwable e) {
                        Report.print(Report.failure("send", e).put("op", "send_failed")
                            .put("seq", seq));
                        failures.incrementAndGet();
                        done.countDown();
                    }
                });
            } catch (Exception e) {
                Report.print(Report.failure("send", e).put("op", "send_failed").put("seq", seq));
                failures.incrementAndGet();
                done.countDown();
            }
        }
        if (!done.await(120, TimeUnit.SECONDS)) {
            Report.print(Json.op("failed").put("step", "send")
                .put("error", "async callbacks missing after 120 s: " + done.getCount()));
            failures.addAndGet((int) done.getCount());
        }
        return failures.get();
    }
}
