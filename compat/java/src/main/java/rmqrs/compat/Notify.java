package rmqrs.compat;

import java.lang.reflect.InvocationTargetException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.rocketmq.client.ClientConfig;
import org.apache.rocketmq.client.impl.ClientRemotingProcessor;
import org.apache.rocketmq.remoting.CommandCustomHeader;
import org.apache.rocketmq.remoting.RPCHook;
import org.apache.rocketmq.remoting.RemotingClient;
import org.apache.rocketmq.remoting.netty.NettyClientConfig;
import org.apache.rocketmq.remoting.protocol.RemotingCommand;

/**
 * {@code notify}: RocketMQ 5's NOTIFICATION (200054) through the 5.x client's own
 * {@code MQClientAPIExt.notificationWithPollingStats} — would a pop of GROUP find a message
 * in TOPIC (queue Q, or every queue), waiting up to POLL_MS for one — and, with
 * {@code --polling-info}, POLLING_INFO (200055) through the same client's remoting layer:
 * how many pops of the group wait on the topic-queue. 5.x only: 4.9.8 has neither (the
 * classes are reached by name so the one source still builds against 4.9.8).
 *
 * <p>Lines: {@code notified} ({@code has_msg}, {@code polling_full}, {@code waited_ms}) or
 * {@code polling_info} ({@code polling_num}); a refusal is a {@code failed} line with the
 * broker's {@code response_code}.
 */
final class Notify {
    private Notify() {}

    private static final String EXT = "org.apache.rocketmq.client.impl.mqclient.MQClientAPIExt";
    private static final String HEADERS = "org.apache.rocketmq.remoting.protocol.header.";

    static int run(Args args) throws Exception {
        args.only("-b", "-t", "--group", "--queue", "--poll-ms", "--order", "--polling-info");
        String broker = args.required("-b");
        String topic = args.required("-t");
        String group = args.required("--group");
        int queue = (int) args.number("--queue", -1);
        long pollMs = args.number("--poll-ms", 0);
        Report.print(Clients.started("notify").put("topic", topic).put("group", group));

        Class<?> ext;
        try {
            ext = Class.forName(EXT);
        } catch (ClassNotFoundException e) {
            throw new Args.UsageException("notify needs the 5.x client (no " + EXT + ")");
        }
        ClientConfig config = new ClientConfig();
        Object api = ext.getConstructor(ClientConfig.class, NettyClientConfig.class,
            ClientRemotingProcessor.class, RPCHook.class)
            .newInstance(config, new NettyClientConfig(), null, null);
        ext.getMethod("start").invoke(api);
        try {
            if (args.has("--polling-info")) {
                return pollingInfo(ext, api, broker, topic, group, queue);
            }
            return notification(ext, api, broker, topic, group, queue, pollMs, args.has("--order"));
        } finally {
            ext.getMethod("shutdown").invoke(api);
        }
    }

    private static int notification(Class<?> ext, Object api, String broker, String topic,
        String group, int queue, long pollMs, boolean order) throws Exception {
        Class<?> headerClass = Class.forName(HEADERS + "NotificationRequestHeader");
        Object header = headerClass.getConstructor().newInstance();
        call(header, "setConsumerGroup", String.class, group);
        call(header, "setTopic", String.class, topic);
        call(header, "setQueueId", Integer.class, queue);
        call(header, "setPollTime", long.class, pollMs);
        call(header, "setBornTime", long.class, System.currentTimeMillis());
        call(header, "setOrder", Boolean.class, order);
        long started = System.nanoTime();
        CompletableFuture<?> future = (CompletableFuture<?>) ext
            .getMethod("notificationWithPollingStats", String.class, headerClass, long.class)
            .invoke(api, broker, header, pollMs + 5_000);
        Object result;
        try {
            result = future.get(pollMs + 10_000, TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            Report.print(Report.failure("notify", e.getCause()));
            return 1;
        }
        Report.print(Json.op("notified")
            .put("has_msg", (Boolean) result.getClass().getMethod("isHasMsg").invoke(result))
            .put("polling_full", (Boolean) result.getClass().getMethod("isPollingFull").invoke(result))
            .put("waited_ms", TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started)));
        return 0;
    }

    private static int pollingInfo(Class<?> ext, Object api, String broker, String topic,
        String group, int queue) throws Exception {
        Class<?> headerClass = Class.forName(HEADERS + "PollingInfoRequestHeader");
        Object header = headerClass.getConstructor().newInstance();
        call(header, "setConsumerGroup", String.class, group);
        call(header, "setTopic", String.class, topic);
        call(header, "setQueueId", Integer.class, queue);
        // The client has no call of its own for it: its remoting layer sends the command.
        RemotingCommand request =
            RemotingCommand.createRequestCommand(200055, (CommandCustomHeader) header);
        RemotingClient remoting = (RemotingClient) ext.getMethod("getRemotingClient").invoke(api);
        RemotingCommand response = remoting.invokeSync(broker, request, 5_000L);
        if (response.getCode() != 0) {
            Report.print(Json.op("failed").put("step", "polling-info")
                .put("response_code", response.getCode()).put("error", response.getRemark()));
            return 1;
        }
        String pollingNum = response.getExtFields().get("pollingNum");
        Report.print(Json.op("polling_info").put("polling_num", Long.parseLong(pollingNum)));
        return 0;
    }

    private static void call(Object target, String method, Class<?> type, Object value)
        throws ReflectiveOperationException {
        try {
            target.getClass().getMethod(method, type).invoke(target, value);
        } catch (InvocationTargetException e) {
            throw new IllegalStateException(method + " failed", e.getCause());
        }
    }
}
