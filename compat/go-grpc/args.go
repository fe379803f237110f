package main

import (
	"fmt"
	"strconv"
)

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, v ...interface{}) error {
	return usageError{fmt.Sprintf(format, v...)}
}

// args is a command and its flags: `--flag value`, or a bare switch among switches.
type args struct {
	command string
	flags   map[string]string
}

var switches = map[string]bool{"--nack-first": true}

func parseArgs(argv []string) (*args, error) {
	if len(argv) == 0 {
		return nil, usagef("no command")
	}
	a := &args{command: argv[0], flags: map[string]string{}}
	rest := argv[1:]
	for i := 0; i < len(rest); i++ {
		key := rest[i]
		if switches[key] {
			a.flags[key] = "true"
			continue
		}
		if i+1 >= len(rest) {
			return nil, usagef("%s needs a value", key)
		}
		a.flags[key] = rest[i+1]
		i++
	}
	return a, nil
}

func (a *args) has(key string) bool {
	_, ok := a.flags[key]
	return ok
}

func (a *args) one(key, fallback string) string {
	if v, ok := a.flags[key]; ok {
		return v
	}
	return fallback
}

func (a *args) required(key string) (string, error) {
	v, ok := a.flags[key]
	if !ok || v == "" {
		return "", usagef("missing %s", key)
	}
	return v, nil
}

func (a *args) number(key string, fallback int) (int, error) {
	v, ok := a.flags[key]
	if !ok {
		return fallback, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, usagef("%s wants a number, not %q", key, v)
	}
	return n, nil
}
