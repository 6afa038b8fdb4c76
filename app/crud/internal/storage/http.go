package storage

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/swarmlab/swarmlab/app/crud/internal/api"
	"github.com/swarmlab/swarmlab/app/crud/internal/reqlog"
)

// MaxBody is the largest PUT body storage reads: more than the gate's 64
// KiB, since the gate's re-encoding of a value can be longer than what the
// client sent.
const MaxBody = 1 << 20

// Server is storage's HTTP API.
type Server struct {
	Store Store
	// Task names this task in X-Served-By and the log.
	Task string
	// Timeout bounds one request's database work.
	Timeout time.Duration
	// Health adds details to /healthz (the nodes, the read mode); optional.
	Health func() map[string]any
}

// Handler serves the API, one log line per request through lg.
func (s *Server) Handler(lg *reqlog.Logger) http.Handler {
	mux := http.NewServeMux()
	api.HandleItems(mux, api.ItemHandlers{Put: s.put, Get: s.get, Delete: s.delete, List: s.list})
	mux.HandleFunc("GET /healthz", s.health)
	return lg.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Served-By", s.Task)
		mux.ServeHTTP(w, r)
	}))
}

func (s *Server) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	t := s.Timeout
	if t <= 0 {
		t = 10 * time.Second
	}
	return context.WithTimeout(r.Context(), t)
}

func (s *Server) put(w http.ResponseWriter, r *http.Request) {
	id, ok := api.PathID(w, r)
	if !ok {
		return
	}
	v, err := api.ReadValue(w, r, MaxBody)
	if err != nil {
		api.BadInput(w, err, MaxBody)
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	it, err := s.Store.Put(ctx, id, v)
	if err != nil {
		unavailable(w, r, err)
		return
	}
	api.JSON(w, http.StatusOK, it)
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	id, ok := api.PathID(w, r)
	if !ok {
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	it, err := s.Store.Get(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		api.Fail(w, http.StatusNotFound, "id: no such item")
	case err != nil:
		unavailable(w, r, err)
	default:
		api.JSON(w, http.StatusOK, it)
	}
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request) {
	id, ok := api.PathID(w, r)
	if !ok {
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	if err := s.Store.Delete(ctx, id); err != nil {
		unavailable(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	p, ok := api.QueryPrefix(w, r)
	if !ok {
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	items, err := s.Store.List(ctx, p)
	if err != nil {
		unavailable(w, r, err)
		return
	}
	api.JSON(w, http.StatusOK, items)
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	out := map[string]any{"task": s.Task}
	if s.Health != nil {
		for k, v := range s.Health() {
			out[k] = v
		}
	}
	status := http.StatusOK
	if err := s.Store.Ping(ctx); err != nil {
		status, out["error"] = http.StatusServiceUnavailable, "database: "+err.Error()
	}
	api.JSON(w, status, out)
}

// unavailable is a 503: the database did not do it, or nobody knows.
func unavailable(w http.ResponseWriter, r *http.Request, err error) {
	line := reqlog.From(r.Context())
	line.Error = err.Error()
	if errors.Is(err, ErrOutcomeUnknown) {
		line.Outcome = "outcome_unknown"
	}
	api.Fail(w, http.StatusServiceUnavailable, "database: "+err.Error())
}
