// Package ballot holds what the vote service and the worker must agree on:
// the Redis stream layout, the shape of a vote, and the order that decides
// which of a voter's votes is the latest.
package ballot

import (
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Redis layout. One stream per frontend Redis; every worker joins one group.
const (
	Stream = "votes"
	Group  = "workers"

	FieldVoter = "voter"
	FieldVote  = "vote"
	FieldTS    = "ts" // acceptance time, Unix nanoseconds, decimal
)

// Vote is one accepted vote as it travels from a stream into Postgres.
type Vote struct {
	Voter    string
	Choice   byte   // 'a' or 'b'
	TS       int64  // acceptance time at the vote service, Unix ns
	Source   string // the Redis the vote was read from
	StreamID string // its entry id in that Redis ("ms-seq")
}

// ValidChoice reports whether c names an option.
func ValidChoice(c string) bool { return c == "a" || c == "b" }

// MaxVoterID bounds voter ids so a client cannot make us store large keys.
const MaxVoterID = 64

// ValidVoterID accepts 1..64 characters of [A-Za-z0-9._:-]: enough for the
// cookie's 32 hex digits and for load generators' readable ids, and nothing
// that needs escaping in a cookie, a log line or a Redis field.
func ValidVoterID(id string) bool {
	if len(id) == 0 || len(id) > MaxVoterID {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// Later reports whether v supersedes w for the same voter. The order is
// (TS, stream id as two numbers, Source): TS is the acceptance time, the rest
// only break exact ties so that every worker, on every redelivery, in any
// order of arrival, reaches the same answer. A vote never supersedes itself.
// store's SQL implements the same order; keep them in step.
func Later(v, w Vote) bool {
	if v.TS != w.TS {
		return v.TS > w.TS
	}
	vm, vs := SplitID(v.StreamID)
	wm, ws := SplitID(w.StreamID)
	if vm != wm {
		return vm > wm
	}
	if vs != ws {
		return vs > ws
	}
	return v.Source > w.Source
}

// SplitID parses a stream entry id "ms-seq"; malformed parts read as 0.
func SplitID(id string) (ms, seq uint64) {
	a, b, _ := strings.Cut(id, "-")
	ms, _ = strconv.ParseUint(a, 10, 64)
	seq, _ = strconv.ParseUint(b, 10, 64)
	return ms, seq
}

// Parse decodes a stream entry written by the vote service.
func Parse(source, id string, fields map[string]any) (Vote, error) {
	voter, _ := fields[FieldVoter].(string)
	choice, _ := fields[FieldVote].(string)
	tsText, _ := fields[FieldTS].(string)
	if !ValidVoterID(voter) {
		return Vote{}, errors.New("bad voter id")
	}
	if !ValidChoice(choice) {
		return Vote{}, errors.New("bad vote")
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil || ts <= 0 {
		return Vote{}, errors.New("bad ts")
	}
	return Vote{Voter: voter, Choice: choice[0], TS: ts, Source: source, StreamID: id}, nil
}

// lastTS is shared by every vote server in the process (tests run several).
var lastTS atomic.Int64

// Now returns the current wall-clock time in Unix ns, strictly increasing
// within this process. A voter's next vote is sent only after the previous
// one was acknowledged, so on one frontend its acceptance time is always
// later even if the wall clock steps back. Across frontends the order rests
// on the nodes' clocks being in sync (NTP).
func Now() int64 {
	for {
		last := lastTS.Load()
		now := time.Now().UnixNano()
		if now <= last {
			now = last + 1
		}
		if lastTS.CompareAndSwap(last, now) {
			return now
		}
	}
}
