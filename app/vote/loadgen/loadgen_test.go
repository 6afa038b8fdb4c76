package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeSystem is an in-memory vote + results service whose faults a test
// can choose. Its tally and its /api/voter answer from the same state, as
// the real results service reads one Postgres.
type fakeSystem struct {
	mu       sync.Mutex
	hist     map[string][]string // recorded votes per voter, oldest first
	inflight map[string]bool
	n        int
	overlap  bool // a voter had two votes in flight at once

	// faults, applied to every k-th vote if k > 0
	lose      int  // acknowledge but do not record
	fail      int  // answer 503
	failSaves bool // ... but record the vote anyway
	flip      int  // record the other option, and acknowledge
	// other faults
	dropAcked int         // acknowledge but do not record the first dropAcked votes that would be recorded
	revert    int         // count this many voters (half whose latest is a, half b) with their previous vote
	lateUntil time.Time   // ... until then only (a vote pending in a dead worker, claimed later)
	extraA    int         // results over-count option a by this much
	down      atomic.Bool // answer every vote 503 while set

	hit []string // voters whose vote lose, dropAcked or flip hit

	cache map[string]string // counted(), until the next vote
}

func newFake() *fakeSystem {
	return &fakeSystem{hist: map[string][]string{}, inflight: map[string]bool{}}
}

