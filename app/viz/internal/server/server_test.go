package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/swarm"

	"github.com/swarmlab/swarmlab/app/viz/internal/fake"
	"github.com/swarmlab/swarmlab/app/viz/internal/model"
	"github.com/swarmlab/swarmlab/app/viz/internal/server"
)

// fast re-reads rarely by themselves, so a test sees what events cause.
var fast = server.Config{Resync: time.Hour, Poll: 50 * time.Millisecond, Settle: 200 * time.Millisecond,
	SettleEvery: 20 * time.Millisecond, Retry: 50 * time.Millisecond}

func start(t *testing.T, eng *fake.Engine, cfg server.Config) (*server.Watcher, *httptest.Server) {
	t.Helper()
	cfg.Logf = t.Logf
	w := server.NewWatcher(eng, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	srv := httptest.NewServer(server.Handler(w))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		cancel()
		<-done
	})
	return w, srv
}

// waitState waits until the watcher's model satisfies ok, and says what it
// last saw if it never does.
func waitState(t *testing.T, w *server.Watcher, what string, ok func(model.State) bool) model.State {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		st, changed := w.Current()
		if ok(st) {
			return st
		}
		select {
		case <-changed:
		case <-deadline:
			b, _ := json.Marshal(st)
			t.Fatalf("waiting for %s: last model %s", what, b)
		}
	}
}

func get(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestStateJSONIsTheModelAndNothingElse(t *testing.T) {
	eng := &fake.Engine{}
	eng.Set(fake.Swarm3())
	w, srv := start(t, eng, fast)
	waitState(t, w, "the first read", func(st model.State) bool { return len(st.Nodes) == 3 })

	code, body := get(t, "GET", srv.URL+"/api/state")
	if code != 200 {
		t.Fatalf("GET /api/state: %d %s", code, body)
	}
	var st model.State
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Nodes) != 3 || st.Nodes[0].Hostname != "m1" || len(st.Nodes[0].Tasks) != 2 {
		t.Errorf("state %s: want 3 nodes, m1 first with 2 tasks", body)
	}
	for _, leak := range []string{fake.SecretEnv, fake.SecretName, fake.ConfigName, fake.ServiceLabel, "POSTGRES_PASSWORD"} {
		if strings.Contains(body, leak) {
			t.Errorf("/api/state contains %q", leak)
		}
	}
	// Every key of the JSON is one the model declares.
	var raw map[string]any
	_ = json.Unmarshal([]byte(body), &raw)
	for k := range raw {
		switch k {
		case "generated", "source", "error", "nodes", "unassigned":
		default:
			t.Errorf("unexpected top-level key %q", k)
		}
	}
}

func TestOnlyItsOwnRoutesAnswer(t *testing.T) {
	eng := &fake.Engine{}
	eng.Set(fake.Swarm3())
	_, srv := start(t, eng, fast)
	for _, path := range []string{"/", "/viz.js", "/viz.css", "/api/state", "/healthz"} {
		if code, body := get(t, "GET", srv.URL+path); code != 200 {
			t.Errorf("GET %s: %d %.100s", path, code, body)
		}
	}
	// Docker API paths, with and without a version, are not passed through.
	for _, path := range []string{"/containers/json", "/v1.41/containers/json", "/services", "/v1.41/secrets",
		"/api/services", "/api/state/x", "/info", "/events/x", "/index.html", "/../etc/passwd", "/_ping"} {
		if code, _ := get(t, "GET", srv.URL+path); code != 404 {
			t.Errorf("GET %s: %d, want 404", path, code)
		}
	}
	for _, path := range []string{"/", "/api/state", "/events", "/containers/create"} {
		code, _ := get(t, "POST", srv.URL+path)
		if code != 405 && code != 404 {
			t.Errorf("POST %s: %d, want 405 or 404", path, code)
		}
	}
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("page CSP %q: want default-src 'self' (nothing loaded from elsewhere)", csp)
	}
}

func TestPageLoadsNothingFromElsewhere(t *testing.T) {
	_, srv := start(t, &fake.Engine{}, fast)
	for _, path := range []string{"/", "/viz.js", "/viz.css"} {
		_, body := get(t, "GET", srv.URL+path)
		for _, ext := range []string{"http://", "https://", "//cdn", "@import"} {
			if strings.Contains(body, ext) {
				t.Errorf("%s refers to %q: the page must work offline", path, ext)
			}
		}
	}
}

// sse reads "event: state" payloads from /events.
func sse(t *testing.T, url string) <-chan model.State {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("/events Content-Type %q", ct)
	}
	out := make(chan model.State, 16)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var st model.State
				if json.Unmarshal([]byte(data), &st) == nil {
					out <- st
				}
			}
		}
		close(out)
	}()
	t.Cleanup(cancel)
	return out
}

