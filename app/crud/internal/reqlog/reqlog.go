// Package reqlog writes the one JSON line per request that every crud
// service prints on stdout: who served it, for which session and item, how
// it ended and how long it took. Swarm keeps each task's stdout (and the lab
// keeps every task's output, see `swarmlab logs`), so one grep over the
// lines of all tasks follows a request from the gate to the storage task
// and the database node that served it.
package reqlog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"
)

// Line is one request's log line. Handlers fill in what only they know
// (session, item, storage task, outcome, error) through From.
type Line struct {
	Time string `json:"time"`
	// Request is the request's id: the gate makes it (or takes the
	// client's X-Request-Id) and sends it on to storage, so the gate's line
	// and the storage line of one request share it.
	Request   string  `json:"request"`
	Service   string  `json:"service"`
	Task      string  `json:"task"`
	Session   string  `json:"session"`
	Item      string  `json:"item"`
	Method    string  `json:"method"`
	Path      string  `json:"path"`
	Status    int     `json:"status"`
	Outcome   string  `json:"outcome"`
	LatencyMS float64 `json:"latency_ms"`
	// Storage is, on the gate, the storage task that answered ("" if none).
	Storage string `json:"storage,omitempty"`
	// DBNode is, on storage, the database node that served the last attempt;
	// Attempts counts the attempts (more than 1 after a retry).
	DBNode   string `json:"db_node,omitempty"`
	Attempts int    `json:"attempts,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Logger wraps handlers so that each request prints one Line.
type Logger struct {
	Service, Task string
	mu            sync.Mutex
	enc           *json.Encoder
}

// New writes lines to w (os.Stdout in the services).
func New(w io.Writer, service, task string) *Logger {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &Logger{Service: service, Task: task, enc: enc}
}

// The headers the gate sends to storage with each request, so that
// storage's line names the request and the session too.
const (
	RequestHeader = "X-Request-Id"
	SessionHeader = "X-Session"
)

func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

type key struct{}

// From returns the line of the request ctx belongs to, or a throwaway one
// outside a logged request, so callers never check for nil.
func From(ctx context.Context) *Line {
	if l, ok := ctx.Value(key{}).(*Line); ok {
		return l
	}
	return &Line{}
}

// NewContext returns ctx carrying line, which From then returns (for code
// outside a logged request that wants to see what was noted, e.g. tests).
func NewContext(ctx context.Context, line *Line) context.Context {
	return context.WithValue(ctx, key{}, line)
}

// Wrap logs every request h serves, except GET /healthz (the container
// health check probes it every 2 s).
func (lg *Logger) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			h.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		line := &Line{Service: lg.Service, Task: lg.Task, Method: r.Method, Path: r.URL.RequestURI(),
			Request: r.Header.Get(RequestHeader), Session: r.Header.Get(SessionHeader)}
		if line.Request == "" || len(line.Request) > 64 {
			line.Request = newID()
		}
		w.Header().Set(RequestHeader, line.Request)
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r.WithContext(NewContext(r.Context(), line)))
		line.Time = start.UTC().Format(time.RFC3339Nano)
		line.Status = sw.status()
		line.LatencyMS = float64(time.Since(start).Microseconds()) / 1000
		if line.Outcome == "" {
			line.Outcome = Outcome(line.Status)
		}
		lg.mu.Lock()
		lg.enc.Encode(line)
		lg.mu.Unlock()
	})
}

// Outcome names a status for the log: ok, bad_request, unauthorized, ...
func Outcome(status int) string {
	switch {
	case status < 300:
		return "ok"
	case status == http.StatusBadRequest:
		return "bad_request"
	case status == http.StatusUnauthorized:
		return "unauthorized"
	case status == http.StatusNotFound:
		return "not_found"
	case status == http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case status == http.StatusRequestEntityTooLarge:
		return "too_large"
	case status == http.StatusServiceUnavailable:
		return "unavailable"
	case status < 500:
		return "client_error"
	default:
		return "error"
	}
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
