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
// has every image (but those Missing names), and lists nothing (containers,
// networks, volumes, and a swarm's nodes, services and tasks). It records
// the paths it was asked. A pull fails (as where no registry is reachable)
// unless Pullable names the image. A push goes to the Registry PushTo
// names for its address, and fails for any other.
type Engine struct {
	srv *httptest.Server

	mu         sync.Mutex
	calls      []string
	pullable   map[string]bool
	missing    map[string]bool
	ids        map[string]string // image name -> ID, where not DefaultImageID
	tags       map[string]string // a tag made by ImageTag -> the image it names
	registries map[string]*Registry
	pushes     []string
}

// DefaultImageID is the ID of every image of an Engine that SetImage did not
// give another.
const DefaultImageID = "sha256:0000000000000000000000000000000000000000000000000000000000000000"

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

// Missing makes these images (by the name they are asked for: "myapp:1")
// unknown to the engine.
func (e *Engine) Missing(images ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, img := range images {
		e.missing[img] = true
	}
}

// SetImage gives image (by name) the ID id.
func (e *Engine) SetImage(image, id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ids[image] = id
	delete(e.missing, image)
}

// PushTo makes pushes to r's address land in r.
func (e *Engine) PushTo(r *Registry) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.registries[r.Addr()] = r
}

// Pushes returns every reference pushed ("127.0.0.1:5000/library/myapp:1").
func (e *Engine) Pushes() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.pushes...)
}

// NewEngine starts an Engine; Close stops it.
func NewEngine() *Engine {
	e := &Engine{missing: map[string]bool{}, ids: map[string]string{}, tags: map[string]string{}, registries: map[string]*Registry{}}
	e.srv = httptest.NewServer(http.HandlerFunc(e.serve))
	return e
}

// imageOp splits "/v1.47/images/127.0.0.1:5000/library/x/push" into the
// image name and the operation ("push"; "" for DELETE /images/NAME).
func imageOp(path string) (name, op string, ok bool) {
	_, rest, ok := strings.Cut(path, "/images/")
	if !ok {
		return "", "", false
	}
	if i := strings.LastIndex(rest, "/"); i >= 0 {
		switch rest[i+1:] {
		case "json", "tag", "push":
			return rest[:i], rest[i+1:], true
		}
	}
	return rest, "", true
}

// imageID is the ID of the image named name, or "" if the engine lacks it.
func (e *Engine) imageID(name string) string {
	if src, ok := e.tags[name]; ok {
		name = src
	}
	if e.missing[name] {
		return ""
	}
	if id, ok := e.ids[name]; ok {
		return id
	}
	return DefaultImageID
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
	name, op, isImage := imageOp(path)
	switch {
	case r.Method == http.MethodPost && strings.HasSuffix(path, "/images/create") && pullable:
		w.Write([]byte(`{"status":"Downloaded newer image"}` + "\n"))
	case strings.HasSuffix(path, "/_ping"):
		w.Write([]byte("OK"))
	case strings.HasSuffix(path, "/version"):
		w.Write([]byte(`{"Version":"29.0.0-fake","ApiVersion":"1.47","Os":"linux"}`))
	case isImage && op == "json":
		e.mu.Lock()
		id := e.imageID(name)
		e.mu.Unlock()
		if id == "" {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"message":"No such image: ` + name + `"}`))
			return
		}
		w.Write([]byte(`{"Id":"` + id + `","Size":1}`))
	case isImage && op == "tag" && r.Method == http.MethodPost:
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.imageID(name) == "" {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"message":"No such image: ` + name + `"}`))
			return
		}
		e.tags[q.Get("repo")+":"+q.Get("tag")] = name
		w.WriteHeader(http.StatusCreated)
	case isImage && op == "push" && r.Method == http.MethodPost:
		ref := name + ":" + q.Get("tag")
		e.mu.Lock()
		id := e.imageID(ref)
		addr, target, _ := strings.Cut(ref, "/")
		reg := e.registries[addr]
		if reg != nil && id != "" {
			e.pushes = append(e.pushes, ref)
		}
		e.mu.Unlock()
		if reg == nil || id == "" {
			w.Write([]byte(`{"errorDetail":{"message":"no fake registry at ` + addr + `"},"error":"no fake registry at ` + addr + `"}` + "\n"))
			return
		}
		reg.Serve(target, id)
		w.Write([]byte(`{"status":"Pushed"}` + "\n"))
	case isImage && op == "" && r.Method == http.MethodDelete:
		e.mu.Lock()
		delete(e.tags, name)
		e.mu.Unlock()
		w.Write([]byte(`[{"Untagged":"` + name + `"}]`))
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
