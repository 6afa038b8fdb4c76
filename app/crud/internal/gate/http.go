// Package gate is the crud app's public REST API. It keeps sessions in Redis
// (a master with replicas, found through Sentinel) and the items in the
// storage service, which it reaches over the overlay. See app/crud/README.md
// for the API.
package gate

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/swarmlab/swarmlab/app/crud/internal/api"
	"github.com/swarmlab/swarmlab/app/crud/internal/reqlog"
)

// CookieName is the session cookie.
const CookieName = "session"

// Server is the gate's HTTP API.
type Server struct {
	Sessions Sessions
	Storage  *Storage
	// Task names this task in X-Served-By and the log.
	Task string
	// SessionTimeout bounds one session read or write (WAIT included).
	SessionTimeout time.Duration
}

// Session is the answer of POST and GET /session.
type Session struct {
	ID       string `json:"id"`
	Requests int64  `json:"requests"`
}

// Handler serves the API, one log line per request through lg.
func (s *Server) Handler(lg *reqlog.Logger) http.Handler {
	authed := http.NewServeMux()
	authed.HandleFunc("GET /session", s.getSession)
	api.HandleItems(authed, api.ItemHandlers{Put: s.put, Get: s.get, Delete: s.delete, List: s.list})

	mux := http.NewServeMux()
	mux.HandleFunc("POST /session", s.createSession)
	mux.HandleFunc("GET /healthz", s.health)
	mux.Handle("/", s.authenticate(authed))
	return lg.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The session in the gate's line is the cookie's, once checked.
		reqlog.From(r.Context()).Session = ""
		s.servedBy(w, "")
		mux.ServeHTTP(w, r)
	}))
}

// servedBy sets X-Served-By: <gate task>/<storage task>, "-" for none.
func (s *Server) servedBy(w http.ResponseWriter, storage string) {
	if storage == "" {
		storage = "-"
	}
	w.Header().Set("X-Served-By", s.Task+"/"+storage)
}

func (s *Server) sessionCtx(r *http.Request) (context.Context, context.CancelFunc) {
	t := s.SessionTimeout
	if t <= 0 {
		t = 5 * time.Second
	}
	return context.WithTimeout(r.Context(), t)
}

func (s *Server) createSession(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.sessionCtx(r)
	defer cancel()
	id, err := s.Sessions.Create(ctx)
	if err != nil {
		sessionUnavailable(w, r, err)
		return
	}
	reqlog.From(r.Context()).Session = id
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	api.JSON(w, http.StatusCreated, Session{ID: id})
}

type requestsKey struct{}

// authenticate counts the request in its session (HINCRBY, then WAIT) and
// answers 401 without a valid session, 503 when the count is not replicated.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(CookieName)
		if err != nil || !ValidSessionID(c.Value) {
			api.Fail(w, http.StatusUnauthorized, "session: no valid session cookie; POST /session for one")
			return
		}
		reqlog.From(r.Context()).Session = c.Value
		ctx, cancel := s.sessionCtx(r)
		n, err := s.Sessions.Touch(ctx, c.Value)
		cancel()
		switch {
		case errors.Is(err, ErrNoSession):
			api.Fail(w, http.StatusUnauthorized, "session: unknown or expired; POST /session for a new one")
			return
		case err != nil:
			sessionUnavailable(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestsKey{}, n)))
	})
}

func sessionUnavailable(w http.ResponseWriter, r *http.Request, err error) {
	line := reqlog.From(r.Context())
	line.Error = err.Error()
	if errors.Is(err, ErrNotReplicated) {
		line.Outcome = "not_replicated"
	}
	api.Fail(w, http.StatusServiceUnavailable, "session: "+err.Error())
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request) {
	n, _ := r.Context().Value(requestsKey{}).(int64)
	api.JSON(w, http.StatusOK, Session{ID: reqlog.From(r.Context()).Session, Requests: n})
}

func (s *Server) put(w http.ResponseWriter, r *http.Request) {
	id, ok := api.PathID(w, r)
	if !ok {
		return
	}
	v, err := api.ReadValue(w, r, api.MaxBody)
	if err != nil {
		api.BadInput(w, err, api.MaxBody)
		return
	}
	body, _ := json.Marshal(map[string]string{"value": v})
	s.forward(w, r, http.MethodPut, "/items/"+url.PathEscape(id), body, http.StatusOK, true)
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	if id, ok := api.PathID(w, r); ok {
		s.forward(w, r, http.MethodGet, "/items/"+url.PathEscape(id), nil, http.StatusOK, true)
	}
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request) {
	if id, ok := api.PathID(w, r); ok {
		s.forward(w, r, http.MethodDelete, "/items/"+url.PathEscape(id), nil, http.StatusNoContent, false)
	}
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	p, ok := api.QueryPrefix(w, r)
	if !ok {
		return
	}
	s.forward(w, r, http.MethodGet, "/items?prefix="+url.QueryEscape(p), nil, http.StatusOK, true)
}

// forward asks storage and answers with what it said: want (with its JSON
// body if hasBody, checked to be JSON), 404, 400 as they are; anything else,
// or no answer, is a 503.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, method, path string, body []byte, want int, hasBody bool) {
	line := reqlog.From(r.Context())
	rep, err := s.Storage.Do(r.Context(), method, path, body)
	line.Storage = rep.ServedBy
	s.servedBy(w, rep.ServedBy)
	if err != nil {
		line.Error = err.Error()
		if errors.Is(err, ErrStorageUnknown) {
			line.Outcome = "outcome_unknown"
		}
		api.Fail(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	switch {
	case rep.Status == want && !hasBody:
		w.WriteHeader(want)
	case rep.Status == want && json.Valid(rep.Body):
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(want)
		w.Write(rep.Body)
	case rep.Status == http.StatusNotFound || rep.Status == http.StatusBadRequest:
		var e api.Error
		if json.Unmarshal(rep.Body, &e) != nil || e.Error == "" {
			e.Error = http.StatusText(rep.Status)
		}
		api.Fail(w, rep.Status, e.Error)
	default:
		var e api.Error
		json.Unmarshal(rep.Body, &e)
		line.Error = "storage answered " + http.StatusText(rep.Status) + ": " + e.Error
		api.Fail(w, http.StatusServiceUnavailable, "storage: "+e.Error)
	}
}

// health is 200 while sessions can be read; it tells the storage path.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	out := map[string]any{"task": s.Task, "storage": s.Storage.Path()}
	status := http.StatusOK
	if err := s.Sessions.Ping(ctx); err != nil {
		status, out["error"] = http.StatusServiceUnavailable, "sessions: "+err.Error()
	}
	api.JSON(w, status, out)
}
