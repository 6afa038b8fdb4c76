package client

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmlab/swarmlab/app/crud/history"
)

// run drives g for d with 4 sessions on 4 keys at 2000 operations/s, with
// mod's changes, and stops.
func run(t *testing.T, g *fakeGate, d time.Duration, mod func(*Config)) Report {
	t.Helper()
	srv := g.server(t)
	cfg := Config{
		BaseURL: srv.URL, Sessions: 4, Keys: 4, Rate: 2000, ProbeEvery: 5,
		StartTimeout: 2 * time.Second, FinalTimeout: 5 * time.Second, CheckTimeout: 20 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	dr, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(d)
	rep := dr.Stop()
	t.Logf("%d requests (%d ok, %d failed, %d rejected, %d 401), %d ops, %s; verdict: %s",
		rep.Requests, rep.OK, rep.Failed, rep.Rejected, rep.Unauthorized, rep.Ops, rep.Bench, rep.Result)
	return rep
}

// at runs f after d.
func after(d time.Duration, f func()) (when *atomic.Pointer[time.Time]) {
	when = &atomic.Pointer[time.Time]{}
	time.AfterFunc(d, func() { now := time.Now(); f(); when.Store(&now) })
	return when
}

func TestCorrectGatePasses(t *testing.T) {
	g := newFakeGate()
	rep := run(t, g, 400*time.Millisecond, nil)
	if err := rep.Verdict(); err != nil || rep.Result != "pass" {
		t.Fatalf("verdict: %v", err)
	}
	if rep.Linearizability.Verdict != history.Linearizable || rep.Final.Checked != 4 || rep.Final.ListErr != "" {
		t.Fatalf("linearizability %+v, final %+v", rep.Linearizability, rep.Final)
	}
	if rep.Bench.Reads.Done == 0 || rep.Bench.Writes.Done == 0 || rep.Bench.Reads.PerSec <= 0 || rep.Bench.Writes.P99ms <= 0 {
		t.Fatalf("bench %+v", rep.Bench)
	}
	if len(rep.SessionReports) != 5 {
		t.Fatalf("%d session reports, want 4 and the read-back's", len(rep.SessionReports))
	}
	for _, s := range rep.SessionReports[:4] {
		if s.Logins != 1 || len(s.IDs) != 1 || s.Probes < 2 || s.Requests < 10 {
			t.Errorf("session %+v", s)
		}
	}
	all := rep.Between(rep.Started, time.Now())
	if all.Sent != rep.Requests || all.OK != rep.OK || all.Failures() != 0 {
		t.Fatalf("all windows %+v, report %d requests, %d ok", all, rep.Requests, rep.OK)
	}
	for _, op := range rep.History {
		if op.Outcome() == history.Done && op.Out.ServedBy != "gate.1/storage.1" {
			t.Fatalf("op %+v has no X-Served-By", op)
		}
	}
}

// A session store that restarts empty: every session gets a 401, which
// the report counts and names, and the sessions log in again and go on.
func TestLostSessionsAreCaught(t *testing.T) {
	g := newFakeGate()
	after(150*time.Millisecond, g.loseSessions)
	rep := run(t, g, 400*time.Millisecond, nil)
	if rep.LostSessions != 4 || rep.Unauthorized < 4 {
		t.Fatalf("%d sessions lost, %d 401s; want all 4 lost", rep.LostSessions, rep.Unauthorized)
	}
	for _, s := range rep.SessionReports[:4] {
		if s.Logins != 2 || len(s.IDs) != 2 || s.Unauthorized == 0 || len(s.Events) == 0 {
			t.Errorf("session %+v: want a second login after its 401", s)
		}
	}
	err := rep.SessionErr()
	for _, want := range []string{"4 of 5 sessions were lost", "answered 401 at +", "counter last at"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("session error %v, want %q", err, want)
		}
	}
	if rep.Verdict() == nil || errors.Is(rep.Verdict(), ErrInconclusive) {
		t.Fatalf("verdict %v, want a failure", rep.Verdict())
	}
	// A 401 is refused before anything is done: the history still holds.
	if rep.Linearizability.Verdict != history.Linearizable || rep.DurabilityErr() != nil {
		t.Fatalf("linearizability %v, durability %v", rep.Linearizability.Err(), rep.DurabilityErr())
	}
}

