package server

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

//go:embed web
var web embed.FS

// Heartbeat is how often an idle /events stream gets a comment line, so
// proxies and the browser see it alive.
const Heartbeat = 15 * time.Second

// Handler serves the page and the model. Every route is listed here; any
// other path is 404 and any method but GET or HEAD is 405.
func Handler(w *Watcher) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", asset("web/index.html", "text/html; charset=utf-8"))
	mux.HandleFunc("GET /viz.js", asset("web/viz.js", "text/javascript; charset=utf-8"))
	mux.HandleFunc("GET /viz.css", asset("web/viz.css", "text/css; charset=utf-8"))
	mux.HandleFunc("GET /api/state", func(rw http.ResponseWriter, r *http.Request) {
		st, _ := w.Current()
		rw.Header().Set("Content-Type", "application/json")
		rw.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(rw).Encode(st)
	})
	mux.HandleFunc("GET /events", func(rw http.ResponseWriter, r *http.Request) { serveEvents(w, rw, r) })
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, r *http.Request) {
		ok, why := w.Healthy()
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !ok {
			rw.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(rw, why)
			return
		}
		fmt.Fprintln(rw, "ok")
	})
	return secure(mux)
}

// secure sets headers that keep the page from loading anything from
// elsewhere or being framed.
func secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		hd := rw.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(rw, r)
	})
}

func asset(name, contentType string) http.HandlerFunc {
	body, err := web.ReadFile(name)
	if err != nil {
		panic(err) // embedded at build time: a missing file is a build bug
	}
	return func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", contentType)
		rw.Header().Set("Cache-Control", "no-cache")
		http.ServeContent(rw, r, "", time.Time{}, bytes.NewReader(body))
	}
}

// serveEvents streams the model: once at connect, then at every change.
func serveEvents(w *Watcher, rw http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(rw)
	hd := rw.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no")
	rw.WriteHeader(http.StatusOK)
	// Tell the browser to reconnect quickly if the stream drops.
	if _, err := fmt.Fprint(rw, "retry: 1000\n\n"); err != nil {
		return
	}
	beat := time.NewTicker(Heartbeat)
	defer beat.Stop()
	for {
		st, changed := w.Current()
		data, err := json.Marshal(st)
		if err != nil {
			return
		}
		if _, err := fmt.Fprintf(rw, "event: state\ndata: %s\n\n", data); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	wait:
		for {
			select {
			case <-r.Context().Done():
				return
			case <-changed:
				break wait
			case <-beat.C:
				if _, err := fmt.Fprint(rw, ": beat\n\n"); err != nil {
					return
				}
				if err := rc.Flush(); err != nil {
					return
				}
			}
		}
	}
}
