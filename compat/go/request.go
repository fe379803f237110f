package main

import (
	"context"
	"strings"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// runRequest: request-reply between two client instances of one run, as the Java driver's
// request command. A replier (a push consumer of the topic from its first offset, and a
// producer) answers every message with consumer.CreateReplyMessage, body "reply:" + the
// request's body; a requester sends COUNT requests (body TOPIC:SEQ) with Request, one at a
// time. Lines: "replied" per reply sent, "response" per answered request (seq, body, topic,
// correlation_id, request_correlation_id), "request_failed" per unanswered one, then "done"
// (ok, failed); exit 1 if any failed. A request sent before the replier has its queues waits
// for it against the request's own --timeout-ms.
func runRequest(a *args) (int, error) {
	if err := a.only("-n", "-t", "-c", "--group", "--timeout-ms"); err != nil {
		return 2, err
	}
	ns, err := a.required("-n")
	if err != nil {
		return 2, err
	}
	topic, err := a.required("-t")
	if err != nil {
		return 2, err
	}
	count, err := a.requiredNumber("-c")
	if err != nil {
		return 2, err
	}
	if count < 1 || count > 1000 {
		return 2, usagef("-c must be 1..1000")
	}
	group, _ := a.one("--group", "request-"+topic)
	timeoutMs, err := a.number("--timeout-ms", 15000)
	if err != nil {
		return 2, err
	}
	resolver := primitive.NewPassthroughResolver(strings.Split(ns, ";"))
	emit(startedLine("request").put("topic", topic).put("count", count))

	requester, err := rocketmq.NewProducer(
		producer.WithNsResolver(resolver),
		producer.WithGroupName(group),
		producer.WithInstanceName(instanceName()),
		producer.WithSendMsgTimeout(10*time.Second),
	)
	if err != nil {
		return 1, err
	}
	if err := requester.Start(); err != nil {
		return 1, err
	}
	defer requester.Shutdown()

	replyProducer, err := rocketmq.NewProducer(
		producer.WithNsResolver(resolver),
		producer.WithGroupName(group+"-replier"),
		producer.WithInstanceName(instanceName()),
		producer.WithSendMsgTimeout(10*time.Second),
	)
	if err != nil {
		return 1, err
	}
	if err := replyProducer.Start(); err != nil {
		return 1, err
	}
	defer replyProducer.Shutdown()
	replier, err := rocketmq.NewPushConsumer(
		consumer.WithNsResolver(resolver),
		consumer.WithGroupName(group+"-replier"),
		consumer.WithInstance(instanceName()),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
	)
	if err != nil {
		return 1, err
	}
	err = replier.Subscribe(topic, consumer.MessageSelector{Type: consumer.TAG, Expression: "*"},
		func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			for _, m := range msgs {
				l := newLine("replied").put("request_body", string(m.Body))
				body := []byte("reply:" + string(m.Body))
				reply, err := consumer.CreateReplyMessage(m, body)
				if err == nil {
					// v2.1.2's CreateReplyMessage reads the body it is given as properties
					// and leaves the reply's body empty; an application sets it itself.
					reply.Body = body
					var r *primitive.SendResult
					var retries int
					r, retries, err = sendReply(ctx, replyProducer, reply)
					l.put("retries", retries)
					if err == nil {
						l.put("status", sendStatus(r.Status)).put("topic", reply.Topic)
					}
				}
				if err != nil {
					l.put("error", err.Error())
				}
				emit(l)
			}
			return consumer.ConsumeSuccess, nil
		})
	if err != nil {
		return 1, err
	}
	if err := replier.Start(); err != nil {
		return 1, err
	}
	defer replier.Shutdown()

	var ok, failed int64
	for seq := int64(0); seq < count; seq++ {
		m := primitive.NewMessage(topic, []byte(topic+":"+itoa(int(seq))))
		answer, err := requester.Request(context.Background(), time.Duration(timeoutMs)*time.Millisecond, m)
		if err != nil {
			failed++
			emit(failure("request", err).put("op", "request_failed").put("seq", seq))
			continue
		}
		ok++
		emit(newLine("response").put("seq", seq).put("body", string(answer.Body)).
			put("topic", answer.Topic).
			put("correlation_id", answer.GetProperty(primitive.PropertyCorrelationID)).
			put("request_correlation_id", m.GetProperty(primitive.PropertyCorrelationID)))
	}
	emit(newLine("done").put("ok", ok).put("failed", failed))
	if failed > 0 {
		return 1, nil
	}
	return 0, nil
}

// How long a replier keeps trying to reach a requester the broker does not know yet: past
// the requester's second scheduled heartbeat (1 s after its start, then every 30 s).
const replyRetryFor = 40 * time.Second

// sendReply sends a reply, again every half second while the broker answers that the
// requester is not connected. A reply finds its requester by the client id the requester's
// heartbeat registered, and v2.1.2 heartbeats before a request only when the name server
// does not know the topic yet (the inverse of the Java client): for an existing topic the
// requester is registered by its scheduled heartbeats alone, and a fast reply can come
// first. (The client's own rpc example sleeps a second before replying: "only the go client
// has this problem".)
func sendReply(ctx context.Context, p rocketmq.Producer, reply *primitive.Message) (*primitive.SendResult, int, error) {
	deadline := time.Now().Add(replyRetryFor)
	for retries := 0; ; retries++ {
		r, err := p.SendSync(ctx, reply)
		if err == nil || !strings.Contains(err.Error(), "not found") || time.Now().After(deadline) {
			return r, retries, err
		}
		time.Sleep(500 * time.Millisecond)
	}
}
