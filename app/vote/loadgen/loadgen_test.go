package loadgen

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// fakeSystem is an in-memory vote + results service whose faults a test
// can choose.
type fakeSystem struct {
	mu       sync.Mutex
	latest   map[string]string
	inflight map[string]bool
	n        int
	overlap  bool // a voter had two votes in flight at once

	// faults, applied to every k-th vote if k > 0
	lose      int  // acknowledge but do not record
	fail      int  // answer 503
	failSaves bool // ... but record the vote anyway
	extraA    int  // results over-count option a by this much
}

func newFake() *fakeSystem {
	return &fakeSystem{latest: map[string]string{}, inflight: map[string]bool{}}
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
	switch {
	case f.fail > 0 && n%f.fail == 0:
		if f.failSaves {
			f.latest[req.VoterID] = req.Vote
		}
		http.Error(w, "unavailable", 503)
	case f.lose > 0 && n%f.lose == 0:
		w.WriteHeader(202)
	default:
		f.latest[req.VoterID] = req.Vote
		w.WriteHeader(202)
	}
}

func (f *fakeSystem) results(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var t Tally
	for _, v := range f.latest {
		if v == "a" {
			t.A++
		} else {
			t.B++
		}
	}
	if len(f.latest) > 0 { // after the baseline was read
		t.A += int64(f.extraA)
	}
	t.Total = t.A + t.B
	json.NewEncoder(w).Encode(t)
}

func run(t *testing.T, f *fakeSystem, votes, voters int) Report {
	t.Helper()
	return runWith(t, f, func(c *Config) { c.Votes, c.Voters = votes, voters })
}

// runWith runs the load generator against f with a config that change
// adjusts.
func runWith(t *testing.T, f *fakeSystem, change func(*Config)) Report {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/vote", f.vote)
	mux.HandleFunc("GET /api/results", f.results)
	srv := httptest.NewServer(mux)
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

func TestExact(t *testing.T) {
	rep := run(t, newFake(), 2000, 500)
	if !rep.Match || rep.Lost != 0 || rep.Double != 0 || rep.Accepted != 2000 || rep.Uncertain != 0 {
		t.Fatalf("%+v", rep)
	}
	if rep.Expected.Total != 500 || rep.Expected != rep.ExpectHi {
		t.Fatalf("expected %+v .. %+v", rep.Expected, rep.ExpectHi)
	}
	if rep.P50ms <= 0 || rep.P99ms < rep.P50ms || rep.VotesPerSec <= 0 || rep.CountedAfter < 0 {
		t.Fatalf("stats %+v", rep)
	}
}

func TestDetectsLostVotes(t *testing.T) {
	f := newFake()
	f.lose = 97
	rep := run(t, f, 2000, 2000) // one vote each, so every loss shows
	if rep.Match || rep.Lost == 0 {
		t.Fatalf("lost votes not detected: %+v", rep)
	}
}

func TestDetectsDoubleCounting(t *testing.T) {
	f := newFake()
	f.extraA = 3
	rep := run(t, f, 1000, 300)
	if rep.Match || rep.Double != 3 || rep.Lost != 0 {
		t.Fatalf("double counting not detected: %+v", rep)
	}
}

// Failed requests that were recorded anyway are not blamed on the system.
func TestFailuresWidenExpectation(t *testing.T) {
	f := newFake()
	f.fail, f.failSaves = 13, true
	rep := run(t, f, 2000, 400)
	if rep.Failed == 0 || rep.Uncertain == 0 {
		t.Fatalf("no failures: %+v", rep)
	}
	if !rep.Match || rep.Lost != 0 || rep.Double != 0 {
		t.Fatalf("%+v", rep)
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
		t.Fatalf("sending did not stop early: %+v", rep)
	}
	if !rep.Match || rep.Lost != 0 || rep.Double != 0 || rep.Accepted != rep.Sent {
		t.Fatalf("%+v", rep)
	}
	if want := int64(min(rep.Sent, 200)); rep.Expected.Total != want {
		t.Fatalf("expected %d voters in the tally, got %+v", want, rep.Expected)
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
	if refused != 2 || !rep.Match || rep.Accepted != 200 {
		t.Fatalf("results refused %d times; report %+v", refused, rep)
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
