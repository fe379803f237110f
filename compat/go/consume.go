package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

type consumeArgs struct {
	ns, topic, group, expr string
	// sql: a SQL92 expression (--sql) selecting instead of the tag expression.
	sql               string
	expect, timeoutMs int64
	lingerMs          int64
}

// selector: the SQL92 selector when --sql was given, else the tag expression.
func (c *consumeArgs) selector() consumer.MessageSelector {
	if c.sql != "" {
		return consumer.MessageSelector{Type: consumer.SQL92, Expression: c.sql}
	}
	return consumer.MessageSelector{Type: consumer.TAG, Expression: c.expr}
}

func parseConsumeArgs(a *args) (*consumeArgs, error) {
	c := &consumeArgs{}
	var err error
	if c.ns, err = a.required("-n"); err != nil {
		return nil, err
	}
	if c.topic, err = a.required("-t"); err != nil {
		return nil, err
	}
	if c.group, err = a.required("-g"); err != nil {
		return nil, err
	}
	if c.expr, err = a.one("--expr", "*"); err != nil {
		return nil, err
	}
	if c.sql, err = a.one("--sql", ""); err != nil {
		return nil, err
	}
	if c.sql != "" && a.has("--expr") {
		return nil, fmt.Errorf("--sql and --expr exclude each other")
	}
	if c.expect, err = a.requiredNumber("--expect"); err != nil {
		return nil, err
	}
	secs, err := a.requiredNumber("--timeout-secs")
	if err != nil {
		return nil, err
	}
	c.timeoutMs = secs * 1000
	if c.lingerMs, err = a.number("--linger-ms", 0); err != nil {
		return nil, err
	}
	return c, nil
}

// tally counts accepted deliveries by message id.
type tally struct {
	mu         sync.Mutex
	accepted   map[string]bool
	deliveries map[string]int
	acceptedN  int
	refusals   int
}

func newTally() *tally {
	return &tally{accepted: map[string]bool{}, deliveries: map[string]int{}}
}

func (t *tally) distinct() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.accepted)
}

// runConsume: a push consumer in a group. Done when --expect N distinct messages were accepted,
// or with --fail-always (every delivery refused) when --expect-refusals R refusals were made. Lines: "received" per accepted delivery
// (delivery: 1 for the first delivery of that id), "refused" per refused one (ConsumeRetryLater,
// or SuspendCurrentQueueAMoment when --orderly), then "done" or "timeout" (exit 1).
func runConsume(a *args) (int, error) {
	if err := a.only("-n", "-t", "-g", "--expr", "--sql", "--expect", "--timeout-secs", "--linger-ms",
		"--orderly", "--broadcast", "--fail-first", "--fail-always", "--expect-refusals",
		"--max-reconsume-times", "--vip"); err != nil {
		return 2, err
	}
	failAlways := a.has("--fail-always")
	if failAlways && !a.has("--expect") {
		a.given = append(a.given, flagValue{name: "--expect", value: strPtr("0")})
	}
	c, err := parseConsumeArgs(a)
	if err != nil {
		return 2, err
	}
	expectRefusals, err := a.number("--expect-refusals", 0)
	if err != nil {
		return 2, err
	}
	if failAlways && expectRefusals <= 0 {
		return 2, usagef("--fail-always needs --expect-refusals R")
	}
	failFirst, err := a.number("--fail-first", 0)
	if err != nil {
		return 2, err
	}
	orderly := a.has("--orderly")
	opts := []consumer.Option{
		consumer.WithNsResolver(primitive.NewPassthroughResolver(strings.Split(c.ns, ";"))),
		consumer.WithGroupName(c.group),
		consumer.WithInstance(instanceName()),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
		consumer.WithConsumerOrder(orderly),
		consumer.WithVIPChannel(a.has("--vip")),
	}
	if a.has("--broadcast") {
		opts = append(opts, consumer.WithConsumerModel(consumer.BroadCasting))
	}
	if a.has("--max-reconsume-times") {
		m, err := a.number("--max-reconsume-times", 16)
		if err != nil {
			return 2, err
		}
		opts = append(opts, consumer.WithMaxReconsumeTimes(int32(m)))
	}
	pc, err := consumer.NewPushConsumer(opts...)
	if err != nil {
		return 1, err
	}
	t := newTally()
	err = pc.Subscribe(c.topic, c.selector(), func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		t.mu.Lock()
		defer t.mu.Unlock()
		accept := true
		var lines []*line
		for _, m := range msgs {
			t.deliveries[m.MsgId]++
			d := t.deliveries[m.MsgId]
			if failAlways || int64(d) <= failFirst {
				accept = false
			}
			lines = append(lines, messageLine("received", m).put("delivery", d).put("batch", len(msgs)))
		}
		for i, l := range lines {
			if accept {
				dup := t.accepted[msgs[i].MsgId]
				t.accepted[msgs[i].MsgId] = true
				t.acceptedN++
				l.put("duplicate", dup)
			} else {
				t.refusals++
				l.op = "refused"
			}
			emit(l.put("t_ms", elapsedMs()))
		}
		if accept {
			return consumer.ConsumeSuccess, nil
		}
		if orderly {
			return consumer.SuspendCurrentQueueAMoment, nil
		}
		return consumer.ConsumeRetryLater, nil
	})
	if err != nil {
		return 1, err
	}
	emit(startedLine("consume").put("orderly", orderly).put("broadcast", a.has("--broadcast")).
		put("expr", c.expr).put("sql", c.sql))
	if err := pc.Start(); err != nil {
		return 1, err
	}
	complete := waitFor(func() bool {
		if failAlways {
			t.mu.Lock()
			defer t.mu.Unlock()
			return int64(t.refusals) >= expectRefusals
		}
		return int64(t.distinct()) >= c.expect
	}, c.timeoutMs)
	if complete && c.lingerMs > 0 {
		time.Sleep(time.Duration(c.lingerMs) * time.Millisecond)
	}
	if err := pc.Shutdown(); err != nil {
		emit(failure("shutdown", err))
	}
	t.mu.Lock()
	l := newLine("done").put("distinct", len(t.accepted)).put("accepted_deliveries", t.acceptedN).
		put("refusals", t.refusals).put("t_ms", elapsedMs())
	t.mu.Unlock()
	if !complete {
		l.op = "timeout"
		emit(l)
		return 1, nil
	}
	emit(l)
	return 0, nil
}

