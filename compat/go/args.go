package main

import (
	"fmt"
	"strconv"
	"strings"
)

const usage = `usage: go-client COMMAND [flags]

  version
  produce -n NS -t TOPIC -c COUNT [--mode sync|async|oneway|batch|ordered] [--group G]
          [--tag T]... [--key K] [--prop k=v]... [--body-bytes B] [--delay-level L]
          [--order-keys N] [--retries R] [--vip] [--no-compress] [--timeout-ms MS]
          [--interval-ms MS]
  consume -n NS -t TOPIC -g GROUP --expect N --timeout-secs S [--expr EXPR | --sql SQL92] [--linger-ms MS]
          [--orderly] [--broadcast] [--fail-first K | --fail-always --expect-refusals R]
          [--max-reconsume-times M] [--vip]
  pull    -n NS -t TOPIC -g GROUP --expect N --timeout-secs S [--expr EXPR] [--linger-ms MS]
  transaction -n NS -t TOPIC [--group G] [--timeout-secs S] [--linger-ms MS]
  request -n NS -t TOPIC -c COUNT [--group G] [--timeout-ms MS]
  admin   -n NS ACTION [flags]
          topic-list
          create-topic -t TOPIC -b BROKER_ADDR [--queues N]
          delete-topic -t TOPIC [-c CLUSTER] [-b BROKER_ADDR]

Every outcome is one JSON object per line on stdout; the client's logs go to stderr
(ROCKETMQ_GO_LOG_LEVEL, warn by default). Exit 0 on success, 1 on a failure (a "failed" line
says why), 2 on a usage error. produce: message SEQ (0-based) has the body "TOPIC:SEQ:" padded
with a-z to B bytes, the tag number SEQ mod (number of --tag), the key "K-SEQ", the user
property seq=SEQ and every --prop.`

// usageError is a bad command line (exit code 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...interface{}) error {
	return usageError{fmt.Sprintf(format, a...)}
}

// switches take no value.
var switches = map[string]bool{
	"--vip": true, "--no-compress": true, "--orderly": true, "--broadcast": true,
	"--fail-always": true,
}

type flagValue struct {
	name  string
	value *string
}

// args is the command line: the command, positional words (the admin action) and flags in
// order as given.
type args struct {
	command string
	words   []string
	given   []flagValue
}

func parseArgs(argv []string) (*args, error) {
	if len(argv) == 0 {
		return nil, usagef("no command")
	}
	a := &args{command: argv[0]}
	for i := 1; i < len(argv); i++ {
		f := argv[i]
		if !strings.HasPrefix(f, "-") {
			// Anywhere on the line: "admin -n NS ACTION" and "admin ACTION -n NS" alike.
			a.words = append(a.words, f)
			continue
		}
		if switches[f] {
			a.given = append(a.given, flagValue{name: f})
			continue
		}
		if i+1 >= len(argv) {
			return nil, usagef("%s needs a value", f)
		}
		v := argv[i+1]
		i++
		a.given = append(a.given, flagValue{name: f, value: &v})
	}
	return a, nil
}

func (a *args) only(known ...string) error {
	allowed := map[string]bool{}
	for _, k := range known {
		allowed[k] = true
	}
	for _, g := range a.given {
		if !allowed[g.name] {
			return usagef("unknown flag %s for %s", g.name, a.command)
		}
	}
	return nil
}

func (a *args) all(flag string) []string {
	var out []string
	for _, g := range a.given {
		if g.name == flag && g.value != nil {
			out = append(out, *g.value)
		}
	}
	return out
}

func (a *args) one(flag, fallback string) (string, error) {
	values := a.all(flag)
	if len(values) > 1 {
		return "", usagef("%s given more than once", flag)
	}
	if len(values) == 0 {
		return fallback, nil
	}
	return values[0], nil
}

func (a *args) required(flag string) (string, error) {
	v, err := a.one(flag, "")
	if err != nil {
		return "", err
	}
	if v == "" {
		return "", usagef("%s is required", flag)
	}
	return v, nil
}

func (a *args) number(flag string, fallback int64) (int64, error) {
	v, err := a.one(flag, "")
	if err != nil || v == "" {
		return fallback, err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, usagef("%s %s: not a number", flag, v)
	}
	return n, nil
}

func (a *args) requiredNumber(flag string) (int64, error) {
	if _, err := a.required(flag); err != nil {
		return 0, err
	}
	return a.number(flag, 0)
}

func (a *args) has(flag string) bool {
	for _, g := range a.given {
		if g.name == flag {
			return true
		}
	}
	return false
}
