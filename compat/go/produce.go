package main

import (
	"context"
	"hash/crc32"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// body of message seq: "TOPIC:SEQ:" padded with a..z to size bytes.
func body(topic string, seq int64, size int64) []byte {
	b := []byte(topic + ":" + strconv.FormatInt(seq, 10) + ":")
	for i := 0; int64(len(b)) < size; i++ {
		b = append(b, byte('a'+i%26))
	}
	return b
}

// runProduce: a producer sending COUNT numbered messages. Lines: "sent" per acknowledged
// send (sync, async, ordered), "sent_oneway", one "sent_batch", "send_failed", then "done".
func runProduce(a *args) (int, error) {
	if err := a.only("-n", "-t", "-c", "--mode", "--group", "--tag", "--key", "--prop",
		"--body-bytes", "--delay-level", "--order-keys", "--retries", "--vip",
		"--no-compress", "--timeout-ms", "--interval-ms"); err != nil {
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
	if count < 1 || count > 100000 {
		return 2, usagef("-c must be 1..100000")
	}
	mode, _ := a.one("--mode", "sync")
	switch mode {
	case "sync", "async", "oneway", "batch", "ordered":
	default:
		return 2, usagef("--mode must be sync, async, oneway, batch or ordered")
	}
	group, _ := a.one("--group", "go_driver_producer")
	bodyBytes, err := a.number("--body-bytes", 0)
	if err != nil {
		return 2, err
	}
	delayLevel, err := a.number("--delay-level", 0)
	if err != nil {
		return 2, err
	}
	orderKeys, err := a.number("--order-keys", 4)
	if err != nil {
		return 2, err
	}
	retries, err := a.number("--retries", 0)
	if err != nil {
		return 2, err
	}
	timeoutMs, err := a.number("--timeout-ms", 10000)
	if err != nil {
		return 2, err
	}
	// Paced sends (sync and ordered modes): a steady stream across a fault.
	intervalMs, err := a.number("--interval-ms", 0)
	if err != nil {
		return 2, err
	}
	key, _ := a.one("--key", "")
	tags := a.all("--tag")
	var props [][2]string
	for _, p := range a.all("--prop") {
		eq := strings.Index(p, "=")
		if eq <= 0 {
			return 2, usagef("--prop %s: expected k=v", p)
		}
		props = append(props, [2]string{p[:eq], p[eq+1:]})
	}

	opts := []producer.Option{
		producer.WithNsResolver(primitive.NewPassthroughResolver(strings.Split(ns, ";"))),
		producer.WithGroupName(group),
		producer.WithInstanceName(instanceName()),
		producer.WithRetry(int(retries)),
		producer.WithSendMsgTimeout(time.Duration(timeoutMs) * time.Millisecond),
		producer.WithVIPChannel(a.has("--vip")),
	}
	if a.has("--no-compress") {
		opts = append(opts, producer.WithCompressMsgBodyOverHowmuch(1<<30))
	}
	// ACL: the client signs its requests when credentials are in the environment.
	if ak, sk := os.Getenv("ROCKETMQ_ACCESS_KEY"), os.Getenv("ROCKETMQ_SECRET_KEY"); ak != "" && sk != "" {
		opts = append(opts, producer.WithCredentials(primitive.Credentials{AccessKey: ak, SecretKey: sk}))
	}
	if mode == "ordered" {
		opts = append(opts, producer.WithQueueSelector(producer.NewHashQueueSelector()))
	}
	p, err := producer.NewDefaultProducer(opts...)
	if err != nil {
		return 1, err
	}
	emit(startedLine("produce").put("mode", mode).put("vip_channel", a.has("--vip")))
	if err := p.Start(); err != nil {
		return 1, err
	}
	defer p.Shutdown()

	msgs := make([]*primitive.Message, count)
	for seq := int64(0); seq < count; seq++ {
		m := primitive.NewMessage(topic, body(topic, seq, bodyBytes))
		if len(tags) > 0 {
			m.WithTag(tags[seq%int64(len(tags))])
		}
		if key != "" {
			m.WithKeys([]string{key + "-" + strconv.FormatInt(seq, 10)})
		}
		if delayLevel > 0 {
			m.WithDelayTimeLevel(int(delayLevel))
		}
		m.WithProperty("seq", strconv.FormatInt(seq, 10))
		for _, kv := range props {
			m.WithProperty(kv[0], kv[1])
		}
		if mode == "ordered" {
			m.WithShardingKey(strconv.FormatInt(seq%orderKeys, 10))
		}
		msgs[seq] = m
	}
	bodyFields := func(l *line, m *primitive.Message) *line {
		return l.put("body_len", len(m.Body)).put("body_crc32", crc32.ChecksumIEEE(m.Body)).
			put("tags", m.GetTags()).put("keys", m.GetKeys())
	}

	ctx := context.Background()
	acked, failed := 0, 0
	var mu sync.Mutex
	switch mode {
	case "sync", "ordered":
		for seq, m := range msgs {
			if seq > 0 && intervalMs > 0 {
				time.Sleep(time.Duration(intervalMs) * time.Millisecond)
			}
			l := bodyFields(newLine("sent").put("seq", seq), m)
			if mode == "ordered" {
				l.put("order_key", m.GetShardingKey())
			}
			r, err := p.SendSync(ctx, m)
			if err != nil {
				failed++
				emit(sendFailed(err).put("seq", seq))
				continue
			}
			emit(sendResultLine(l, r))
			if r.Status == primitive.SendOK {
				acked++
			} else {
				failed++
			}
		}
	case "async":
		var wg sync.WaitGroup
		for seq, m := range msgs {
			seq := seq
			l := bodyFields(newLine("sent").put("seq", seq).put("async", true), m)
			wg.Add(1)
			err := p.SendAsync(ctx, func(_ context.Context, r *primitive.SendResult, err error) {
				defer wg.Done()
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failed++
					emit(sendFailed(err).put("seq", seq))
					return
				}
				emit(sendResultLine(l, r))
				if r.Status == primitive.SendOK {
					acked++
				} else {
					failed++
				}
			}, m)
			if err != nil {
				wg.Done()
				mu.Lock()
				failed++
				mu.Unlock()
				emit(sendFailed(err).put("seq", seq))
			}
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(120 * time.Second):
			emit(newLine("failed").put("step", "send").put("error", "async callbacks missing after 120 s"))
			mu.Lock()
			failed++
			mu.Unlock()
		}
	case "oneway":
		for seq, m := range msgs {
			if err := p.SendOneWay(ctx, m); err != nil {
				failed++
				emit(sendFailed(err).put("seq", seq))
				continue
			}
			acked++
			emit(bodyFields(newLine("sent_oneway").put("seq", seq), m).
				put("msg_id", m.GetProperty(primitive.PropertyUniqueClientMessageIdKeyIndex)))
		}
	case "batch":
		r, err := p.SendSync(ctx, msgs...)
		if err != nil {
			failed++
			emit(sendFailed(err).put("count", len(msgs)))
			break
		}
		l := newLine("sent_batch").put("count", len(msgs))
		sendResultLine(l, r)
		l.put("msg_ids", splitIDs(r.MsgID)).put("offset_msg_ids", splitIDs(r.OffsetMsgID))
		emit(l)
		if r.Status == primitive.SendOK {
			acked += len(msgs)
		} else {
			failed++
		}
	}
	emit(newLine("done").put("acked", acked).put("failed", failed))
	if failed > 0 {
		return 1, nil
	}
	return 0, nil
}

func splitIDs(ids string) []string {
	if ids == "" {
		return []string{}
	}
	return strings.Split(ids, ",")
}

func sendFailed(err error) *line {
	return newLine("send_failed").put("step", "send").put("error", err.Error())
}
