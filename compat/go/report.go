package main

import (
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os"
	"sync"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// line is one JSON object; "op" is written first.
type line struct {
	op     string
	keys   []string
	values map[string]interface{}
}

func newLine(op string) *line {
	return &line{op: op, values: map[string]interface{}{}}
}

func (l *line) put(key string, value interface{}) *line {
	if _, ok := l.values[key]; !ok {
		l.keys = append(l.keys, key)
	}
	l.values[key] = value
	return l
}

func (l *line) MarshalJSON() ([]byte, error) {
	buf := []byte(`{"op":`)
	op, _ := json.Marshal(l.op)
	buf = append(buf, op...)
	for _, k := range l.keys {
		kb, _ := json.Marshal(k)
		vb, err := json.Marshal(l.values[k])
		if err != nil {
			return nil, err
		}
		buf = append(buf, ',')
		buf = append(buf, kb...)
		buf = append(buf, ':')
		buf = append(buf, vb...)
	}
	return append(buf, '}'), nil
}

var (
	printMu sync.Mutex
	started = time.Now()
)

// emit writes one line to stdout at once, so a runner killing the driver sees every line.
func emit(l *line) {
	b, err := json.Marshal(l)
	if err != nil {
		b = []byte(fmt.Sprintf(`{"op":"failed","step":"report","error":%q}`, err.Error()))
	}
	printMu.Lock()
	defer printMu.Unlock()
	os.Stdout.Write(append(b, '\n'))
}

func elapsedMs() int64 {
	return time.Since(started).Milliseconds()
}

func failure(step string, err error) *line {
	return newLine("failed").put("step", step).put("error", err.Error())
}

// systemProperties are the property keys the Java client reserves (MessageConst); the rest
// are user properties.
var systemProperties = map[string]bool{
	"TRACE_ON": true, "MSG_REGION": true, "KEYS": true, "TAGS": true, "WAIT": true,
	"DELAY": true, "RETRY_TOPIC": true, "REAL_TOPIC": true, "REAL_QID": true, "TRAN_MSG": true,
	"PGROUP": true, "MIN_OFFSET": true, "MAX_OFFSET": true, "BUYER_ID": true,
	"ORIGIN_MESSAGE_ID": true, "TRANSFER_FLAG": true, "CORRECTION_FLAG": true,
	"MQ2_FLAG": true, "RECONSUME_TIME": true, "UNIQ_KEY": true, "MAX_RECONSUME_TIMES": true,
	"CONSUME_START_TIME": true, "TRAN_PREPARED_QUEUE_OFFSET": true,
	"TRANSACTION_CHECK_TIMES": true, "CHECK_IMMUNITY_TIME_IN_SECONDS": true,
	"SHARDING_KEY": true, "__transactionId__": true, "CORRELATION_ID": true,
	"REPLY_TO_CLIENT": true, "TTL": true, "ARRIVE_TIME": true, "MSG_TYPE": true,
	"CLUSTER": true, "INSTANCE_ID": true, "DLQ_ORIGIN_TOPIC": true,
	"DLQ_ORIGIN_MESSAGE_ID": true, "__STARTDELIVERTIME": true, "UNIQ_KEY_SEQ": true,
}

// bodyPrintedMax: bodies up to this size are printed in full; longer ones by length and CRC.
const bodyPrintedMax = 1024

func messageLine(op string, m *primitive.MessageExt) *line {
	user := map[string]string{}
	system := map[string]string{}
	for k, v := range m.GetProperties() {
		if systemProperties[k] {
			system[k] = v
		} else {
			user[k] = v
		}
	}
	l := newLine(op).
		put("msg_id", m.MsgId).
		put("offset_msg_id", m.OffsetMsgId).
		put("topic", m.Topic).
		put("tags", m.GetTags()).
		put("keys", m.GetKeys()).
		put("properties", user).
		put("sys_properties", system).
		put("body_len", len(m.Body)).
		put("body_crc32", crc32.ChecksumIEEE(m.Body))
	if m.Queue != nil {
		l.put("queue_id", m.Queue.QueueId).put("broker_name", m.Queue.BrokerName)
	}
	l.put("queue_offset", m.QueueOffset).
		put("reconsume_times", m.ReconsumeTimes).
		put("store_host", m.StoreHost).
		put("commit_log_offset", m.CommitLogOffset).
		put("born_timestamp", m.BornTimestamp).
		put("store_timestamp", m.StoreTimestamp).
		put("sys_flag", m.SysFlag)
	if len(m.Body) <= bodyPrintedMax {
		l.put("body", string(m.Body))
	}
	return l
}

func sendResultLine(l *line, r *primitive.SendResult) *line {
	l.put("status", sendStatus(r.Status)).
		put("msg_id", r.MsgID).
		put("offset_msg_id", r.OffsetMsgID).
		put("queue_offset", r.QueueOffset)
	if r.MessageQueue != nil {
		l.put("broker_name", r.MessageQueue.BrokerName).put("queue_id", r.MessageQueue.QueueId)
	}
	return l
}

func sendStatus(s primitive.SendStatus) string {
	switch s {
	case primitive.SendOK:
		return "SEND_OK"
	case primitive.SendFlushDiskTimeout:
		return "FLUSH_DISK_TIMEOUT"
	case primitive.SendFlushSlaveTimeout:
		return "FLUSH_SLAVE_TIMEOUT"
	case primitive.SendSlaveNotAvailable:
		return "SLAVE_NOT_AVAILABLE"
	default:
		return fmt.Sprintf("UNKNOWN(%d)", s)
	}
}
