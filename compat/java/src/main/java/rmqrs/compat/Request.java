package rmqrs.compat;

import java.nio.charset.StandardCharsets;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.utils.MessageUtil;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;

/**
 * {@code request}: request-reply between two client instances of one run. A replier (a
 * DefaultMQPushConsumer and a DefaultMQProducer) answers every message of TOPIC with
 * {@code MessageUtil.createReplyMessage} (body {@code reply:} + the request's body) sent to the
 * reply topic; a requester (DefaultMQProducer) sends COUNT requests with
 * {@code request(msg, timeout)}, one at a time.
 *
 * <p>Lines: {@code replied} (the replier's send of each reply: {@code status} or {@code error}),
 * {@code response} per answered request ({@code seq}, {@code body}, {@code topic},
 * {@code correlation_id}, {@code request_correlation_id}), {@code request_failed} per request
 * without an answer, then {@code done} ({@code ok}, {@code failed}). Exit 1 if any failed.
 */
final class Request {
    private Request() {}

    static int run(Args args) throws Exception {
        args.only("-n", "-t", "-c", "--group", "--timeout-ms");
        String namesrv = args.required("-n");
        String topic = args.required("-t");
        long count = args.requiredNumber("-c");
        String group = args.one("--group", "request-" + topic);
        long timeoutMs = args.number("--timeout-ms", 15_000);
        if (count < 1 || count > 1000) {
            throw new Args.UsageException("-c must be 1..1000");
        }
        Report.print(Clients.started("request").put("topic", topic).put("count", count));

        DefaultMQProducer requester =
            Clients.configure(new DefaultMQProducer(group), namesrv, false);
        requester.start();
        // The replier subscribes to a topic that must be routable first, or its consumer
        // waits for its next route poll (30 s).
        long routeDeadline = System.currentTimeMillis() + 20_000;
        while (true) {
            try {
                if (!requester.fetchPublishMessageQueues(topic).isEmpty()) {
                    break;
                }
            } catch (Exception e) {
                if (System.currentTimeMillis() > routeDeadline) {
                    throw e;
                }
            }
            Thread.sleep(200);
        }

        DefaultMQProducer replyProducer =
            Clients.configure(new DefaultMQProducer(group + "-replier"), namesrv, false);
        replyProducer.start();
        DefaultMQPushConsumer replier =
            Clients.configure(new DefaultMQPushConsumer(group + "-replier"), namesrv, false);
        replier.subscribe(topic, "*");
        replier.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        replier.registerMessageListener((MessageListenerConcurrently) (msgs, context) -> {
            for (MessageExt msg : msgs) {
                String body = new String(msg.getBody(), StandardCharsets.UTF_8);
                Json line = Json.op("replied").put("request_body", body)
                    .put("consumed_at_ms", Report.elapsedMs());
                try {
                    Message reply = MessageUtil.createReplyMessage(msg,
                        ("reply:" + body).getBytes(StandardCharsets.UTF_8));
                    SendResult result = replyProducer.send(reply);
                    line.put("status", result.getSendStatus().name()).put("topic", reply.getTopic())
                        .put("replied_at_ms", Report.elapsedMs());
                } catch (Exception e) {
                    line.put("error_class", e.getClass().getName()).put("error", String.valueOf(e.getMessage()));
                }
                Report.print(line);
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        replier.start();
        // Requests go out once the replier consumes: a consumer takes the topic's queues at
        // its first rebalance, and a request sent before then waits for it against the
        // request's own timeout.
        long readyDeadline = System.currentTimeMillis() + 40_000;
        while (replier.getDefaultMQPushConsumerImpl().getRebalanceImpl().getProcessQueueTable().isEmpty()
            && System.currentTimeMillis() < readyDeadline) {
            Thread.sleep(100);
        }
        Report.print(Json.op("replier_ready").put("queues",
            (long) replier.getDefaultMQPushConsumerImpl().getRebalanceImpl().getProcessQueueTable().size())
            .put("at_ms", Report.elapsedMs()));

        long ok = 0;
        long failed = 0;
        for (long seq = 0; seq < count; seq++) {
            String body = topic + ":" + seq;
            Message msg = new Message(topic, body.getBytes(StandardCharsets.UTF_8));
            long sentAt = Report.elapsedMs();
            try {
                Message answer = requester.request(msg, timeoutMs);
                Report.print(Json.op("response").put("seq", seq)
                    .put("body", new String(answer.getBody(), StandardCharsets.UTF_8))
                    .put("topic", answer.getTopic())
                    .put("correlation_id", answer.getProperty("CORRELATION_ID"))
                    .put("request_correlation_id", msg.getProperty("CORRELATION_ID"))
                    .put("sent_at_ms", sentAt).put("answered_at_ms", Report.elapsedMs()));
                ok++;
            } catch (Exception e) {
                Report.print(Json.op("request_failed").put("seq", seq).put("sent_at_ms", sentAt)
                    .put("error_class", e.getClass().getName()).put("error", String.valueOf(e.getMessage())));
                failed++;
            }
        }
        Report.print(Json.op("done").put("ok", ok).put("failed", failed));
        replier.shutdown();
        replyProducer.shutdown();
        requester.shutdown();
        return failed == 0 ? 0 : 1;
    }
}
