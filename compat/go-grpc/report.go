package main

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"
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

var printMu sync.Mutex

// emit writes one line to stdout at once, so a runner killing the driver sees every line.
func emit(l *line) {
	b, err := json.Marshal(l)
	if err != nil {
		b = []byte(fmt.Sprintf(`{"op":"failed","error":%q}`, err.Error()))
	}
	printMu.Lock()
	defer printMu.Unlock()
	stdout.Write(append(b, '\n'))
}

func nowMs() int64 {
	return time.Now().UnixMilli()
}
