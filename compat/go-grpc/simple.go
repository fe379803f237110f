package main

import (
	"context"
	"errors"
	"strings"
	"time"

	rmq "github.com/apache/rocketmq-clients/golang/v5"
	v2 "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
)

const (
	// awaitDuration is the receive's long polling (see the package doc).
	awaitDuration = 20 * time.Second
	invisible     = 20 * time.Second
	nackInvisible = time.Second
)

// runSimple: see the package doc.
func runSimple(a *args) (int, error) {
	cfg, err := config(a)
	if err != nil {
		return 2, err
	}
	topic, err := a.required("-t")
	if err != nil {
		return 2, err
	}
	if cfg.ConsumerGroup, err = a.required("-g"); err != nil {
		return 2, err
	}
	expect, err := a.number("--expect", 0)
	if err != nil {
		return 2, err
	}
	timeoutSecs, err := a.number("--timeout-secs", 60)
	if err != nil {
		return 2, err
	}
	lingerMs, err := a.number("--linger-ms", 0)
	if err != nil {
		return 2, err
	}
	batch, err := a.number("--batch", 16)
	if err != nil || batch < 1 || batch > 32 {
		return 2, usagef("--batch wants 1..32")
	}
	nackFirst := a.has("--nack-first")
	consumer, err := rmq.NewSimpleConsumer(cfg,
		rmq.WithAwaitDuration(awaitDuration),
		rmq.WithSubscriptionExpressions(map[string]*rmq.FilterExpression{topic: rmq.SUB_ALL}),
	)
	if err != nil {
		return 1, err
	}
	if err := consumer.Start(); err != nil {
		return 1, err
	}
	defer consumer.GracefulStop()
	emit(startedLine("simple"))
	deliveries := map[string]int{}
	acked := map[string]bool{}
	deadline := time.Now().Add(time.Duration(timeoutSecs) * time.Second)
	lingering := false
	for time.Now().Before(deadline) {
		if len(acked) >= expect && !lingering {
			if lingerMs <= 0 {
				break
			}
			lingering = true
			deadline = time.Now().Add(time.Duration(lingerMs) * time.Millisecond)
		}
		messages, err := consumer.Receive(context.Background(), int32(batch), invisible)
		if err != nil {
			var status *rmq.ErrRpcStatus
			if errors.As(err, &status) && status.GetCode() == int32(v2.Code_MESSAGE_NOT_FOUND) {
				continue
			}
			emit(newLine("receive_failed").put("error", err.Error()))
			time.Sleep(500 * time.Millisecond)
			continue
		}
		for _, m := range messages {
			id := m.GetMessageId()
			deliveries[id]++
			l := received(m, deliveries[id])
			if nackFirst && deliveries[id] == 1 {
				if err := consumer.ChangeInvisibleDuration(m, nackInvisible); err != nil {
					return 1, err
				}
				l.op = "nacked"
			} else {
				if err := consumer.Ack(context.Background(), m); err != nil {
					return 1, err
				}
				acked[id] = true
			}
			emit(l)
		}
	}
	if len(acked) >= expect {
		emit(newLine("done").put("distinct", len(acked)))
		return 0, nil
	}
	emit(newLine("timeout").put("distinct", len(acked)))
	return 1, nil
}

// received is a `received` line of message m, delivered for the delivery-th time in this run.
func received(m *rmq.MessageView, delivery int) *line {
	tag := ""
	if t := m.GetTag(); t != nil {
		tag = *t
	}
	group := ""
	if g := m.GetMessageGroup(); g != nil {
		group = *g
	}
	var seq interface{}
	if s, ok := m.GetProperties()["seq"]; ok {
		seq = s
	}
	return newLine("received").put("msg_id", m.GetMessageId()).put("body", string(m.GetBody())).
		put("seq", seq).put("tag", tag).put("keys", strings.Join(m.GetKeys(), " ")).
		put("group", group).put("delivery_attempt", m.GetDeliveryAttempt()).
		put("delivery", delivery).put("at_ms", nowMs())
}
