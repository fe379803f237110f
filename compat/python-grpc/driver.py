"""Drives Apache's RocketMQ 5 gRPC client for Python (rocketmq-python-client, unmodified)
against a broker that serves gRPC itself. One JSON object per line on stdout; exit 0 on
success, 1 on a failure (a `failed` line says why), 2 on a usage error.

  produce --endpoints E -t TOPIC -c COUNT [--tag T] [--message-groups N] [--delay-ms MS]
          [--lite-topics N]
      Producer.send, one at a time: body `TOPIC:SEQ`, user property seq, key K-SEQ; with
      --message-groups each message is FIFO, in message group G<SEQ mod N>; with
      --delay-ms each is a delay message due MS from its send, rounded up to the second
      (the client sends `delivery_timestamp` as whole seconds although its doc says ms);
      with --lite-topics each is a lite message, in lite topic L<SEQ mod N> (`sent` lines
      carry it as `lite`, null without).
  simple  --endpoints E -t TOPIC -g GROUP --expect N --timeout-secs S [--nack-first]
          [--batch B] [--lite-topics N]
      SimpleConsumer.receive (up to B messages, 16 by default; invisible 20 s) and ack;
      with --nack-first each message's first delivery gets change_invisible_duration(1 s)
      instead, and must come back. With --lite-topics, a LiteSimpleConsumer bound to TOPIC
      that subscribes L0..L<N-1> first (`subscribed` lines, each retried while the client
      has no settings yet: see subscribe_lite_topics); its lines carry `lite`.
  push    --endpoints E -t TOPIC -g GROUP --expect N --timeout-secs S [--fail-first]
      PushConsumer whose listener answers each message's first delivery FAILURE (`refused`
      lines) with --fail-first, SUCCESS otherwise (`received`), until N distinct messages
      were taken.
  lite    --endpoints E -t PARENT -g GROUP --lite-topics N --expect M --timeout-secs S
          [--fail-first]
      LitePushConsumer bound to PARENT, with push's listener (its lines carry `lite` too:
      the message's lite topic); once started it subscribes L0..L<N-1> as simple's
      --lite-topics does, until M distinct messages were taken.
  pull    --endpoints E -t TOPIC -g GROUP --expect N [--timeout-secs S]
      The client has no pull consumer; this command calls the MessagingService through the
      stub generated in the client's package (rocketmq.grpc_protocol), as a 5.x pull
      consumer would: QueryRoute, then per readable queue GetOffset (none yet:
      `no_offset`), QueryOffset BEGINNING and END, PullMessage (8 at a time) from the
      beginning to the end (`pulled` lines: msg_id, queue, offset, seq, body), on the first
      queue one more PullMessage at the end (`empty`: its status once the long poll ran
      out), UpdateOffset to the end and GetOffset (`committed`: queue, offset, read back).
  transaction --endpoints E -t TOPIC [--timeout-secs S] [--linger-ms MS]
      A Producer with a TransactionChecker, one transaction per name in TRANSACTIONS (body
      `TOPIC:NAME`, tag TagTx, key tx-NAME): committed, rolled back, and two left open that
      the broker checks back (answered COMMIT and ROLLBACK). Lines: `sent` (name, msg_id,
      status OK), `checked` (name, msg_id, topic, times), then `done` once both open ones
      were checked (after lingering MS), or `timeout`.
"""

import argparse
import json
import math
import os
import sys
import threading
import time

from rocketmq import (ClientConfiguration, ConsumeResult, Credentials, FilterExpression,
                      LitePushConsumer, LiteSimpleConsumer, Message, MessageListener,
                      Producer, PushConsumer, SimpleConsumer, TransactionChecker,
                      TransactionResolution)
from rocketmq.v5.exception import LiteSubscriptionQuotaExceededException

RELEASE = "5.1.2"


LINE_LOCK = threading.Lock()


def line(**fields):
    # One write per line: the push listener prints from the client's consumption threads.
    with LINE_LOCK:
        sys.stdout.write(json.dumps(fields) + "\n")
        sys.stdout.flush()


