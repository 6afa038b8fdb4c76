package fake

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/moby/moby/client"
)

// Engine is just enough of a Docker engine, over HTTP, to stand for this
// machine's engine in a bring-up on the fake provider: it answers pings,
// has every image, and lists nothing (containers, networks, volumes, and a
// swarm's nodes, services and tasks). It records the paths it was asked.
// A pull fails (as where no registry is reachable) unless Pullable names
// the image.
type Engine struct {
	srv *httptest.Server

	mu       sync.Mutex
	calls    []string
	pullable map[string]bool
}

// Pullable lets pulls of these images (as given to the pull: "redis:alpine")
// succeed.
func (e *Engine) Pullable(images ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.pullable == nil {
		e.pullable = map[string]bool{}
	}
	for _, img := range images {
		e.pullable[img] = true
	}
}

// NewEngine starts an Engine; Close stops it.
func NewEngine() *Engine {
	e := &Engine{}
	e.srv = httptest.NewServer(http.HandlerFunc(e.serve))
	return e
}

func (e *Engine) serve(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.calls = append(e.calls, r.Method+" "+r.URL.Path)
	q := r.URL.Query()
	pullable := e.pullable[q.Get("fromImage")+":"+q.Get("tag")] || e.pullable[strings.TrimPrefix(q.Get("fromImage"), "docker.io/library/")+":"+q.Get("tag")]
	e.mu.Unlock()
	w.Header().Set("Api-Version", "1.47")
	w.Header().Set("Content-Type", "application/json")
	path := r.URL.Path
	switch {
	case r.Method == http.MethodPost && strings.HasSuffix(path, "/images/create") && pullable:
		w.Write([]byte(`{"status":"Downloaded newer image"}` + "\n"))
	case strings.HasSuffix(path, "/_ping"):
		w.Write([]byte("OK"))
	case strings.Contains(path, "/images/") && strings.HasSuffix(path, "/json"):
		w.Write([]byte(`{"Id":"sha256:0000000000000000000000000000000000000000000000000000000000000000","Size":1}`))
	case strings.HasSuffix(path, "/volumes"):
		w.Write([]byte(`{"Volumes":[]}`))
	case strings.HasSuffix(path, "/containers/json"), strings.HasSuffix(path, "/networks"),
		strings.HasSuffix(path, "/nodes"), strings.HasSuffix(path, "/services"), strings.HasSuffix(path, "/tasks"):
		w.Write([]byte(`[]`))
	default:
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"message":"not in the fake engine"}`))
	}
}

// Addr is the engine's DOCKER_HOST.
func (e *Engine) Addr() string { return "tcp://" + strings.TrimPrefix(e.srv.URL, "http://") }

// Client returns a client for the engine.
func (e *Engine) Client() (*client.Client, error) {
	return client.New(client.WithHost(e.Addr()))
}

// Calls returns "METHOD /path" of every request, in order.
func (e *Engine) Calls() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.calls...)
}

// Close stops the engine.
func (e *Engine) Close() { e.srv.Close() }
