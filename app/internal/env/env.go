// Package env lets each program option come from an environment variable
// (what a swarm stack sets) and be overridden by a flag (what a person types).
package env

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// String defines a string flag whose default comes from $key.
func String(name, key, def, usage string) *string {
	if v, ok := os.LookupEnv(key); ok {
		def = v
	}
	return flag.String(name, def, usage+" [$"+key+"]")
}

// Int defines an int flag whose default comes from $key.
func Int(name, key string, def int, usage string) *int {
	if v, ok := os.LookupEnv(key); ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			bad(key, v, err)
		}
		def = n
	}
	return flag.Int(name, def, usage+" [$"+key+"]")
}

// Duration defines a duration flag ("1ms", "30s") whose default comes from $key.
func Duration(name, key string, def time.Duration, usage string) *time.Duration {
	if v, ok := os.LookupEnv(key); ok {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			bad(key, v, err)
		}
		def = d
	}
	return flag.Duration(name, def, usage+" [$"+key+"]")
}

// Bool defines a bool flag whose default comes from $key.
func Bool(name, key string, def bool, usage string) *bool {
	if v, ok := os.LookupEnv(key); ok {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			bad(key, v, err)
		}
		def = b
	}
	return flag.Bool(name, def, usage+" [$"+key+"]")
}

func bad(key, v string, err error) {
	fmt.Fprintf(os.Stderr, "invalid $%s=%q: %v\n", key, v, err)
	os.Exit(2)
}

// Hostname is the default node name and consumer-name prefix.
func Hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "unknown"
	}
	return h
}

// List splits a comma-separated list, dropping blanks.
func List(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