// A session store restored from an old snapshot: the sessions live on,
// their counters went back.
func TestCounterResetIsCaught(t *testing.T) {
	g := newFakeGate()
	after(200*time.Millisecond, g.resetCounters)
	rep := run(t, g, 400*time.Millisecond, nil)
	if rep.CounterResets < 4 || rep.LostSessions != 0 {
		t.Fatalf("%d counter resets, %d sessions lost; want a reset per session, none lost", rep.CounterResets, rep.LostSessions)
	}
	err := rep.SessionErr()
	if err == nil || !strings.Contains(err.Error(), "requests counter went from") || !strings.Contains(err.Error(), "back to") {
		t.Fatalf("session error: %v", err)
	}
	if rep.Verdict() == nil {
		t.Fatal("verdict passed")
	}
}

// A gate that acknowledges writes and drops them: the read-back finds the
// keys holding older values, and the history is not linearizable.
func TestAcknowledgedAndDroppedIsCaught(t *testing.T) {
	g := newFakeGate()
	after(250*time.Millisecond, func() { g.dropAll.Store(true) })
	rep := run(t, g, 400*time.Millisecond, nil)
	dropped := g.droppedKeys()
	if len(rep.Final.Lost) == 0 {
		t.Fatalf("nothing lost; the gate dropped writes to %v", dropped)
	}
	for _, f := range rep.Final.Lost {
		if !dropped[f.Key] {
			t.Errorf("key %s is lost, but the gate dropped no write to it", f.Key)
		}
	}
	err := rep.DurabilityErr()
	if f := rep.Final.Lost[0]; err == nil || !strings.Contains(err.Error(), "lost their latest acknowledged write: "+f.Key+" holds") ||
		!strings.Contains(f.Want, "acknowledged at +") {
		t.Fatalf("durability error: %v; first finding %+v", err, rep.Final.Lost[0])
	}
	lin := rep.Linearizability
	if lin.Verdict != history.NotLinearizable || !dropped[lin.Key] {
		t.Fatalf("linearizability %s, key %s; dropped %v", lin.Verdict, lin.Key, dropped)
	}
	if v := rep.Verdict(); v == nil || !strings.Contains(v.Error(), "not linearizable") {
		t.Fatalf("verdict %v", v)
	}
}

// While the gate answers 502 (after doing what it was asked), the window
// counts the failures by kind; before and after it, none. The writes it
// did and did not acknowledge are unknown, allowed either way.
func TestFaultWindows(t *testing.T) {
	g := newFakeGate()
	down := after(150*time.Millisecond, func() { g.down.Store(true) })
	up := after(300*time.Millisecond, func() { g.down.Store(false) })
	rep := run(t, g, 450*time.Millisecond, nil)
	margin := 20 * time.Millisecond
	before := rep.Between(rep.Started, down.Load().Add(-margin))
	during := rep.Between(down.Load().Add(margin), up.Load().Add(-margin))
	afterw := rep.Between(up.Load().Add(margin), time.Now())
	if before.Failures() != 0 || before.OK == 0 || during.Failed == 0 || during.OK != 0 || afterw.Failures() != 0 || afterw.OK == 0 {
		t.Fatalf("before %+v, during %+v, after %+v", before, during, afterw)
	}
	if during.Errors["PUT /items/{id}: HTTP 502"] == 0 || during.Errors["GET /items/{id}: HTTP 502"] == 0 {
		t.Errorf("during: errors %v", during.Errors)
	}
	if err := rep.FailedBetween(*down.Load(), *up.Load(), 0); err == nil ||
		!strings.Contains(err.Error(), "over the 0 allowed:") || !strings.Contains(err.Error(), "× PUT /items/{id}: HTTP 502") {
		t.Errorf("FailedBetween: %v", err)
	}
	if err := rep.FailedBetween(*down.Load(), *up.Load(), during.Failures()+100); err != nil {
		t.Errorf("FailedBetween within its allowance: %v", err)
	}
	if rep.Linearizability.Pending == 0 {
		t.Error("no unknown operation in the history")
	}
	if err := rep.Verdict(); err != nil {
		t.Fatalf("verdict: %v", err)
	}
}