func waitFor(cond func() bool, timeoutMs int64) bool {
	deadline := time.Now().Add(time.Duration(timeoutMs) * time.Millisecond)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return cond()
}

// runPull: the v2 pull consumer's Poll, then ACK of each batch as consumed (the consumer's own
// rebalance assigns queues and pulls in the background). Lines: "received" per message, then
// "done" or "timeout" (exit 1). (Its Pull/PullFrom calls are not driven: they share the
// offset store with that background pulling, so their results depend on its timing.)
func runPull(a *args) (int, error) {
	// No --sql: v2.1.2's pull consumer sends every pull with the TAG expression type.
	if err := a.only("-n", "-t", "-g", "--expr", "--expect", "--timeout-secs", "--linger-ms"); err != nil {
		return 2, err
	}
	c, err := parseConsumeArgs(a)
	if err != nil {
		return 2, err
	}
	pc, err := consumer.NewPullConsumer(
		consumer.WithNsResolver(primitive.NewPassthroughResolver(strings.Split(c.ns, ";"))),
		consumer.WithGroupName(c.group),
		consumer.WithInstance(instanceName()),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
	)
	if err != nil {
		return 1, err
	}
	if err := pc.Subscribe(c.topic, c.selector()); err != nil {
		return 1, err
	}
	emit(startedLine("pull").put("expr", c.expr))
	if err := pc.Start(); err != nil {
		return 1, err
	}
	seen := map[string]bool{}
	ctx := context.Background()
	step := func() {
		cr, err := pc.Poll(ctx, 500*time.Millisecond)
		if consumer.IsNoNewMsgError(err) {
			return
		}
		if err != nil {
			emit(failure("poll", err))
			time.Sleep(200 * time.Millisecond)
			return
		}
		for _, m := range cr.GetMsgList() {
			dup := seen[m.MsgId]
			seen[m.MsgId] = true
			emit(messageLine("received", m).put("duplicate", dup).put("t_ms", elapsedMs()))
		}
		pc.ACK(ctx, cr, consumer.ConsumeSuccess)
	}
	deadline := time.Now().Add(time.Duration(c.timeoutMs) * time.Millisecond)
	for int64(len(seen)) < c.expect && time.Now().Before(deadline) {
		step()
	}
	complete := int64(len(seen)) >= c.expect
	if complete && c.lingerMs > 0 {
		until := time.Now().Add(time.Duration(c.lingerMs) * time.Millisecond)
		for time.Now().Before(until) {
			step()
		}
	}
	if err := pc.Shutdown(); err != nil {
		emit(failure("shutdown", err))
	}
	l := newLine("done").put("distinct", len(seen)).put("t_ms", elapsedMs())
	if !complete {
		l.op = "timeout"
		emit(l)
		return 1, nil
	}
	emit(l)
	return 0, nil
}

func strPtr(s string) *string { return &s }
