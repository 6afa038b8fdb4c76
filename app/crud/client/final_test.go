package client

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/swarmlab/swarmlab/app/crud/history"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func put(value string, invoke, ret int, out history.Output) history.Op {
	return history.Op{Kind: history.Put, Key: "k", Value: value, Invoke: ms(invoke), Return: ms(ret), Out: out}
}

func del(invoke, ret int, out history.Output) history.Op {
	return history.Op{Kind: history.Delete, Key: "k", Invoke: ms(invoke), Return: ms(ret), Out: out}
}

func acked(v string, version int64) history.Output {
	return history.Output{Status: 200, Value: v, Version: version}
}

var (
	unknown = history.Output{Unknown: true, Err: "timeout"}
	deleted = history.Output{Status: 204}
	absent  = history.Output{Status: 404}
)

// The read-back, key by key: what each final state means.
func TestFinalCheck(t *testing.T) {
	for _, c := range []struct {
		name      string
		ops       []history.Op
		read      history.Output
		want      string // "", "lost" or "unexpected"
		uncertain bool
		says      string
	}{
		{"the latest acknowledged put", []history.Op{put("a", 0, 1, acked("a", 1)), put("b", 2, 3, acked("b", 2))}, acked("b", 2), "", false, ""},
		{"an older value", []history.Op{put("a", 0, 1, acked("a", 1)), put("b", 2, 3, acked("b", 2))}, acked("a", 1), "lost", false,
			`"b" v2 (acknowledged at +3ms); this value's put was acknowledged at +1ms, and overwritten after`},
		{"nothing after a put", []history.Op{put("a", 0, 1, acked("a", 1))}, absent, "lost", false, `"a" v1 (acknowledged at +1ms)`},
		{"another version", []history.Op{put("a", 0, 1, acked("a", 1))}, acked("a", 2), "lost", false, "v1, the version its put returned"},
		{"concurrent puts: either", []history.Op{put("a", 0, 3, acked("a", 1)), put("b", 1, 2, acked("b", 2))}, acked("a", 1), "", true, ""},
		{"deleted last", []history.Op{put("a", 0, 1, acked("a", 1)), del(2, 3, deleted)}, absent, "", false, ""},
		{"deleted, but there", []history.Op{put("a", 0, 1, acked("a", 1)), del(2, 3, deleted)}, acked("a", 1), "lost", false, "deleted (acknowledged at +3ms)"},
		{"an unknown put, even an early one, may have landed last", []history.Op{put("u", 0, 1, unknown), put("b", 2, 3, acked("b", 2))}, acked("u", 9), "", true, ""},
		{"or not", []history.Op{put("u", 0, 1, unknown), put("b", 2, 3, acked("b", 2))}, acked("b", 2), "", true, ""},
		{"an unknown delete", []history.Op{put("a", 0, 1, acked("a", 1)), del(2, 3, unknown)}, absent, "", true, ""},
		{"never written", nil, absent, "", false, ""},
		{"never written, yet there", nil, acked("z", 1), "unexpected", false, "no put sent this value"},
		{"a refused put's value", []history.Op{put("a", 0, 1, history.Output{Status: 401})}, acked("a", 1), "unexpected", false, "this value's put was refused (HTTP 401)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			read := history.Op{Kind: history.Get, Key: "k", Invoke: ms(10), Return: ms(11), Out: c.read}
			fc := finalCheck(c.ops, map[string]history.Op{"k": read}, []string{"k"}, []string{}, nil)
			var got []Finding
			switch c.want {
			case "lost":
				got = fc.Lost
			case "unexpected":
				got = fc.Unexpected
			}
			if len(fc.Lost)+len(fc.Unexpected) != len(got) || c.want != "" && len(got) != 1 {
				t.Fatalf("lost %v, unexpected %v; want %q", fc.Lost, fc.Unexpected, c.want)
			}
			if c.says != "" && !strings.Contains(got[0].Want, c.says) {
				t.Errorf("finding %v, want it to say %q", got[0], c.says)
			}
			if (fc.Uncertain == 1) != c.uncertain || fc.Checked != 1 {
				t.Errorf("uncertain %d, checked %d", fc.Uncertain, fc.Checked)
			}
		})
	}
}

// A key not read back is unread, and makes the run inconclusive, not a pass.
func TestUnreadKeyIsInconclusive(t *testing.T) {
	fc := finalCheck(nil, map[string]history.Op{}, []string{"k0", "k1"}, nil, errors.New("GET /items?prefix: timeout"))
	if len(fc.Unread) != 2 || fc.Checked != 0 || fc.ListErr == "" {
		t.Fatalf("%+v", fc)
	}
	rep := Report{Final: fc, Bench: history.Benchmark{Reads: history.Rate{Done: 1}, Writes: history.Rate{Done: 1}},
		Linearizability: history.Result{Verdict: history.Linearizable}}
	if err := rep.Verdict(); !errors.Is(err, ErrInconclusive) || !strings.Contains(err.Error(), "2 of 2 keys could not be read back") {
		t.Fatalf("verdict %v", err)
	}
	rep.Final.Unread = nil
	rep.Linearizability = history.Result{Verdict: history.Unknown, TimedOut: []string{"k0"}, Keys: 2}
	if err := rep.Verdict(); !errors.Is(err, ErrInconclusive) || !strings.Contains(err.Error(), "not a pass") {
		t.Fatalf("a check that timed out: verdict %v", err)
	}
}
