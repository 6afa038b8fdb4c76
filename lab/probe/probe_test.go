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