func (f *fakeSystem) vote(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Vote    string `json:"vote"`
		VoterID string `json:"voter_id"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, "bad", 400)
		return
	}
	f.mu.Lock()
	if f.inflight[req.VoterID] {
		f.overlap = true
	}
	f.inflight[req.VoterID] = true
	f.n++
	n := f.n
	f.mu.Unlock()
	time.Sleep(50 * time.Microsecond) // widen the window for overlap detection

	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.inflight, req.VoterID)
	record := func(v string) {
		f.hist[req.VoterID] = append(f.hist[req.VoterID], v)
		f.cache = nil
	}
	switch {
	case f.down.Load():
		http.Error(w, "unavailable", 503)
	case f.fail > 0 && n%f.fail == 0:
		if f.failSaves {
			record(req.Vote)
		}
		http.Error(w, "unavailable", 503)
	case f.lose > 0 && n%f.lose == 0:
		f.hit = append(f.hit, req.VoterID)
		w.WriteHeader(202)
	case f.flip > 0 && n%f.flip == 0:
		f.hit = append(f.hit, req.VoterID)
		record(map[string]string{"a": "b", "b": "a"}[req.Vote])
		w.WriteHeader(202)
	case f.dropAcked > 0:
		f.dropAcked--
		f.hit = append(f.hit, req.VoterID)
		w.WriteHeader(202)
	default:
		record(req.Vote)
		w.WriteHeader(202)
	}
}

// counted is what the fake counts per voter; the caller holds f.mu.
func (f *fakeSystem) counted() map[string]string {
	if f.cache != nil && (f.lateUntil.IsZero() || time.Now().Before(f.lateUntil)) {
		return f.cache
	}
	out := make(map[string]string, len(f.hist))
	var switched []string
	for id, h := range f.hist {
		out[id] = h[len(h)-1]
		if len(h) >= 2 && h[len(h)-2] != h[len(h)-1] {
			switched = append(switched, id)
		}
	}
	// Revert as many voters from a to b as from b to a, so that the totals
	// stay as they should be.
	slices.Sort(switched)
	revert := f.revert
	if !f.lateUntil.IsZero() && time.Now().After(f.lateUntil) {
		revert = 0
	}
	left := map[string]int{"a": revert / 2, "b": revert - revert/2}
	for _, id := range switched {
		h := f.hist[id]
		if last := h[len(h)-1]; left[last] > 0 {
			left[last]--
			out[id] = h[len(h)-2]
		}
	}
	f.cache = out
	return out
}

func (f *fakeSystem) results(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var t Tally
	for _, v := range f.counted() {
		if v == "a" {
			t.A++
		} else {
			t.B++
		}
	}
	if len(f.hist) > 0 { // after the baseline was read
		t.A += int64(f.extraA)
	}
	t.Total = t.A + t.B
	json.NewEncoder(w).Encode(t)
}

func (f *fakeSystem) voter(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie("voter_id")
	if err != nil {
		http.Error(w, "no voter_id cookie", 400)
		return
	}
	f.mu.Lock()
	v, ok := f.counted()[c.Value]
	f.mu.Unlock()
	out := map[string]any{"voter_id": c.Value, "vote": nil}
	if ok {
		out["vote"] = v
	}
	json.NewEncoder(w).Encode(out)
}

func (f *fakeSystem) mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/vote", f.vote)
	mux.HandleFunc("GET /api/results", f.results)
	mux.HandleFunc("GET /api/voter", f.voter)
	return mux
}

func (f *fakeSystem) hits() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.hit)
}

// settle is the tally wait for tests that need it to end in range although
// some voters are uncertain: the tally must then hold still for a second,
// which under load takes longer than runWith's default allows.
const settle = 10 * time.Second

// show is rep for a failure message, without its request log.
func show(rep Report) Report {
	rep.log = nil
	return rep
}

func run(t *testing.T, f *fakeSystem, votes, voters int) Report {
	t.Helper()
	return runWith(t, f, func(c *Config) { c.Votes, c.Voters = votes, voters })
}

// runWith runs the load generator against f with a config that change
// adjusts.
func runWith(t *testing.T, f *fakeSystem, change func(*Config)) Report {
	t.Helper()
	srv := httptest.NewServer(f.mux())
	defer srv.Close()
	cfg := Config{
		URLs: []string{srv.URL, srv.URL + "/"}, ResultsURL: srv.URL,
		Switch: 0.5, Concurrency: 16, Timeout: 1500 * time.Millisecond, Seed: 42,
	}
	change(&cfg)
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if f.overlap {
		t.Error("a voter had two votes in flight at once")
	}
	return rep
}

// wantFailure checks that the verdict is a failure (not merely
// inconclusive) whose message contains every word.
func wantFailure(t *testing.T, rep Report, words ...string) {
	t.Helper()
	err := rep.Verdict()
	if err == nil || errors.Is(err, ErrInconclusive) {
		t.Fatalf("verdict %v, want a failure naming %q; report %+v", err, words, show(rep))
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("verdict %q does not name %q", err, w)
		}
	}
	if rep.Result != err.Error() {
		t.Errorf("report's verdict %q, Verdict() %q", rep.Result, err)
	}
}

func wantInconclusive(t *testing.T, rep Report, words ...string) {
	t.Helper()
	err := rep.Verdict()
	if !errors.Is(err, ErrInconclusive) {
		t.Fatalf("verdict %v, want inconclusive; report %+v", err, show(rep))
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("verdict %q does not name %q", err, w)
		}
	}
}

// wantExamples checks that the examples are at most ten voters, all of them
// among those the fault hit.
func wantExamples(t *testing.T, got Voters, hit []string) {
	t.Helper()
	if len(got.Examples) != min(got.Count, 10) {
		t.Errorf("%d examples of %d voters, want %d", len(got.Examples), got.Count, min(got.Count, 10))
	}
	for _, id := range got.Examples {
		if !slices.Contains(hit, id) {
			t.Errorf("example %s is not a voter the fault hit", id)
		}
	}
}

func TestExact(t *testing.T) {
	rep := run(t, newFake(), 2000, 500)
	if err := rep.Verdict(); err != nil || rep.Result != "pass" {
		t.Fatalf("clean run: verdict %v (%q); %+v", err, rep.Result, show(rep))
	}
	if !rep.TallyInRange || rep.Accepted != 2000 || rep.Uncertain.Count != 0 || rep.Voters != 500 || rep.Checked != 500 ||
		rep.Lost.Count != 0 || rep.Unexpected.Count != 0 || !rep.TallySteady || rep.Counted.Total != 500 {
		t.Fatalf("%+v", show(rep))
	}
	if rep.Expected.Total != 500 || rep.Expected != rep.ExpectHi {
		t.Fatalf("expected %+v .. %+v", rep.Expected, rep.ExpectHi)
	}
	if rep.P50ms <= 0 || rep.P99ms < rep.P50ms || rep.VotesPerSec <= 0 || rep.CountedAfter < 0 {
		t.Fatalf("stats %+v", show(rep))
	}
	if rep.MinAccepted != DefaultMinAccepted || rep.MaxUncertain != DefaultMaxUncertain {
		t.Fatalf("floors %v, %v", rep.MinAccepted, rep.MaxUncertain)
	}
	if w := rep.Between(rep.Started, time.Now()); w != (WindowCounts{Accepted: 2000}) {
		t.Fatalf("the whole run's window: %+v", w)
	}
}

func TestDetectsLostVotes(t *testing.T) {
	f := newFake()
	f.lose = 97
	rep := run(t, f, 2000, 2000) // one vote each, so every loss shows
	hit := f.hits()
	if rep.Lost.Count != len(hit) || len(hit) == 0 {
		t.Fatalf("lost %d, the fake dropped %d: %+v", rep.Lost.Count, len(hit), show(rep))
	}
	wantExamples(t, rep.Lost, hit)
	wantFailure(t, rep, fmt.Sprintf("lost %d", len(hit)), rep.Lost.Examples[0])
}

// Results over-counting a is caught by the totals: the voters read back
// add up to three fewer a than the tally moved by.
func TestDetectsDoubleCounting(t *testing.T) {
	f := newFake()
	f.extraA = 3
	rep := run(t, f, 1000, 300)
	if rep.TallyInRange || rep.TallyDiff != (Tally{A: 3, Total: 3}) || rep.Lost.Count != 0 || rep.Unexpected.Count != 0 {
		t.Fatalf("double counting not detected: %+v", show(rep))
	}
	wantFailure(t, rep, "tally moved by a=")
}

// Failed requests that were recorded anyway are not blamed on the system.
func TestFailuresWidenExpectation(t *testing.T) {
	f := newFake()
	f.fail, f.failSaves = 13, true
	rep := runWith(t, f, func(c *Config) { c.Votes, c.Voters, c.MaxUncertain, c.Timeout = 2000, 400, 0.5, settle })
	if rep.Failed == 0 || rep.Uncertain.Count == 0 {
		t.Fatalf("no failures: %+v", show(rep))
	}
	if err := rep.Verdict(); err != nil || !rep.TallyInRange {
		t.Fatalf("verdict %v; %+v", err, show(rep))
	}
}

// Repro 1: every vote answered 503. The totals check passed (nothing
// expected, nothing counted); nothing was proven, so it is inconclusive.
func TestAllFailedIsInconclusive(t *testing.T) {
	f := newFake()
	f.fail = 1
	rep := runWith(t, f, func(c *Config) { c.Votes, c.Voters, c.Timeout = 1000, 500, settle })
	if rep.Accepted != 0 || !rep.TallyInRange {
		t.Fatalf("want 0 accepted and the old totals check passing: %+v", show(rep))
	}
	wantInconclusive(t, rep, "0 of 1000 votes sent", "floor of 50.0%")
}

// Repro 2: 1 in 7 votes is recorded but answered 503, and 17 acknowledged
// votes are silently dropped. The recorded failures fill the totals' range
// so that it still matched; voter by voter, the 17 are lost.
func TestLostHiddenByRecordedFailures(t *testing.T) {
	f := newFake()
	f.fail, f.failSaves, f.dropAcked = 7, true, 17
	// One vote each: a dropped vote is a voter's latest.
	rep := runWith(t, f, func(c *Config) { c.Votes, c.Voters, c.Timeout = 2000, 2000, settle })
	if !rep.TallyInRange {
		t.Fatalf("the totals check should have been fooled: %+v", show(rep))
	}
	if rep.Lost.Count != 17 || rep.Unexpected.Count != 0 {
		t.Fatalf("lost %d (want 17), unexpected %d: %+v", rep.Lost.Count, rep.Unexpected.Count, show(rep))
	}
	wantExamples(t, rep.Lost, f.hits())
	// A lost vote fails the run however many voters are uncertain.
	wantFailure(t, rep, "lost 17", rep.Lost.Examples[0])
}

// Repro 3: the latest vote of 150 voters is dropped while their older one
// stays counted; 75 swaps each way cancel in the totals.
func TestLostLatestVoteWithOlderStillCounted(t *testing.T) {
	f := newFake()
	f.revert = 150
	rep := runWith(t, f, func(c *Config) { c.Votes, c.Voters, c.Switch = 3000, 600, 1 })
	if !rep.TallyInRange || rep.Observed != rep.Expected {
		t.Fatalf("the totals check should have been fooled: %+v", show(rep))
	}
	if rep.Lost.Count != 150 || rep.Unexpected.Count != 0 || rep.Checked != 600 {
		t.Fatalf("lost %d (want 150), unexpected %d, checked %d", rep.Lost.Count, rep.Unexpected.Count, rep.Checked)
	}
	wantFailure(t, rep, "lost 150")
}

// The same swaps, but each voter's latest vote is counted a while after
// the run (pending in a worker that died, until another claims it): the
// totals are right all along, the voters only later. Not lost: the check
// reads them again until they are right.
func TestLatestVoteCountedLateIsNotLost(t *testing.T) {
	f := newFake()
	f.revert = 150
	var rep Report
	rep = runWith(t, f, func(c *Config) {
		c.Votes, c.Voters, c.Switch, c.Timeout = 3000, 600, 1, settle
		f.lateUntil = time.Now().Add(3 * time.Second)
	})
	if err := rep.Verdict(); err != nil || rep.Lost.Count != 0 || rep.Checked != 600 {
		t.Fatalf("verdict %v, lost %d, checked %d: %+v", err, rep.Lost.Count, rep.Checked, show(rep))
	}
	if rep.Rechecks == 0 {
		t.Fatalf("the voters were counted late, yet read only once: %+v", show(rep))
	}
}

// A voter counted with an option they never sent is unexpected.
func TestDetectsUnexpectedVotes(t *testing.T) {
	f := newFake()
	f.flip = 50
	rep := run(t, f, 2000, 2000)
	hit := f.hits()
	if rep.Unexpected.Count != len(hit) || len(hit) == 0 || rep.Lost.Count != 0 {
		t.Fatalf("unexpected %d, lost %d; the fake flipped %d", rep.Unexpected.Count, rep.Lost.Count, len(hit))
	}
	wantExamples(t, rep.Unexpected, hit)
	wantFailure(t, rep, fmt.Sprintf("%d unexpected", len(hit)), rep.Unexpected.Examples[0])
}

// 1 in 10 voters is uncertain: nothing is wrong, but more than the 5%
// ceiling could have gone either way. A higher ceiling lets it pass.
func TestTooManyUncertainIsInconclusive(t *testing.T) {
	f := newFake()
	f.fail, f.failSaves = 10, true
	rep := run(t, f, 2000, 2000)
	if rep.Uncertain.Count != 200 || rep.Lost.Count != 0 || rep.Unexpected.Count != 0 {
		t.Fatalf("uncertain %d (want 200): %+v", rep.Uncertain.Count, show(rep))
	}
	wantInconclusive(t, rep, "200 of 2000 voters (10.0%) are uncertain", "ceiling of 5.0%")

	f = newFake()
	f.fail, f.failSaves = 10, true
	rep = runWith(t, f, func(c *Config) { c.Votes, c.Voters, c.MaxUncertain = 2000, 2000, 0.2 })
	if err := rep.Verdict(); err != nil {
		t.Fatalf("with a 20%% ceiling: %v", err)
	}
}

// Votes sent while the service is down are counted as failed in their
// window, and the windows around it hold the accepted ones.
func TestBetweenCountsByWindow(t *testing.T) {
	f := newFake()
	var down, up atomic.Pointer[time.Time]
	time.AfterFunc(300*time.Millisecond, func() { now := time.Now(); down.Store(&now); f.down.Store(true) })
	time.AfterFunc(600*time.Millisecond, func() { f.down.Store(false); now := time.Now(); up.Store(&now) })
	rep := runWith(t, f, func(c *Config) { c.Votes, c.Voters, c.Rate, c.MaxUncertain = 2000, 1000, 2000, 1 })
	margin := 50 * time.Millisecond
	before := rep.Between(rep.Started, down.Load().Add(-margin))
	during := rep.Between(down.Load().Add(margin), up.Load().Add(-margin))
	after := rep.Between(up.Load().Add(margin), time.Now())
	if before.Accepted == 0 || before.Failed != 0 || during.Accepted != 0 || during.Failed == 0 || after.Accepted == 0 || after.Failed != 0 {
		t.Fatalf("before %+v, during %+v, after %+v", before, during, after)
	}
	all := rep.Between(rep.Started, time.Now())
	if all.Accepted != rep.Accepted || all.Failed != rep.Failed || all.Rejected != rep.Rejected {
		t.Fatalf("all windows %+v, report %+v", all, show(rep))
	}
	if err := rep.Verdict(); err != nil {
		t.Fatal(err)
	}
}

// Between's window includes from and excludes to.
func TestBetweenBounds(t *testing.T) {
	t0 := time.Now()
	r := Report{Started: t0, log: []event{
		newEvent(0, accepted), newEvent(10, failed), newEvent(10, accepted), newEvent(20, rejected), newEvent(30, accepted),
	}}
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	for _, c := range []struct {
		from, to time.Duration
		want     WindowCounts
	}{
		{0, 31, WindowCounts{Accepted: 3, Failed: 1, Rejected: 1}},
		{10, 20, WindowCounts{Accepted: 1, Failed: 1}},
		{11, 30, WindowCounts{Rejected: 1}},
		{31, 40, WindowCounts{}},
		{-5, 0, WindowCounts{}},
	} {
		if got := r.Between(at(c.from), at(c.to)); got != c.want {
			t.Errorf("[%d, %d): %+v, want %+v", c.from, c.to, got, c.want)
		}
	}
}

// Closing Stop ends sending; the votes sent before it are still checked
// exactly, and voters who never got to vote are not expected.
func TestStopEndsSendingEarly(t *testing.T) {
	stop := make(chan struct{})
	time.AfterFunc(300*time.Millisecond, func() { close(stop) })
	rep := runWith(t, newFake(), func(c *Config) {
		c.Votes, c.Voters, c.Rate, c.Stop = 100000, 200, 2000, stop
	})
	if !rep.Stopped || rep.Sent == 0 || rep.Sent >= 100000 {
		t.Fatalf("sending did not stop early: %+v", show(rep))
	}
	if err := rep.Verdict(); err != nil || rep.Accepted != rep.Sent {
		t.Fatalf("verdict %v; %+v", err, show(rep))
	}
	if want := min(rep.Sent, 200); rep.Expected.Total != int64(want) || rep.Checked != want {
		t.Fatalf("expected %d voters in the tally and checked, got %+v", want, show(rep))
	}
}

func TestPlan(t *testing.T) {
	cfg := Config{Votes: 1000, Voters: 100, Concurrency: 7, Switch: 1, Seed: 1}
	plan := cfg.plan()
	count := map[int32]int{}
	total := 0
	for g, vs := range plan {
		for _, v := range vs {
			if int(v.voter)%7 != g {
				t.Fatalf("voter %d in goroutine %d", v.voter, g)
			}
			count[v.voter]++
			total++
		}
	}
	if total != 1000 || len(count) != 100 {
		t.Fatalf("%d votes by %d voters", total, len(count))
	}
}

// Right after a deploy the edge answers 503 for results until its health
// check passes: the run waits for a baseline instead of failing.
func TestWaitsForTheResultsServiceBeforeVoting(t *testing.T) {
	f := newFake()
	var refused int
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/vote", f.vote)
	mux.HandleFunc("GET /api/voter", f.voter)
	mux.HandleFunc("GET /api/results", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		starting := refused < 2
		if starting {
			refused++
		}
		f.mu.Unlock()
		if starting {
			http.Error(w, "no server available", http.StatusServiceUnavailable)
			return
		}
		f.results(w, r)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	rep, err := Run(context.Background(), Config{
		URLs: []string{srv.URL}, ResultsURL: srv.URL,
		Votes: 200, Voters: 100, Concurrency: 4, Timeout: 1500 * time.Millisecond, Seed: 7,
	})
	if err != nil {
		t.Fatal(err)
	}
	if refused != 2 || rep.Verdict() != nil || rep.Accepted != 200 {
		t.Fatalf("results refused %d times; report %+v", refused, show(rep))
	}
}

// Ceiling counts the 2xx answers of one URL, and the failures apart.
func TestCeiling(t *testing.T) {
	var n sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Lock()
		calls++
		c := calls
		n.Unlock()
		if r.Method != http.MethodGet || r.URL.RequestURI() != "/edge/ping?x=1" {
			http.Error(w, "wrong request "+r.Method+" "+r.URL.RequestURI(), 400)
			return
		}
		if c%10 == 0 {
			http.Error(w, "unavailable", 503)
			return
		}
		w.Write([]byte("edge\n"))
	}))
	defer srv.Close()
	rep, err := Ceiling(context.Background(), srv.URL+"/edge/ping?x=1", 4, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK == 0 || rep.Failed == 0 || rep.OK+rep.Failed != rep.Requests || rep.Errors["HTTP 503"] != rep.Failed {
		t.Fatalf("%+v", rep)
	}
	if rep.PerSec <= 0 || rep.P50ms <= 0 || rep.P99ms < rep.P50ms {
		t.Fatalf("stats %+v", rep)
	}
	if _, err := Ceiling(context.Background(), srv.URL, 1, 0); err == nil {
		t.Fatal("a zero duration was accepted")
	}
}

// An HTTP/1.0 server closes the connection after each reply: the next
// request dials again instead of failing on the closed one.
func TestHTTP10ClosesTheConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				if _, err := c.Read(buf); err != nil {
					return
				}
				c.Write([]byte("HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n"))
			}()
		}
	}()
	rep, err := Ceiling(context.Background(), "http://"+ln.Addr().String()+"/", 1, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK < 2 || rep.Failed != 0 {
		t.Fatalf("%d ok, %d failed: %v", rep.OK, rep.Failed, rep.Errors)
	}
}