// Puts done and answered after the client's timeout are unknown: allowed
// either way, by the history and by the read-back.
func TestTimedOutWritesAreUnknown(t *testing.T) {
	g := newFakeGate()
	g.slowPuts = 15
	rep := run(t, g, 400*time.Millisecond, func(c *Config) { c.RequestTimeout = 100 * time.Millisecond })
	if rep.Errors["PUT /items/{id}: timeout"] == 0 || rep.Linearizability.Pending == 0 {
		t.Fatalf("errors %v, %d unknown ops", rep.Errors, rep.Linearizability.Pending)
	}
	if err := rep.Verdict(); err != nil {
		t.Fatalf("verdict: %v", err)
	}
}

// An answer slower than SlowAfter fails its window, though the history
// keeps what it said.
func TestSlowAnswersFailTheirWindow(t *testing.T) {
	g := newFakeGate()
	g.slowPuts = 15
	rep := run(t, g, 300*time.Millisecond, func(c *Config) { c.SlowAfter = 100 * time.Millisecond })
	w := rep.Between(rep.Started, time.Now())
	if n := w.Errors["PUT /items/{id}: slower than 100ms"]; n == 0 || n != w.Failures() {
		t.Fatalf("window %+v: want only slow puts failed", w)
	}
	if rep.Linearizability.Pending != 0 {
		t.Fatalf("%d unknown ops: a slow answer is still an answer", rep.Linearizability.Pending)
	}
	if err := rep.Verdict(); err != nil {
		t.Fatalf("verdict: %v", err)
	}
}

// An answer without what the API promises fails the run, saying what came.
func TestMalformedAnswersFail(t *testing.T) {
	g := newFakeGate()
	after(150*time.Millisecond, func() { g.noCount.Store(true) })
	rep := run(t, g, 300*time.Millisecond, nil)
	v := rep.Verdict()
	if rep.Malformed == 0 || v == nil || !strings.Contains(v.Error(), `GET /session answered "{\"id\":`) {
		t.Fatalf("malformed %v; verdict %v", rep.Malformed, v)
	}
}

// A key the run never wrote, listed under its prefix, is unexpected.
func TestUnexpectedKeyIsCaught(t *testing.T) {
	g := newFakeGate()
	rep := run(t, g, 200*time.Millisecond, func(c *Config) {
		c.KeyPrefix = "t-"
		g.store("t-stray", "from nowhere")
	})
	if len(rep.Final.Unexpected) != 1 || rep.Final.Unexpected[0].Key != "t-stray" {
		t.Fatalf("unexpected %+v", rep.Final.Unexpected)
	}
	if err := rep.DurabilityErr(); err == nil || !strings.Contains(err.Error(), "t-stray holds an item listed by GET /items?prefix") {
		t.Fatalf("durability: %v", err)
	}
}

// A write-only run, for its benchmark, still proves its writes: the
// read-back reads them.
func TestWriteOnlyRun(t *testing.T) {
	rep := run(t, newFakeGate(), 200*time.Millisecond, func(c *Config) { c.PutShare, c.DeleteShare, c.Rate = 1, -1, 0 })
	if rep.Bench.Reads.Done != 0 || rep.Bench.Writes.Done == 0 || rep.Bench.Writes.PerSec <= 0 {
		t.Fatalf("bench %+v", rep.Bench)
	}
	if err := rep.Verdict(); err != nil {
		t.Fatalf("verdict: %v", err)
	}
}

func TestStartNeedsASession(t *testing.T) {
	srv := newFakeGate().server(t)
	_, err := Start(context.Background(), Config{BaseURL: srv.URL + "/nothing-here", StartTimeout: 300 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "starting session 1 of 8: no session after 300ms; last: POST /session: HTTP 404, want 201") {
		t.Fatalf("start: %v", err)
	}
	for _, c := range []Config{{BaseURL: "localhost:80"}, {BaseURL: srv.URL, PutShare: 0.8, DeleteShare: 0.3}} {
		if _, err := Start(context.Background(), c); err == nil {
			t.Errorf("%+v: started", c)
		}
	}
}
