package rmqrs.compat;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.TreeMap;
import java.util.zip.CRC32;
import org.apache.rocketmq.client.exception.MQBrokerException;
import org.apache.rocketmq.client.exception.MQClientException;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.common.message.MessageClientExt;
import org.apache.rocketmq.common.message.MessageConst;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;

/** The JSON lines on stdout (the client's logs go to stderr). */
final class Report {
    /** Bodies up to this size are printed in full; longer ones only by length and CRC-32. */
    private static final int BODY_PRINTED_MAX_BYTES = 1024;

    /** stdout as it was at start-up, before anything could replace System.out. */
    private static final PrintStream OUT = System.out;
    private static final long START_NANOS = System.nanoTime();

    private Report() {}

    /** Writes one line and flushes, so a runner killing the driver still sees every line. */
    static synchronized void print(Json line) {
        OUT.println(line);
        OUT.flush();
    }

    /** Milliseconds since the driver started. */
    static long elapsedMs() {
        return (System.nanoTime() - START_NANOS) / 1_000_000;
    }

    static long crc32(byte[] body) {
        CRC32 crc = new CRC32();
        crc.update(body);
        return crc.getValue();
    }

    static String queue(MessageQueue mq) {
        return mq.getBrokerName() + ":" + mq.getQueueId();
    }

    static Json queueJson(MessageQueue mq) {
        return new Json().put("topic", mq.getTopic()).put("broker_name", mq.getBrokerName())
            .put("queue_id", mq.getQueueId());
    }

    /** The id a client calls the message id: the producer's unique key, else the offset id. */
    static String msgId(MessageExt m) {
        return m.getMsgId();
    }

    /** The broker's offset message id (store host and commit log offset). */
    static String offsetMsgId(MessageExt m) {
        if (m instanceof MessageClientExt) {
            return ((MessageClientExt) m).getOffsetMsgId();
        }
        return m.getMsgId();
    }

    /**
     * One received message under {@code op}: `properties` are the user properties,
     * `sys_properties` the ones the client version reserves (MessageConst.STRING_HASH_SET).
     */
    static Json message(String op, MessageExt m) {
        Map<String, String> user = new TreeMap<>();
        Map<String, String> system = new TreeMap<>();
        if (m.getProperties() != null) {
            for (Map.Entry<String, String> e : m.getProperties().entrySet()) {
                if (MessageConst.STRING_HASH_SET.contains(e.getKey())) {
                    system.put(e.getKey(), e.getValue());
                } else {
                    user.put(e.getKey(), e.getValue());
                }
            }
        }
        byte[] body = m.getBody() == null ? new byte[0] : m.getBody();
        Json line = Json.op(op)
            .put("msg_id", msgId(m))
            .put("offset_msg_id", offsetMsgId(m))
            .put("topic", m.getTopic())
            .put("tags", m.getTags())
            .put("keys", m.getKeys())
            .put("properties", user)
            .put("sys_properties", system)
            .put("body_len", body.length)
            .put("body_crc32", crc32(body))
            .put("queue_id", m.getQueueId())
            .put("queue_offset", m.getQueueOffset())
            .put("reconsume_times", m.getReconsumeTimes())
            .put("broker_name", m.getBrokerName())
            .put("store_host", String.valueOf(m.getStoreHost()))
            .put("commit_log_offset", m.getCommitLogOffset())
            .put("born_timestamp", m.getBornTimestamp())
            .put("store_timestamp", m.getStoreTimestamp())
            .put("delay_level", m.getDelayTimeLevel())
            .put("retry_topic", m.getProperty(MessageConst.PROPERTY_RETRY_TOPIC))
            .put("real_topic", m.getProperty(MessageConst.PROPERTY_REAL_TOPIC));
        if (body.length <= BODY_PRINTED_MAX_BYTES) {
            line.put("body", new String(body, StandardCharsets.UTF_8));
        }
        return line;
    }

    /** The fields of a send result. */
    static Json sendResult(SendResult r) {
        Json line = new Json()
            .put("status", String.valueOf(r.getSendStatus()))
            .put("msg_id", r.getMsgId())
            .put("offset_msg_id", r.getOffsetMsgId())
            .put("queue_offset", r.getQueueOffset());
        MessageQueue mq = r.getMessageQueue();
        if (mq != null) {
            line.put("broker_name", mq.getBrokerName()).put("queue_id", mq.getQueueId());
        }
        line.put("region_id", r.getRegionId());
        return line;
    }

    /** The broker's (or name server's) response code behind an error, or null. */
    static Integer responseCode(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c instanceof MQBrokerException) {
                return ((MQBrokerException) c).getResponseCode();
            }
            if (c instanceof MQClientException && ((MQClientException) c).getResponseCode() > 0) {
                return ((MQClientException) c).getResponseCode();
            }
        }
        return null;
    }

    /** The error's message and the messages of its causes. */
    static String describe(Throwable t) {
        StringBuilder s = new StringBuilder();
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (s.length() > 0) {
                s.append(" <- ");
            }
            s.append(c.getClass().getSimpleName()).append(": ").append(c.getMessage());
            if (c.getCause() == c) {
                break;
            }
        }
        return s.toString().replaceAll("\\s+", " ");
    }

    /** A `failed` line: what was being done and why it failed. */
    static Json failure(String step, Throwable t) {
        return Json.op("failed").put("step", step).put("response_code", responseCode(t))
            .put("error_class", t.getClass().getName()).put("error", describe(t));
    }
}
