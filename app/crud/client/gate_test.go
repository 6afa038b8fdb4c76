package client

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeGate is the CRUD app's API in one process: sessions with a request
// counter, and items with a version counter per key. Its switches break it
// the ways the specs must catch.
type fakeGate struct {
	mu       sync.Mutex
	sessions map[string]int64 // id → requests
	items    map[string]item
	versions map[string]int64 // survive a delete

	down     atomic.Bool // every request: 502, after doing what it asked
	dropAll  atomic.Bool // puts are acknowledged and not stored
	slowPuts int         // every nth put is done, then answered too late
	noCount  atomic.Bool // GET /session omits the counter

	puts    int
	dropped map[string]bool // keys whose acknowledged put was dropped
}

func newFakeGate() *fakeGate {
	return &fakeGate{sessions: map[string]int64{}, items: map[string]item{}, versions: map[string]int64{}, dropped: map[string]bool{}}
}

// loseSessions forgets every session, as a session store restarted empty.
func (g *fakeGate) loseSessions() {
	g.mu.Lock()
	defer g.mu.Unlock()
	clear(g.sessions)
}

// resetCounters keeps the sessions and zeroes their counters, as a session
// store restored from an old snapshot.
func (g *fakeGate) resetCounters() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for id := range g.sessions {
		g.sessions[id] = 0
	}
}

func (g *fakeGate) droppedKeys() map[string]bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return maps.Clone(g.dropped)
}

func (g *fakeGate) server(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /session", g.newSession)
	mux.HandleFunc("GET /session", g.auth(g.session))
	mux.HandleFunc("PUT /items/{id}", g.auth(g.put))
	mux.HandleFunc("GET /items/{id}", g.auth(g.get))
	mux.HandleFunc("DELETE /items/{id}", g.auth(g.del))
	mux.HandleFunc("GET /items", g.auth(g.list))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func (g *fakeGate) newSession(w http.ResponseWriter, r *http.Request) {
	b := make([]byte, 8)
	rand.Read(b)
	id := hex.EncodeToString(b)
	g.mu.Lock()
	g.sessions[id] = 1
	g.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: "/"})
	w.Header().Set("X-Served-By", "gate.1/-")
	w.WriteHeader(http.StatusCreated)
}

// auth counts the request in its session's counter, or answers 401.
func (g *fakeGate) auth(h func(w http.ResponseWriter, r *http.Request, id string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(cookieName)
		g.mu.Lock()
		ok := err == nil
		if ok {
			_, ok = g.sessions[c.Value]
		}
		if ok {
			g.sessions[c.Value]++
		}
		g.mu.Unlock()
		if !ok {
			http.Error(w, "no session", http.StatusUnauthorized)
			return
		}
		w.Header().Set("X-Served-By", "gate.1/storage.1")
		h(w, r, c.Value)
	}
}

func (g *fakeGate) answer(w http.ResponseWriter, status int, v any) {
	if g.down.Load() {
		http.Error(w, "bad gateway", http.StatusBadGateway)
		return
	}
	if v == nil {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (g *fakeGate) session(w http.ResponseWriter, r *http.Request, id string) {
	g.mu.Lock()
	n := g.sessions[id]
	g.mu.Unlock()
	if g.noCount.Load() {
		g.answer(w, 200, map[string]any{"id": id})
		return
	}
	g.answer(w, 200, map[string]any{"id": id, "requests": n})
}

func (g *fakeGate) put(w http.ResponseWriter, r *http.Request, _ string) {
	key := r.PathValue("id")
	var body struct{ Value string }
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Value == "" {
		http.Error(w, "want {\"value\": …}", http.StatusBadRequest)
		return
	}
	g.mu.Lock()
	g.puts++
	slow := g.slowPuts > 0 && g.puts%g.slowPuts == 0
	it := item{ID: key, Value: body.Value, Version: g.versions[key] + 1}
	if g.dropAll.Load() {
		g.dropped[key] = true
	} else {
		g.versions[key] = it.Version
		g.items[key] = it
	}
	g.mu.Unlock()
	if slow {
		time.Sleep(300 * time.Millisecond)
	}
	g.answer(w, 200, it)
}

func (g *fakeGate) get(w http.ResponseWriter, r *http.Request, _ string) {
	g.mu.Lock()
	it, ok := g.items[r.PathValue("id")]
	g.mu.Unlock()
	if !ok {
		g.answer(w, 404, map[string]string{"error": "no such item"})
		return
	}
	g.answer(w, 200, it)
}

func (g *fakeGate) del(w http.ResponseWriter, r *http.Request, _ string) {
	g.mu.Lock()
	delete(g.items, r.PathValue("id"))
	g.mu.Unlock()
	g.answer(w, 204, nil)
}

func (g *fakeGate) list(w http.ResponseWriter, r *http.Request, _ string) {
	prefix := r.URL.Query().Get("prefix")
	g.mu.Lock()
	var its []item
	for k, it := range g.items {
		if strings.HasPrefix(k, prefix) {
			its = append(its, it)
		}
	}
	g.mu.Unlock()
	slices.SortFunc(its, func(a, b item) int { return strings.Compare(a.ID, b.ID) })
	g.answer(w, 200, its)
}

// store puts an item behind the API's back.
func (g *fakeGate) store(key, value string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.versions[key]++
	g.items[key] = item{ID: key, Value: value, Version: g.versions[key]}
}
