"""Drives librocketmq (the C++ RocketMQ client, via the PyPI package `rocketmq` 0.4.4)
against our name server and broker, printing one JSON object per line for the Rust test
that runs it to check.

usage:
  cpp_client.py produce NAMESRV TOPIC COUNT
  cpp_client.py batch   NAMESRV TOPIC COUNT
  cpp_client.py big     NAMESRV TOPIC COUNT SIZE_BYTES
  cpp_client.py pull    NAMESRV TOPIC GROUP EXPRESSION
  cpp_client.py push    NAMESRV TOPIC GROUP EXPRESSION EXPECTED TIMEOUT_SECONDS [orderly]

`push ... orderly` consumes with an orderly push consumer, which locks its queues on the
broker (LOCK_BATCH_MQ) before consuming them.

  cpp_client.py timer   NAMESRV TOPIC COUNT DELAY_MS
  cpp_client.py delay   NAMESRV TOPIC COUNT LEVEL

`timer` sets RocketMQ 5's TIMER_DELIVER_MS by hand (the client predates timer messages);
`delay` sends with delay level LEVEL (`set_delay_time_level`). Their `sent` lines carry
`sent_ms`, when the send was made.

  cpp_client.py paced   NAMESRV TOPIC COUNT INTERVAL_MS
sends COUNT messages one at a time, INTERVAL_MS apart, with the client's defaults (its own
retries, routes polled every 30 s); a send that fails prints `{"op": "send_failed", ...}`
and the run goes on (what an application sees through a rolling restart).

  cpp_client.py refused NAMESRV TOPIC
sends one message and reports the error it got (`{"op": "refused", "error": ...}`), or
`{"op": "sent"}` if the send went through.

With ROCKETMQ_ACCESS_KEY and ROCKETMQ_SECRET_KEY in the environment every client signs its
requests (ACL 1.0: the client's session credentials).
"""
import hashlib
import json
import os
import sys
import threading
import time

from rocketmq.client import Message, Producer, PullConsumer, PushConsumer


def emit(obj):
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def digest(body):
    return hashlib.sha256(body).hexdigest()


