package fake

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
)

// Registry is just enough of a registry's HTTP API for the lab's looks
// before a push (registry.Has, registry.Serves): it serves a manifest for
// each target it was given (Serve, or a push through an Engine), whose
// config is the image's ID, and records what it was asked.
type Registry struct {
	srv *httptest.Server

	mu     sync.Mutex
	images map[string]string // "library/myapp:1" -> the image's ID
	asked  []string
}

// NewRegistry starts a Registry that serves these targets
// ("library/redis:7"), each as an image of ID DefaultImageID; Close stops
// it.
func NewRegistry(targets ...string) *Registry {
	r := &Registry{images: map[string]string{}}
	for _, t := range targets {
		r.images[t] = DefaultImageID
	}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	return r
}

// Addr is the registry's "host:port".
func (r *Registry) Addr() string { return strings.TrimPrefix(r.srv.URL, "http://") }

// Close stops the registry.
func (r *Registry) Close() { r.srv.Close() }

// Serve makes the registry serve target as the image of ID id.
func (r *Registry) Serve(target, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.images[target] = id
}

// Image is the ID of the image the registry serves as target; "" if none.
func (r *Registry) Image(target string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.images[target]
}

// Asked returns the targets it was asked about, in order.
func (r *Registry) Asked() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.asked...)
}

func (r *Registry) serve(w http.ResponseWriter, req *http.Request) {
	repo, ref, ok := strings.Cut(strings.TrimPrefix(req.URL.Path, "/v2/"), "/manifests/")
	if !ok || (req.Method != http.MethodHead && req.Method != http.MethodGet) {
		http.NotFound(w, req)
		return
	}
	target := repo + ":" + ref
	r.mu.Lock()
	r.asked = append(r.asked, target)
	id, found := r.images[target]
	r.mu.Unlock()
	if !found {
		http.NotFound(w, req)
		return
	}
	w.Header().Set("Content-Type", "application/vnd.docker.distribution.manifest.v2+json")
	fmt.Fprintf(w, `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"digest":%q},"layers":[{"digest":"sha256:1111"}]}`, id)
}
