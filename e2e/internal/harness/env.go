package harness

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Env reads settings from environment variables. A bad value is not replaced by the default: it is
// remembered with the variable's name, and Err reports every one of them.
type Env struct {
	lookup func(string) (string, bool)
	errs   []error
}

// NewEnv reads the process environment, then pins (hack/versions.env, which the Makefile would have
// passed) for a key the environment does not set. pins may be nil.
func NewEnv(pins map[string]string) *Env {
	return &Env{lookup: func(k string) (string, bool) {
		if v, ok := os.LookupEnv(k); ok && v != "" {
			return v, true
		}
		v, ok := pins[k]
		return v, ok && v != ""
	}}
}

// NewEnvFrom reads lookup only (for tests).
func NewEnvFrom(lookup func(string) (string, bool)) *Env { return &Env{lookup: lookup} }

func (e *Env) fail(key, value, want string) {
	e.errs = append(e.errs, fmt.Errorf("%s=%q: %s", key, value, want))
}

// String returns the value of key, or def when it is unset or empty.
func (e *Env) String(key, def string) string {
	if v, ok := e.lookup(key); ok {
		return v
	}
	return def
}

// Required returns the value of key; an unset or empty key is an error.
func (e *Env) Required(key string) string {
	v, ok := e.lookup(key)
	if !ok {
		e.errs = append(e.errs, fmt.Errorf("%s is not set (the Makefile passes it from %s)", key, PinsFile))
	}
	return v
}

// Int returns key as a decimal integer, or def when unset.
func (e *Env) Int(key string, def int) int {
	return parse(e, key, def, strconv.Atoi, "not an integer")
}

// Duration returns key as a Go duration ("30s", "5m"), or def when unset.
func (e *Env) Duration(key string, def time.Duration) time.Duration {
	return parse(e, key, def, time.ParseDuration, "not a duration (like 30s or 5m)")
}

// parse converts key's value, or returns def when key is unset or the value does not convert (then the
// error, naming the variable, is kept for Err).
func parse[T any](e *Env, key string, def T, convert func(string) (T, error), want string) T {
	v, ok := e.lookup(key)
	if !ok {
		return def
	}
	x, err := convert(v)
	if err != nil {
		e.fail(key, v, want)
		return def
	}
	return x
}

// IntList returns key as comma-separated decimal integers ("2000,20000"), or def when unset.
func (e *Env) IntList(key string, def []int) []int {
	return parse(e, key, def, ParseIntList, "not a comma-separated list of integers (like 2000,20000)")
}

// DurationList returns key as comma-separated Go durations ("20ms,50ms"), or def when unset.
func (e *Env) DurationList(key string, def []time.Duration) []time.Duration {
	return parse(e, key, def, ParseDurationList, "not a comma-separated list of durations (like 20ms,50ms)")
}

// ParseIntList parses comma-separated decimal integers; blanks around items are ignored, an empty item or
// an empty list is an error.
func ParseIntList(s string) ([]int, error) { return parseList(s, strconv.Atoi) }

// ParseDurationList parses comma-separated Go durations, like ParseIntList.
func ParseDurationList(s string) ([]time.Duration, error) { return parseList(s, time.ParseDuration) }

func parseList[T any](s string, convert func(string) (T, error)) ([]T, error) {
	var out []T
	for item := range strings.SplitSeq(s, ",") {
		x, err := convert(strings.TrimSpace(item))
		if err != nil {
			return nil, fmt.Errorf("item %q: %w", strings.TrimSpace(item), err)
		}
		out = append(out, x)
	}
	return out, nil
}

// Bool returns key as a switch: unset or "0" is false, "1" is true, anything else is an error.
func (e *Env) Bool(key string) bool {
	v, ok := e.lookup(key)
	switch {
	case !ok || v == "0":
		return false
	case v == "1":
		return true
	}
	e.fail(key, v, "want 1 or 0")
	return false
}

// Err reports every bad value read so far, or nil.
func (e *Env) Err() error { return errors.Join(e.errs...) }