def make_body(topic, i, size=None):
    base = ("%s-message-%d" % (topic, i)).encode()
    if size is None:
        return base
    return (base * (size // len(base) + 1))[:size]


def tag_of(i):
    return "TagA" if i % 2 == 0 else "TagB"


def new_message(topic, i, size=None, deliver_ms=None, delay_level=None):
    msg = Message(topic)
    if deliver_ms is not None:
        # A RocketMQ 5 timer message; this client predates them, so the property by hand.
        msg.set_property("TIMER_DELIVER_MS", str(deliver_ms))
    if delay_level is not None:
        msg.set_delay_time_level(delay_level)
    msg.set_keys("key-%d" % i)
    msg.set_tags(tag_of(i))
    msg.set_property("color", "blue" if i % 2 == 0 else "red")
    msg.set_property("seq", str(i))
    msg.set_body(make_body(topic, i, size))
    return msg


def sign(client):
    access_key = os.environ.get("ROCKETMQ_ACCESS_KEY")
    secret_key = os.environ.get("ROCKETMQ_SECRET_KEY")
    if access_key and secret_key:
        client.set_session_credentials(access_key, secret_key, "ALIYUN")


def start_producer(namesrv, max_size=None):
    producer = Producer("compat-producer", max_message_size=max_size)
    producer.set_namesrv_addr(namesrv)
    sign(producer)
    producer.set_timeout(10000)
    producer.start()
    return producer


def produce(namesrv, topic, count, size=None, deliver_ms=None, delay_level=None):
    producer = start_producer(namesrv, 8 * 1024 * 1024 if size else None)
    for i in range(count):
        body = make_body(topic, i, size)
        sent_ms = int(time.time() * 1000)
        result = producer.send_sync(new_message(topic, i, size, deliver_ms, delay_level))
        emit({"op": "sent", "seq": i, "status": int(result.status), "msg_id": result.msg_id,
              "offset": result.offset, "sha256": digest(body), "len": len(body), "tag": tag_of(i),
              "deliver_ms": deliver_ms, "sent_ms": sent_ms})
    producer.shutdown()


def paced(namesrv, topic, count, interval_ms):
    producer = start_producer(namesrv)
    producer.set_timeout(3000)
    for i in range(count):
        body = make_body(topic, i)
        try:
            result = producer.send_sync(new_message(topic, i))
            emit({"op": "sent", "seq": i, "status": int(result.status), "msg_id": result.msg_id,
                  "offset": result.offset, "sha256": digest(body)})
        except Exception as e:  # the binding raises its own exception types
            emit({"op": "send_failed", "seq": i, "error": str(e)[:200]})
        time.sleep(interval_ms / 1000.0)
    producer.shutdown()


def batch(namesrv, topic, count):
    producer = start_producer(namesrv)
    msgs = [new_message(topic, i) for i in range(count)]
    result = producer.send_batch(msgs)
    emit({"op": "batch", "status": int(result.status), "msg_id": result.msg_id,
          "offset": result.offset, "count": count})
    producer.shutdown()


def text(value):
    """The binding returns some strings as bytes."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def describe(msg):
    body = msg.body
    return {"topic": text(msg.topic), "tags": text(msg.tags), "keys": text(msg.keys),
            "sha256": digest(body), "len": len(body), "queue_id": msg.queue_id,
            "queue_offset": msg.queue_offset, "color": text(msg.get_property("color")),
            "seq": text(msg.get_property("seq")), "id": text(msg.id),
            "reconsume_times": msg.reconsume_times, "store_timestamp": msg.store_timestamp}


def pull(namesrv, topic, group, expression):
    consumer = PullConsumer(group)
    consumer.set_namesrv_addr(namesrv)
    sign(consumer)
    consumer.start()
    for msg in consumer.pull(topic, expression):
        d = describe(msg)
        d["op"] = "pulled"
        emit(d)
    consumer.shutdown()


def push(namesrv, topic, group, expression, expected, timeout_s, orderly=False):
    seen = {}
    lock = threading.Lock()
    done = threading.Event()

    def on_message(msg):
        d = describe(msg)
        with lock:
            seen[(d["queue_id"], d["queue_offset"])] = d
            if len(seen) >= expected:
                done.set()

    consumer = PushConsumer(group, orderly=orderly)
    consumer.set_namesrv_addr(namesrv)
    sign(consumer)
    consumer.subscribe(topic, on_message, expression)
    consumer.start()
    done.wait(timeout_s)
    # Let the consumer commit its offsets before it goes.
    time.sleep(1)
    consumer.shutdown()
    with lock:
        for d in seen.values():
            d["op"] = "pushed"
            emit(d)


def refused(namesrv, topic):
    producer = start_producer(namesrv)
    try:
        result = producer.send_sync(new_message(topic, 0))
        emit({"op": "sent", "status": int(result.status)})
    except Exception as e:  # the binding raises one exception class per failing call
        emit({"op": "refused", "error": str(e)})
    producer.shutdown()


def main(argv):
    cmd = argv[1]
    if cmd == "produce":
        produce(argv[2], argv[3], int(argv[4]))
    elif cmd == "timer":
        # timer NAMESRV TOPIC COUNT DELAY_MS: every message due DELAY_MS from now.
        produce(argv[2], argv[3], int(argv[4]), deliver_ms=int(time.time() * 1000) + int(argv[5]))
    elif cmd == "delay":
        # delay NAMESRV TOPIC COUNT LEVEL: every message at delay level LEVEL.
        produce(argv[2], argv[3], int(argv[4]), delay_level=int(argv[5]))
    elif cmd == "batch":
        batch(argv[2], argv[3], int(argv[4]))
    elif cmd == "big":
        produce(argv[2], argv[3], int(argv[4]), int(argv[5]))
    elif cmd == "refused":
        refused(argv[2], argv[3])
    elif cmd == "paced":
        paced(argv[2], argv[3], int(argv[4]), int(argv[5]))
    elif cmd == "pull":
        pull(argv[2], argv[3], argv[4], argv[5])
    elif cmd == "push":
        orderly = len(argv) > 8 and argv[8] == "orderly"
        push(argv[2], argv[3], argv[4], argv[5], int(argv[6]), float(argv[7]), orderly)
    else:
        raise SystemExit("unknown command %r" % cmd)


if __name__ == "__main__":
    main(sys.argv)
