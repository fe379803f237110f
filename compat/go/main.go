// Command go-client drives the official Go RocketMQ client (github.com/apache/rocketmq-client-go/v2,
// unmodified) against this project's broker and name server, for its compatibility tests.
// Every outcome is one JSON object per line on stdout; the client logs to stderr.
//
//   - produce: a producer, sync/async/oneway/batch/ordered (hash queue selector on a sharding key).
//   - consume: a push consumer (tag expression, orderly, broadcasting, refusals to the retry topic).
//   - pull: the v2 pull consumer (Poll, then ACK).
//   - admin: topic list, create, delete.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"sync/atomic"

	"github.com/apache/rocketmq-client-go/v2/rlog"
)

func main() {
	if os.Getenv("ROCKETMQ_GO_LOG_LEVEL") == "" {
		rlog.SetLogLevel("warn")
	}
	a, err := parseArgs(os.Args[1:])
	code := 0
	if err == nil {
		code, err = run(a)
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(os.Stderr, "go-client: %v\n%s\n", err, usage)
		os.Exit(2)
	}
	if err != nil {
		emit(failure("run", err))
		os.Exit(1)
	}
	os.Exit(code)
}

func run(a *args) (int, error) {
	if a.command != "admin" && len(a.words) > 0 {
		return 2, usagef("unexpected argument %q", a.words[0])
	}
	switch a.command {
	case "version":
		emit(startedLine("version"))
		return 0, nil
	case "produce":
		return runProduce(a)
	case "consume":
		return runConsume(a)
	case "pull":
		return runPull(a)
	case "admin":
		return runAdmin(a)
	case "transaction":
		return runTransaction(a)
	case "request":
		return runRequest(a)
	default:
		return 2, usagef("unknown command %q", a.command)
	}
}

// clientVersion is the rocketmq-client-go module version this binary was built with.
func clientVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "github.com/apache/rocketmq-client-go/v2" {
				return dep.Version
			}
		}
	}
	return "unknown"
}

func startedLine(command string) *line {
	return newLine("started").put("command", command).put("client", "rocketmq-client-go").
		put("client_version", clientVersion())
}

var instances int64

// instanceName is unique per client of a run, so clients never share a client instance.
func instanceName() string {
	return "go-drv-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(atomic.AddInt64(&instances, 1), 10)
}

func itoa(i int) string { return strconv.Itoa(i) }
