package results

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmlab/swarmlab/app/vote/internal/store"
)

type fakeSource struct {
	mu    sync.Mutex
	t     store.Tally
	votes map[string]byte
	ask   []string // voters asked for, in order
	err   error
}

func (f *fakeSource) Tally(context.Context) (store.Tally, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t, f.err
}

func (f *fakeSource) Voter(_ context.Context, voter string) (byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ask = append(f.ask, voter)
	return f.votes[voter], f.err
}

func (f *fakeSource) asked() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ask
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

// /api/voter answers what is counted for the cookie's voter, and only that
// voter; without a valid cookie it says which field is wrong.
func TestVoterAPI(t *testing.T) {
	src := &fakeSource{votes: map[string]byte{"v1": 'a', "v2": 'b'}}
	srv := httptest.NewServer((&Server{Src: src}).Handler())
	defer srv.Close()
	get := func(cookie string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/voter", nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q, want application/json", ct)
		}
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	for _, c := range []struct {
		cookie string
		code   int
		body   string
	}{
		{"voter_id=v1", 200, `{"voter_id":"v1","vote":"a"}`},
		{"voter_id=v2", 200, `{"voter_id":"v2","vote":"b"}`},
		{"voter_id=nobody", 200, `{"voter_id":"nobody","vote":null}`},
		{"other=v1", 400, "voter_id"},
		{"", 400, "voter_id"},
		{"voter_id=" + strings.Repeat("x", 65), 400, "voter_id"},
		{"voter_id=a/b", 400, "voter_id"},
	} {
		code, body := get(c.cookie)
		if code != c.code || (code == 200 && body != c.body) || (code != 200 && !strings.Contains(body, c.body)) {
			t.Errorf("cookie %q: HTTP %d %s, want HTTP %d with %s", c.cookie, code, body, c.code, c.body)
		}
	}
	if got := src.asked(); strings.Join(got, ",") != "v1,v2,nobody" {
		t.Errorf("the source was asked for %v, want only the valid cookies' voters", got)
	}

	src.err = errors.New("db down")
	if code, body := get("voter_id=v1"); code != 503 || !strings.Contains(body, "unavailable") {
		t.Errorf("db down: HTTP %d %s, want 503", code, body)
	}
}