func nextState(t *testing.T, ch <-chan model.State, what string, ok func(model.State) bool) model.State {
	t.Helper()
	deadline := time.After(5 * time.Second)
	var last model.State
	for {
		select {
		case st, open := <-ch:
			if !open {
				t.Fatalf("waiting on /events for %s: stream closed", what)
			}
			if ok(st) {
				return st
			}
			last = st
		case <-deadline:
			b, _ := json.Marshal(last)
			t.Fatalf("waiting on /events for %s: last pushed %s", what, b)
		}
	}
}

func hostState(st model.State, host string) string {
	for _, n := range st.Nodes {
		if n.Hostname == host {
			return n.State
		}
	}
	return "absent"
}

func TestAnEventPushesTheNewModelToOpenPages(t *testing.T) {
	eng := &fake.Engine{}
	nodes, svcs, tasks := fake.Swarm3()
	nodes[0].Status.State = swarm.NodeStateReady // w2 starts ready
	eng.Set(nodes, svcs, tasks)
	w, srv := start(t, eng, fast)
	waitState(t, w, "the event stream", func(st model.State) bool { return st.Source == server.SourceEvents })

	ch := sse(t, srv.URL)
	nextState(t, ch, "w2 ready", func(st model.State) bool { return hostState(st, "w2") == "ready" })

	nodes, svcs, tasks = fake.Swarm3() // w2 down
	eng.Set(nodes, svcs, tasks)
	eng.Emit(events.Message{Type: events.NodeEventType, Action: "update"})
	st := nextState(t, ch, "w2 down after a node event", func(st model.State) bool { return hostState(st, "w2") == "down" })
	if st.Source != server.SourceEvents {
		t.Errorf("source %q, want %q", st.Source, server.SourceEvents)
	}

	// A task moving on another node emits no event here: the re-reads that
	// follow an event for a while catch it.
	eng.Emit(events.Message{Type: events.ServiceEventType, Action: "update"})
	tasks[2].Status.State = swarm.TaskStateRunning // t-web-3 starting → running
	eng.Set(nodes, svcs, tasks)
	nextState(t, ch, "t-web-3 running without an event of its own", func(st model.State) bool {
		for _, n := range st.Nodes {
			for _, tk := range n.Tasks {
				if tk.ID == "t-web-3" && tk.State == "running" {
					return true
				}
			}
		}
		return false
	})
}

func TestPollsWhileTheEventStreamFails(t *testing.T) {
	eng := &fake.Engine{}
	eng.Set(fake.Swarm3())
	eng.FailEvents(fake.ErrDown)
	w, _ := start(t, eng, fast)
	waitState(t, w, "polling source", func(st model.State) bool { return st.Source == server.SourcePolling && len(st.Nodes) == 3 })

	// Without any event, a change is seen by polling.
	nodes, svcs, tasks := fake.Swarm3()
	nodes[0].Status.State = swarm.NodeStateReady
	eng.Set(nodes, svcs, tasks)
	waitState(t, w, "w2 ready seen by polling", func(st model.State) bool { return hostState(st, "w2") == "ready" })

	// The stream comes back: the source says so.
	eng.FailEvents(nil)
	waitState(t, w, "the event stream reopened", func(st model.State) bool { return st.Source == server.SourceEvents })

	// It breaks again: back to polling.
	eng.FailEvents(fake.ErrDown)
	eng.Break(fake.ErrDown)
	waitState(t, w, "polling again after the stream broke", func(st model.State) bool { return st.Source == server.SourcePolling })
}

func TestHealthzFollowsTheEngine(t *testing.T) {
	eng := &fake.Engine{}
	eng.Set(fake.Swarm3())
	w, srv := start(t, eng, fast)
	waitState(t, w, "the first read", func(st model.State) bool { return len(st.Nodes) == 3 && st.Error == "" })
	if code, body := get(t, "GET", srv.URL+"/healthz"); code != 200 {
		t.Errorf("healthz with a working engine: %d %s", code, body)
	}
	eng.FailLists(fake.ErrDown)
	st := waitState(t, w, "the read error", func(st model.State) bool { return st.Error != "" })
	if len(st.Nodes) != 3 {
		t.Errorf("the last good model should stay while the engine fails, got %d nodes", len(st.Nodes))
	}
	if code, body := get(t, "GET", srv.URL+"/healthz"); code != 503 || !strings.Contains(body, "cannot connect") {
		t.Errorf("healthz with a failing engine: %d %q, want 503 and the reason", code, body)
	}
}
