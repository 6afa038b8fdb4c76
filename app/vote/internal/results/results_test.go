package results

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmlab/swarmlab/app/vote/internal/store"
)

type fakeSource struct {
	mu  sync.Mutex
	t   store.Tally
	err error
}

func (f *fakeSource) Tally(context.Context) (store.Tally, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t, f.err
}

func (f *fakeSource) set(a, b int64) {
	f.mu.Lock()
	f.t = store.Tally{A: a, B: b}
	f.mu.Unlock()
}

func TestResultsAPI(t *testing.T) {
	src := &fakeSource{t: store.Tally{A: 3, B: 4}}
	srv := httptest.NewServer((&Server{Src: src, OptionA: "Cats", OptionB: "Dogs"}).Handler())
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/api/results")
	if err != nil {
		t.Fatal(err)
	}
	var r Result
	json.NewDecoder(resp.Body).Decode(&r)
	resp.Body.Close()
	if r != (Result{A: 3, B: 4, Total: 7}) {
		t.Fatalf("%+v", r)
	}

	resp, _ = http.Get(srv.URL + "/")
	page := new(strings.Builder)
	bufio.NewReader(resp.Body).WriteTo(page)
	resp.Body.Close()
	if !strings.Contains(page.String(), "Cats") || !strings.Contains(page.String(), "api/stream") {
		t.Error("page lacks option names or live updates")
	}

	src.err = errors.New("db down")
	resp, _ = http.Get(srv.URL + "/api/results")
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("db down: %d", resp.StatusCode)
	}
	resp, _ = http.Get(srv.URL + "/healthz")
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("healthz with db down: %d", resp.StatusCode)
	}
}

func TestStreamPushesChanges(t *testing.T) {
	src := &fakeSource{t: store.Tally{A: 1}}
	srv := httptest.NewServer((&Server{Src: src, Every: 10 * time.Millisecond}).Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	next := func() Result {
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var r Result
				json.Unmarshal([]byte(data), &r)
				return r
			}
		}
		t.Fatal("stream ended")
		return Result{}
	}
	if r := next(); r != (Result{A: 1, Total: 1}) {
		t.Fatalf("first event %+v", r)
	}
	src.set(1, 5)
	if r := next(); r != (Result{A: 1, B: 5, Total: 6}) {
		t.Fatalf("second event %+v", r)
	}
}
