package probe

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestTrafficCountsFailuresAndReplies(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%4 == 0 {
			http.Error(w, "down for a moment", http.StatusServiceUnavailable)
			return
		}
		json.NewEncoder(w).Encode(Reply{Version: "v1", Task: "web.1.abc"})
	}))
	defer srv.Close()

	tr := Start(srv.URL, Options{Clients: 2, Interval: time.Millisecond})
	time.Sleep(100 * time.Millisecond)
	s := tr.Stop()
	if s.Requests < 8 {
		t.Fatalf("only %d requests in 100ms", s.Requests)
	}
	if s.Failed == 0 || s.Failed == s.Requests {
		t.Errorf("want some failures, got %s", s)
	}
	if s.Versions["v1"] != s.Requests-s.Failed || s.Tasks["web.1.abc"] != s.Requests-s.Failed {
		t.Errorf("replies not counted by version and task: %s %v", s, s.Tasks)
	}
	if s.Errors["HTTP 503: down for a moment"] != s.Failed {
		t.Errorf("errors not counted by message: %v", s.Errors)
	}
	if _, ok := s.First("v1"); !ok {
		t.Error("First(v1) found nothing")
	}
	if later := tr.Since(time.Now()); later.Requests != 0 {
		t.Errorf("Since(now) after Stop: %s", later)
	}
}

func TestSequenceReportsTransportErrors(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	s := Sequence(context.Background(), url, 3, time.Second)
	if s.Requests != 3 || s.Failed != 3 {
		t.Fatalf("want 3 failed requests to a closed server, got %s", s)
	}
}

// holdingServer answers at once, except the request it is told to hold:
// that one it keeps for hold before answering.
func holdingServer(t *testing.T, hold time.Duration) (*httptest.Server, *atomic.Bool, chan struct{}) {
	t.Helper()
	var armed atomic.Bool
	held := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if armed.CompareAndSwap(true, false) {
			held <- struct{}{}
			select {
			case <-time.After(hold):
			case <-r.Context().Done():
				return
			}
		}
		json.NewEncoder(w).Encode(Reply{Version: "v1", Task: "web.1.abc"})
	}))
	t.Cleanup(srv.Close)
	return srv, &armed, held
}

func TestSettledSinceWaitsForARequestInFlight(t *testing.T) {
	srv, armed, held := holdingServer(t, 300*time.Millisecond)
	tr := Start(srv.URL, Options{Clients: 1, Interval: time.Millisecond, Timeout: 2 * time.Second})
	defer tr.Stop()
	from := time.Now()
	armed.Store(true)
	<-held // the request is now held by the server

	if got := tr.Since(from); got.MaxLatency >= 300*time.Millisecond {
		t.Fatalf("Since already holds the held request: %s", got)
	}
	s := tr.SettledSince(from)
	if s.MaxLatency < 300*time.Millisecond || s.Failed != 0 {
		t.Fatalf("SettledSince left out the held request or failed it: %s", s)
	}
	if s.P99Latency < 300*time.Millisecond && s.Requests < 100 {
		t.Errorf("p99 %s misses the slowest of %d requests", s.P99Latency, s.Requests)
	}
}

func TestSettledSinceCountsATimedOutRequestAsFailed(t *testing.T) {
	srv, armed, held := holdingServer(t, 5*time.Second)
	tr := Start(srv.URL, Options{Clients: 1, Interval: time.Millisecond, Timeout: 200 * time.Millisecond})
	defer tr.Stop()
	from := time.Now()
	armed.Store(true)
	<-held

	start := time.Now()
	s := tr.SettledSince(from)
	if waited := time.Since(start); waited > 200*time.Millisecond+settleGrace {
		t.Errorf("waited %s, longer than the request timeout", waited)
	}
	if s.Failed != 1 {
		t.Fatalf("want the held request counted as 1 failure (slower than the timeout), got %s", s)
	}
	if s.MaxLatency < 200*time.Millisecond {
		t.Errorf("max latency %s below the timeout the failed request reached", s.MaxLatency)
	}
}

func TestSettledSinceGivesUpOnARequestThatNeverEnds(t *testing.T) {
	// A request recorded as in flight that no client will ever finish
	// (as if the client hung): counted as failed once the bound passes.
	tr := &Traffic{timeout: 10 * time.Millisecond, inflight: map[uint64]time.Time{}}
	tr.inflight[0] = time.Now()
	s := tr.SettledSince(time.Time{})
	if s.Requests != 1 || s.Failed != 1 {
		t.Fatalf("want the stuck request as 1 failure, got %s", s)
	}
}

func TestP99Latency(t *testing.T) {
	var outs []Outcome
	for i := 1; i <= 200; i++ {
		outs = append(outs, Outcome{Start: time.Unix(int64(i), 0), Latency: time.Duration(i) * time.Millisecond})
	}
	s := Summarize(outs)
	if s.P99Latency != 198*time.Millisecond || s.MaxLatency != 200*time.Millisecond {
		t.Errorf("200 requests of 1..200ms: p99 %s (want 198ms), max %s (want 200ms)", s.P99Latency, s.MaxLatency)
	}
	one := Summarize([]Outcome{{Latency: 3 * time.Second}})
	if one.P99Latency != 3*time.Second {
		t.Errorf("one request of 3s: p99 %s", one.P99Latency)
	}
	if none := Summarize(nil); none.P99Latency != 0 {
		t.Errorf("no request: p99 %s", none.P99Latency)
	}
}

func TestFair(t *testing.T) {
	want := []string{"a", "b", "c"}
	for _, tc := range []struct {
		name   string
		counts map[string]int
		ok     bool
	}{
		{"round robin", map[string]int{"a": 100, "b": 100, "c": 100}, true},
		{"within 10%", map[string]int{"a": 91, "b": 100, "c": 109}, true},
		{"one replica takes 2/3", map[string]int{"a": 200, "b": 50, "c": 50}, false},
		{"just outside 10%", map[string]int{"a": 89, "b": 100, "c": 111}, false},
		{"a replica left out", map[string]int{"a": 150, "b": 150}, false},
		{"an answer from a task not running", map[string]int{"a": 100, "b": 100, "c": 90, "old": 10}, false},
		{"no reply", map[string]int{}, false},
	} {
		err := Fair(tc.counts, want, 0.1)
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v: got %v", tc.name, tc.counts, err)
		}
	}
	if err := Fair(map[string]int{"a": 1}, nil, 0.1); err == nil {
		t.Error("no replica wanted: want an error")
	}
}

func TestSequenceNewConnsOpensOneConnectionPerRequest(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(Reply{Task: r.RemoteAddr})
	}))
	srv.Start()
	defer srv.Close()
	if s := Sequence(context.Background(), srv.URL, 5, time.Second); len(s.Tasks) != 1 {
		t.Errorf("Sequence: want 1 kept-alive connection, got %d: %v", len(s.Tasks), s.Tasks)
	}
	if s := SequenceNewConns(context.Background(), srv.URL, 5, time.Second); len(s.Tasks) != 5 {
		t.Errorf("SequenceNewConns: want 5 connections, got %d: %v", len(s.Tasks), s.Tasks)
	}
}
