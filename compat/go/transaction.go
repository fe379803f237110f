package main

import (
	"context"
	"strings"
	"sync"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// transactionNames: how each message's local transaction ends. "commit" and "rollback" end
// at once; the "check-" ones stay unknown until the broker checks them back, when the
// listener answers commit and rollback.
var transactionNames = []string{"commit", "rollback", "check-commit", "check-rollback"}

type txListener struct {
	mu      sync.Mutex
	checks  map[string]int
	checked chan string
}

func txName(body []byte) string {
	text := string(body)
	return text[strings.Index(text, ":")+1:]
}

func (l *txListener) ExecuteLocalTransaction(m *primitive.Message) primitive.LocalTransactionState {
	switch txName(m.Body) {
	case "commit":
		return primitive.CommitMessageState
	case "rollback":
		return primitive.RollbackMessageState
	}
	return primitive.UnknowState
}

func (l *txListener) CheckLocalTransaction(m *primitive.MessageExt) primitive.LocalTransactionState {
	name := txName(m.Body)
	l.mu.Lock()
	l.checks[name]++
	times := l.checks[name]
	l.mu.Unlock()
	emit(newLine("checked").put("name", name).put("body", string(m.Body)).
		put("msg_id", m.MsgId).put("transaction_id", m.TransactionId).
		put("topic", m.Topic).put("times", times))
	if times == 1 && strings.HasPrefix(name, "check-") {
		l.checked <- name
	}
	switch name {
	case "check-commit":
		return primitive.CommitMessageState
	case "check-rollback":
		return primitive.RollbackMessageState
	}
	return primitive.UnknowState
}

// runTransaction: a transaction producer sending one message per transactionNames entry
// (body TOPIC:NAME, tag TagTx). Lines: "sent" per send (send result, local state),
// "checked" per check-back, then "done" once both unknown transactions were checked, or
// after --timeout-secs (exit 1 then). It lingers --linger-ms after the last expected
// check so its answer leaves and a second check would show.
func runTransaction(a *args) (int, error) {
	if err := a.only("-n", "-t", "--group", "--timeout-secs", "--linger-ms"); err != nil {
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
	group, _ := a.one("--group", "go_driver_tx_producer")
	timeoutSecs, err := a.number("--timeout-secs", 60)
	if err != nil {
		return 2, err
	}
	lingerMs, err := a.number("--linger-ms", 1000)
	if err != nil {
		return 2, err
	}
	listener := &txListener{checks: map[string]int{}, checked: make(chan string, 16)}
	p, err := rocketmq.NewTransactionProducer(listener,
		producer.WithNsResolver(primitive.NewPassthroughResolver(strings.Split(ns, ";"))),
		producer.WithGroupName(group),
		producer.WithInstanceName(instanceName()),
		producer.WithRetry(2),
		producer.WithSendMsgTimeout(10*time.Second),
	)
	if err != nil {
		return 1, err
	}
	emit(startedLine("transaction"))
	if err := p.Start(); err != nil {
		return 1, err
	}
	defer p.Shutdown()
	failures := 0
	for _, name := range transactionNames {
		m := primitive.NewMessage(topic, []byte(topic+":"+name))
		m.WithTag("TagTx")
		m.WithKeys([]string{"tx-" + name})
		r, err := p.SendMessageInTransaction(context.Background(), m)
		if err != nil {
			failures++
			emit(failure("send", err).put("op", "send_failed").put("name", name))
			continue
		}
		emit(sendResultLine(newLine("sent"), r.SendResult).put("name", name).
			put("transaction_id", r.TransactionID).put("local_state", int(r.State)))
	}
	deadline := time.After(time.Duration(timeoutSecs) * time.Second)
	for left := 2; left > 0; {
		select {
		case <-listener.checked:
			left--
		case <-deadline:
			failures++
			emit(newLine("failed").put("step", "check").
				put("error", "unknown transactions not checked back in time"))
			left = 0
		}
	}
	time.Sleep(time.Duration(lingerMs) * time.Millisecond)
	emit(newLine("done").put("failed", failures))
	if failures > 0 {
		return 1, nil
	}
	return 0, nil
}
