package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	rmq "github.com/apache/rocketmq-clients/golang/v5"
)

// transactions are the run's transactions, by name: what the driver does after the send
// (commit, rollback) or what its checker answers (check-commit, check-rollback).
var transactions = []string{"commit", "rollback", "check-commit", "check-rollback"}

// checker answers the broker's checks: COMMIT for check-commit, ROLLBACK for
// check-rollback, UNKNOWN for anything else; it counts the checks of each name.
type checker struct {
	topic  string
	mu     sync.Mutex
	checks map[string]int
}

func (c *checker) check(m *rmq.MessageView) rmq.TransactionResolution {
	name := strings.TrimPrefix(string(m.GetBody()), c.topic+":")
	c.mu.Lock()
	c.checks[name]++
	times := c.checks[name]
	c.mu.Unlock()
	// The client hands the checker no transaction id (the command's is not in the view).
	emit(newLine("checked").put("name", name).put("msg_id", m.GetMessageId()).
		put("topic", m.GetTopic()).put("times", times))
	switch name {
	case "check-commit":
		return rmq.COMMIT
	case "check-rollback":
		return rmq.ROLLBACK
	}
	return rmq.UNKNOWN
}

func (c *checker) answeredBoth() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.checks["check-commit"] > 0 && c.checks["check-rollback"] > 0
}

func (c *checker) names() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.checks)
}

// runTransaction: see the package doc.
func runTransaction(a *args) (int, error) {
	cfg, err := config(a)
	if err != nil {
		return 2, err
	}
	topic, err := a.required("-t")
	if err != nil {
		return 2, err
	}
	timeoutSecs, err := a.number("--timeout-secs", 60)
	if err != nil {
		return 2, err
	}
	lingerMs, err := a.number("--linger-ms", 1000)
	if err != nil {
		return 2, err
	}
	c := &checker{topic: topic, checks: map[string]int{}}
	producer, err := rmq.NewProducer(cfg,
		rmq.WithTopics(topic),
		rmq.WithTransactionChecker(&rmq.TransactionChecker{Check: c.check}),
	)
	if err != nil {
		return 1, err
	}
	if err := producer.Start(); err != nil {
		return 1, err
	}
	defer producer.GracefulStop()
	emit(startedLine("transaction"))
	for _, name := range transactions {
		msg := &rmq.Message{Topic: topic, Body: []byte(topic + ":" + name)}
		msg.SetKeys("tx-" + name)
		msg.SetTag("TagTx")
		tx := producer.BeginTransaction()
		receipts, err := producer.SendWithTransaction(context.Background(), msg, tx)
		if err != nil {
			return 1, fmt.Errorf("send %s: %w", name, err)
		}
		if len(receipts) != 1 {
			return 1, fmt.Errorf("send %s: %d receipts", name, len(receipts))
		}
		emit(newLine("sent").put("name", name).put("msg_id", receipts[0].MessageID).
			put("transaction_id", receipts[0].TransactionId).put("status", "OK"))
		// Neither reports a refused EndTransaction (see the package doc).
		switch name {
		case "commit":
			tx.Commit()
		case "rollback":
			tx.RollBack()
		}
	}
	deadline := time.Now().Add(time.Duration(timeoutSecs) * time.Second)
	for !c.answeredBoth() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !c.answeredBoth() {
		emit(newLine("timeout").put("checked", c.names()))
		return 1, nil
	}
	// The answers travel as EndTransaction calls; a second check would show meanwhile.
	time.Sleep(time.Duration(lingerMs) * time.Millisecond)
	emit(newLine("done").put("checked", c.names()))
	return 0, nil
}
