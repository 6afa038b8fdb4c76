// Package web holds what every invoices-app service shares: the headers that
// say which replica and version answered, the seed's JSON error shape,
// bounded JSON input, graceful serving and the container health probe.
package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// MaxBody is the largest request body any service reads; more is a 413.
const MaxBody = 64 << 10

// Info names the process that answers.
type Info struct {
	Version string // from -ldflags "-X main.version=v2"
	Host    string // the container's hostname: which replica answered
}

// Hostname is the default for Info.Host.
func Hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "unknown"
	}
	return h
}

// Headers sets X-Version and X-Served-By on every response of h, errors
// included, so a client can tell replicas and versions apart.
func Headers(info Info, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Version", info.Version)
		w.Header().Set("X-Served-By", info.Host)
		h.ServeHTTP(w, r)
	})
}

// JSON writes v with the given status.
func JSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// Error writes the seed's error body: {"status": 404, "error": "...", ...extra}.
func Error(w http.ResponseWriter, status int, msg string, extra ...any) {
	body := map[string]any{"status": status, "error": msg}
	for i := 0; i+1 < len(extra); i += 2 {
		body[fmt.Sprint(extra[i])] = extra[i+1]
	}
	JSON(w, status, body)
}

// FieldError is invalid input in one field of a request body.
type FieldError struct {
	Field, Msg string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Invalid reports a bad field as 400 {"field": ..., "error": ...}.
func Invalid(w http.ResponseWriter, field, msg string) {
	Error(w, http.StatusBadRequest, msg, "field", field)
}

// Decode reads one JSON object of at most MaxBody bytes into v. On failure
// it has already answered: 413 for an oversized body, 400 naming the field
// for a value of the wrong type, 400 for anything else that is not JSON.
func Decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("more than one JSON value in the body")
	}
	var tooBig *http.MaxBytesError
	var typ *json.UnmarshalTypeError
	switch {
	case err == nil:
		return true
	case errors.As(err, &tooBig):
		Error(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", tooBig.Limit))
	case errors.As(err, &typ) && typ.Field != "":
		Invalid(w, typ.Field, fmt.Sprintf("%s must be a %s, not %s", typ.Field, typ.Type, typ.Value))
	case errors.Is(err, io.EOF):
		Error(w, http.StatusBadRequest, "request body is empty; expected a JSON object")
	default:
		Error(w, http.StatusBadRequest, "request body is not a JSON object: "+err.Error())
	}
	return false
}

// NotFound answers any path no route matched with the JSON error shape.
func NotFound(w http.ResponseWriter, r *http.Request) {
	Error(w, http.StatusNotFound, "no route for "+r.Method+" "+r.URL.Path)
}

// Unavailable answers 503 for a dependency (Redis or another service) that
// did not answer: the request may succeed later, and nothing was stored.
func Unavailable(w http.ResponseWriter, what string, err error) {
	Error(w, http.StatusServiceUnavailable, what+" unavailable: "+err.Error())
}

// SignalContext is cancelled on SIGINT or SIGTERM (docker stop).
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// Serve runs srv until ctx is done, then lets in-flight requests finish.
func Serve(ctx context.Context, srv *http.Server) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// NewServer wraps h with sane timeouts for a service behind the gateway.
func NewServer(addr string, h http.Handler) *http.Server {
	return &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10}
}

// Healthcheck probes /healthz on our own listen address and returns an exit
// code. Images are FROM scratch, so the binary is its own health-check tool.
func Healthcheck(listen string) int {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + net.JoinHostPort(host, port) + "/healthz")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, resp.Status)
		return 1
	}
	return 0
}

// Env returns $key, or def when it is unset.
func Env(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return def
}