def produce(config, args):
    producer = Producer(config, (args.t,))
    producer.startup()
    line(op="started", command="produce", client_version=RELEASE)
    try:
        for seq in range(args.c):
            message = Message()
            message.topic = args.t
            message.body = f"{args.t}:{seq}".encode()
            message.keys = f"K-{seq}"
            message.add_property("seq", str(seq))
            if args.tag:
                message.tag = args.tag
            group = f"G{seq % args.message_groups}" if args.message_groups else None
            if group:
                message.message_group = group
            lite = f"L{seq % args.lite_topics}" if args.lite_topics else None
            if lite:
                message.lite_topic = lite
            deliver_ms = 0
            if args.delay_ms:
                deliver_s = math.ceil((time.time() * 1000 + args.delay_ms) / 1000)
                message.delivery_timestamp = deliver_s
                deliver_ms = deliver_s * 1000
            receipt = producer.send(message)
            line(op="sent", seq=seq, msg_id=receipt.message_id, group=group, lite=lite,
                 deliver_ms=deliver_ms)
    finally:
        producer.shutdown()
    line(op="done", sent=args.c)
    return 0


def pull(_config, args):
    import grpc
    from google.protobuf.duration_pb2 import Duration
    from rocketmq.grpc_protocol import definition_pb2 as d, service_pb2 as s
    from rocketmq.grpc_protocol import MessagingServiceStub

    host, port = args.endpoints.rsplit(":", 1)
    channel = grpc.insecure_channel(args.endpoints)
    stub = MessagingServiceStub(channel)
    timeout = 10
    topic = d.Resource(name=args.t)
    group = d.Resource(name=args.g)
    line(op="started", command="pull", client_version=RELEASE)
    route = stub.QueryRoute(s.QueryRouteRequest(
        topic=topic,
        endpoints=d.Endpoints(scheme=d.AddressScheme.IPv4,
                              addresses=[d.Address(host=host, port=int(port))])),
        timeout=timeout)
    if route.status.code != d.Code.OK:
        line(op="failed", error=f"QueryRoute: {route.status}")
        return 1
    readable = (d.Permission.READ, d.Permission.READ_WRITE)
    queues = [q for q in route.message_queues if q.permission in readable]
    deadline = time.time() + args.timeout_secs
    pulled = set()
    for queue in queues:
        got = stub.GetOffset(s.GetOffsetRequest(group=group, message_queue=queue),
                             timeout=timeout)
        if got.status.code != d.Code.OFFSET_NOT_FOUND:
            line(op="failed", error=f"GetOffset before any commit: {got.status}")
            return 1
        line(op="no_offset", queue=queue.id)
        offsets = []
        for policy in (d.QueryOffsetPolicy.BEGINNING, d.QueryOffsetPolicy.END):
            answer = stub.QueryOffset(s.QueryOffsetRequest(message_queue=queue,
                                                           query_offset_policy=policy),
                                      timeout=timeout)
            offsets.append(answer.offset)
        offset, end = offsets
        while offset < end or queue is queues[0]:
            request = s.PullMessageRequest(
                group=group, message_queue=queue, offset=offset, batch_size=8,
                filter_expression=d.FilterExpression(type=d.FilterType.TAG, expression="*"),
                long_polling_timeout=Duration(seconds=5))
            status, next_offset = None, None
            for response in stub.PullMessage(request, timeout=timeout + 20):
                kind = response.WhichOneof("content")
                if kind == "status":
                    status = response.status
                elif kind == "message":
                    message = response.message
                    pulled.add(message.system_properties.message_id)
                    line(op="pulled", queue=queue.id,
                         offset=message.system_properties.queue_offset,
                         msg_id=message.system_properties.message_id,
                         seq=message.user_properties.get("seq"),
                         body=message.body.decode(errors="replace"),
                         receipt_handle=message.system_properties.HasField("receipt_handle"))
                elif kind == "next_offset":
                    next_offset = response.next_offset
            if offset >= end:
                line(op="empty", queue=queue.id, code=d.Code.Name(status.code),
                     next_offset=next_offset)
                break
            if status is None or status.code != d.Code.OK or next_offset is None:
                line(op="failed", error=f"PullMessage at {offset} of {end}: {status}")
                return 1
            offset = next_offset
            if time.time() > deadline:
                line(op="timeout", distinct=len(pulled))
                return 1
        update = stub.UpdateOffset(s.UpdateOffsetRequest(group=group, message_queue=queue,
                                                         offset=end), timeout=timeout)
        if update.status.code != d.Code.OK:
            line(op="failed", error=f"UpdateOffset: {update.status}")
            return 1
        got = stub.GetOffset(s.GetOffsetRequest(group=group, message_queue=queue),
                             timeout=timeout)
        line(op="committed", queue=queue.id, offset=end, read_back=got.offset,
             code=d.Code.Name(got.status.code))
    channel.close()
    done = len(pulled) >= args.expect
    line(op="done" if done else "timeout", distinct=len(pulled))
    return 0 if done else 1


