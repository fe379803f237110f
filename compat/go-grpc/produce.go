package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	rmq "github.com/apache/rocketmq-clients/golang/v5"
)

// runProduce: see the package doc.
func runProduce(a *args) (int, error) {
	cfg, err := config(a)
	if err != nil {
		return 2, err
	}
	topic, err := a.required("-t")
	if err != nil {
		return 2, err
	}
	count, err := a.number("-c", 0)
	if err != nil {
		return 2, err
	}
	delayMs, err := a.number("--delay-ms", 0)
	if err != nil {
		return 2, err
	}
	groups, err := a.number("--message-groups", 0)
	if err != nil {
		return 2, err
	}
	if delayMs > 0 && groups > 0 {
		return 2, usagef("a message is either delayed or FIFO")
	}
	tag := a.one("--tag", "")
	producer, err := rmq.NewProducer(cfg, rmq.WithTopics(topic))
	if err != nil {
		return 1, err
	}
	if err := producer.Start(); err != nil {
		return 1, err
	}
	defer producer.GracefulStop()
	emit(startedLine("produce"))
	for seq := 0; seq < count; seq++ {
		msg := &rmq.Message{Topic: topic, Body: []byte(fmt.Sprintf("%s:%d", topic, seq))}
		msg.SetKeys(fmt.Sprintf("K-%d", seq))
		msg.AddProperty("seq", strconv.Itoa(seq))
		if tag != "" {
			msg.SetTag(tag)
		}
		var deliver int64
		if delayMs > 0 {
			at := time.Now().Add(time.Duration(delayMs) * time.Millisecond)
			deliver = at.UnixMilli()
			msg.SetDelayTimestamp(at)
		}
		group := ""
		if groups > 0 {
			group = fmt.Sprintf("G%d", seq%groups)
			msg.SetMessageGroup(group)
		}
		receipts, err := producer.Send(context.Background(), msg)
		if err != nil {
			return 1, fmt.Errorf("send %d: %w", seq, err)
		}
		if len(receipts) != 1 {
			return 1, fmt.Errorf("send %d: %d receipts", seq, len(receipts))
		}
		emit(newLine("sent").put("seq", seq).put("msg_id", receipts[0].MessageID).
			put("deliver_ms", deliver).put("group", group))
	}
	emit(newLine("done").put("sent", count))
	return 0, nil
}
