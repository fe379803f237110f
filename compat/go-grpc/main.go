// Command go-grpc drives Apache's RocketMQ 5 gRPC client for Go
// (github.com/apache/rocketmq-clients/golang/v5 v5.1.2, unmodified) against a broker that
// serves gRPC itself, with the command line and JSON lines of the Python and Node.js
// drivers (compat/python-grpc/driver.py, compat/nodejs-grpc/driver.js). One JSON object per
// line on stdout, "op" first; exit 0 on success, 1 on a failure (a `failed` or `timeout`
// line says why), 2 on a usage error. The client's own log goes to stderr (at warn unless
// ROCKETMQ_GO_LOG_LEVEL says debug, info or error). ROCKETMQ_ACCESS_KEY and
// ROCKETMQ_SECRET_KEY, when set, are the credentials it signs its calls with.
//
//	produce --endpoints E -t TOPIC -c COUNT [--tag T] [--delay-ms MS] [--message-groups N]
//	    Producer.Send, one at a time: body `TOPIC:SEQ`, user property seq, key K-SEQ. With
//	    --delay-ms each is a delay message due MS after its send (SetDelayTimestamp); with
//	    --message-groups N a FIFO message of group `G<SEQ mod N>` (SetMessageGroup). Lines:
//	    `started`, `sent` (seq, msg_id, deliver_ms: 0 unless delayed, group: "" unless
//	    FIFO), `done` (sent).
//	simple  --endpoints E -t TOPIC -g GROUP --expect N --timeout-secs S [--nack-first]
//	        [--linger-ms MS] [--batch B]
//	    SimpleConsumer.Receive (B at most, default 16, invisible 20 s) and Ack. With --nack-first each
//	    message's first delivery gets ChangeInvisibleDuration(1 s) instead (a `nacked` line)
//	    and must come back; with --linger-ms it keeps receiving that long after the last
//	    expected message. Lines: `received` / `nacked` (msg_id, body, seq, tag, keys, group,
//	    delivery_attempt, delivery: this run's count for the id, at_ms), then `done` or
//	    `timeout` (distinct: messages acknowledged).
//	transaction --endpoints E -t TOPIC [--timeout-secs S] [--linger-ms MS]
//	    A Producer with a TransactionChecker, one transaction per name in transactions (body
//	    `TOPIC:NAME`, tag TagTx, key tx-NAME): committed, rolled back, and two left open
//	    (UNKNOWN) that the broker checks back over the producer's Telemetry stream
//	    (RecoverOrphanedTransactionCommand), answered COMMIT and ROLLBACK, which the client
//	    sends as EndTransaction. Lines: `sent` (name, msg_id, transaction_id, status OK),
//	    `checked` (name, msg_id, topic, times), then `done` (checked) once
//	    both open ones were checked (after lingering MS, default 1000, so that a second
//	    check would show), or `timeout`.
//
// Workarounds for the client's own defects, which any broker sees:
//   - Its log goes to a file under "$user.home/logs/rocketmqlogs" by default, with user.home
//     read as an environment variable that is never set: /logs at the file system's root.
//     The driver points its console appender at stderr instead (it writes to whatever
//     os.Stdout is when the logger is made, so the driver makes it with os.Stdout set to
//     stderr and keeps the real stdout for its lines).
//   - Ack and Transaction.Commit/RollBack report no refusal: Ack returns nil whatever status
//     the broker answered, Commit and RollBack log EndTransaction's error and return nil.
//     The tests therefore judge by what comes back (a message acknowledged in vain comes
//     back again) and by what the topic holds, never by these calls' results.
//   - A receive's deadline is the await duration plus the 3 s request timeout, and the
//     request carries no long-polling timeout (the Java client sends its await duration).
//     RocketMQ's proxy then polls for the deadline remaining less half the request timeout;
//     this broker polls 20 s, so the driver awaits 20 s, which both serve.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	rmq "github.com/apache/rocketmq-clients/golang/v5"
	"github.com/apache/rocketmq-clients/golang/v5/credentials"
)

// release is the client's version, pinned in go.mod.
const release = "5.1.2"

// stdout is where the lines go; os.Stdout itself is stderr while the client's logger is made.
var stdout = os.Stdout

func main() {
	setUpLogger()
	a, err := parseArgs(os.Args[1:])
	code := 0
	if err == nil {
		code, err = run(a)
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(os.Stderr, "go-grpc: %v\n", err)
		os.Exit(2)
	}
	if err != nil {
		emit(newLine("failed").put("error", err.Error()))
		os.Exit(1)
	}
	os.Exit(code)
}

// setUpLogger remakes the client's logger on stderr (see the package doc).
func setUpLogger() {
	level := os.Getenv("ROCKETMQ_GO_LOG_LEVEL")
	if level == "" {
		level = "warn"
	}
	os.Setenv(rmq.CLIENT_LOG_LEVEL, level)
	os.Setenv(rmq.ENABLE_CONSOLE_APPENDER, "true")
	os.Stdout = os.Stderr
	rmq.ResetLogger()
	os.Stdout = stdout
}

func run(a *args) (int, error) {
	switch a.command {
	case "produce":
		return runProduce(a)
	case "simple":
		return runSimple(a)
	case "transaction":
		return runTransaction(a)
	}
	return 2, usagef("unknown command %q (produce, simple, transaction)", a.command)
}

// config is the client configuration every command starts from.
func config(a *args) (*rmq.Config, error) {
	endpoints, err := a.required("--endpoints")
	if err != nil {
		return nil, err
	}
	return &rmq.Config{
		Endpoint: strings.TrimSpace(endpoints),
		Credentials: &credentials.SessionCredentials{
			AccessKey:    os.Getenv("ROCKETMQ_ACCESS_KEY"),
			AccessSecret: os.Getenv("ROCKETMQ_SECRET_KEY"),
		},
	}, nil
}

func startedLine(command string) *line {
	return newLine("started").put("command", command).put("client_version", release)
}