def describe(message, delivery):
    return dict(msg_id=message.message_id, body=message.body.decode(errors="replace"),
                seq=message.properties.get("seq"), tag=message.tag,
                group=message.message_group, delivery_attempt=message.delivery_attempt,
                delivery=delivery, at_ms=int(time.time() * 1000))


def subscribe_lite_topics(consumer, count):
    """Subscribes L0..L<count-1>. Workarounds for the client's defects: its
    LiteSimpleConsumer starts without waiting for the server's settings (client.py waits
    for them for push consumers only) and reads its subscription quota as 0 until they
    come, so a subscription refused for quota is retried for up to 10 s; and subscribe_lite
    sends the name's characters as the set of lite topics (it extends the request's list
    with the string), so subscribe_lite_all follows, which sends the client's whole set
    (COMPLETE_ADD) as the client itself does every 30 s."""
    for n in range(count):
        deadline = time.time() + 10
        while True:
            try:
                consumer.subscribe_lite(f"L{n}")
                break
            except LiteSubscriptionQuotaExceededException:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        line(op="subscribed", lite=f"L{n}")
    if count:
        consumer.subscribe_lite_all()


def simple(config, args):
    if args.lite_topics:
        consumer = LiteSimpleConsumer(args.t, config, args.g, await_duration=5)
    else:
        consumer = SimpleConsumer(config, args.g, {args.t: FilterExpression("*")},
                                  await_duration=5)
    consumer.startup()
    line(op="started", command="simple", client_version=RELEASE)
    deliveries = {}
    acked = set()
    deadline = time.time() + args.timeout_secs
    try:
        subscribe_lite_topics(consumer, args.lite_topics)
        while len(acked) < args.expect and time.time() < deadline:
            for message in consumer.receive(args.batch, 20) or []:
                msg_id = message.message_id
                deliveries[msg_id] = deliveries.get(msg_id, 0) + 1
                fields = describe(message, deliveries[msg_id])
                if args.lite_topics:
                    fields["lite"] = message.lite_topic
                if args.nack_first and deliveries[msg_id] == 1:
                    consumer.change_invisible_duration(message, 1)
                    line(op="nacked", **fields)
                else:
                    consumer.ack(message)
                    acked.add(msg_id)
                    line(op="received", **fields)
    finally:
        consumer.shutdown()
    done = len(acked) >= args.expect
    line(op="done" if done else "timeout", distinct=len(acked))
    return 0 if done else 1


class Listener(MessageListener):
    """Fails each message's first delivery with --fail-first; takes every other one. With
    lite, its lines carry the message's lite topic too."""

    def __init__(self, fail_first, lite=False):
        self.fail_first = fail_first
        self.lite = lite
        self.lock = threading.Lock()
        self.deliveries = {}
        self.accepted = set()

    def consume(self, message):
        with self.lock:
            delivery = self.deliveries.get(message.message_id, 0) + 1
            self.deliveries[message.message_id] = delivery
            refuse = self.fail_first and delivery == 1
            if not refuse:
                self.accepted.add(message.message_id)
        fields = describe(message, delivery)
        if self.lite:
            fields["lite"] = message.lite_topic
        line(op="refused" if refuse else "received", **fields)
        return ConsumeResult.FAILURE if refuse else ConsumeResult.SUCCESS

    def taken(self):
        with self.lock:
            return len(self.accepted)


def push(config, args):
    listener = Listener(args.fail_first)
    consumer = PushConsumer(config, args.g, listener, {args.t: FilterExpression("*")})
    consumer.startup()
    line(op="started", command="push", client_version=RELEASE)
    return take_until_done(consumer, listener, args)


def lite(config, args):
    listener = Listener(args.fail_first, lite=True)
    consumer = LitePushConsumer(config, args.g, args.t, listener)
    consumer.startup()
    line(op="started", command="lite", client_version=RELEASE)
    return take_until_done(consumer, listener, args,
                           lambda: subscribe_lite_topics(consumer, args.lite_topics))


def take_until_done(consumer, listener, args, first=lambda: None):
    """Runs `first` (subscriptions), then lets the listener take messages until it took
    --expect of them or --timeout-secs passed; shuts the consumer down; the exit code."""
    deadline = time.time() + args.timeout_secs
    try:
        first()
        while listener.taken() < args.expect and time.time() < deadline:
            time.sleep(0.05)
        # Let the last acknowledgements reach the broker.
        time.sleep(1)
    finally:
        consumer.shutdown()
    done = listener.taken() >= args.expect
    line(op="done" if done else "timeout", distinct=listener.taken())
    return 0 if done else 1


TRANSACTIONS = ("commit", "rollback", "check-commit", "check-rollback")


class Checker(TransactionChecker):
    """Answers the broker's checks: COMMIT for check-commit, ROLLBACK for check-rollback."""

    def __init__(self):
        self.lock = threading.Lock()
        self.checks = {}

    def check(self, message):
        text = message.body.decode(errors="replace")
        name = text[text.index(":") + 1:]
        with self.lock:
            self.checks[name] = self.checks.get(name, 0) + 1
            times = self.checks[name]
        line(op="checked", name=name, msg_id=message.message_id, topic=message.topic,
             times=times)
        return {"check-commit": TransactionResolution.COMMIT,
                "check-rollback": TransactionResolution.ROLLBACK}.get(
                    name, TransactionResolution.TRANSACTION_RESOLUTION_UNSPECIFIED)

    def answered_both(self):
        with self.lock:
            return "check-commit" in self.checks and "check-rollback" in self.checks


def transaction(config, args):
    checker = Checker()
    producer = Producer(config, (args.t,), checker)
    producer.startup()
    line(op="started", command="transaction", client_version=RELEASE)
    try:
        for name in TRANSACTIONS:
            message = Message()
            message.topic = args.t
            message.body = f"{args.t}:{name}".encode()
            message.keys = f"tx-{name}"
            message.tag = "TagTx"
            transaction = producer.begin_transaction()
            receipt = producer.send(message, transaction)
            line(op="sent", name=name, msg_id=receipt.message_id, status="OK")
            if name == "commit":
                transaction.commit()
            elif name == "rollback":
                transaction.rollback()
        deadline = time.time() + args.timeout_secs
        while not checker.answered_both() and time.time() < deadline:
            time.sleep(0.05)
        done = checker.answered_both()
        if done:
            # The answers travel as EndTransaction calls; a second check would show here.
            time.sleep(args.linger_ms / 1000)
    finally:
        producer.shutdown()
    line(op="done" if done else "timeout", checked=len(checker.checks))
    return 0 if done else 1


def main():
    parser = argparse.ArgumentParser(add_help=True)
    parser.add_argument("command",
                        choices=["produce", "simple", "push", "lite", "pull", "transaction"])
    parser.add_argument("--endpoints", required=True)
    parser.add_argument("-t", required=True)
    parser.add_argument("-c", type=int, default=0)
    parser.add_argument("-g")
    parser.add_argument("--tag")
    parser.add_argument("--expect", type=int, default=0)
    parser.add_argument("--timeout-secs", type=int, default=60)
    parser.add_argument("--nack-first", action="store_true")
    parser.add_argument("--fail-first", action="store_true")
    parser.add_argument("--delay-ms", type=int, default=0)
    parser.add_argument("--message-groups", type=int, default=0)
    parser.add_argument("--lite-topics", type=int, default=0)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--linger-ms", type=int, default=1000)
    args = parser.parse_args()
    # ACL: the client signs its calls when credentials are in the environment.
    credentials = Credentials(os.environ.get("ROCKETMQ_ACCESS_KEY", ""),
                              os.environ.get("ROCKETMQ_SECRET_KEY", ""))
    config = ClientConfiguration(args.endpoints, credentials, request_timeout=10)
    try:
        commands = {"produce": produce, "simple": simple, "push": push, "lite": lite,
                    "pull": pull, "transaction": transaction}
        return commands[args.command](config, args)
    except Exception as e:  # the client's own exceptions: report and fail
        line(op="failed", error=repr(e))
        return 1


if __name__ == "__main__":
    sys.exit(main())
