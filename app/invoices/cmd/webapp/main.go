// Command webapp serves the invoices app's single page. The page calls
// /Customers, /Products and /Invoices on its own origin: the gateway routes
// them to the services, so the webapp itself needs no backend.
package main

import (
	_ "embed"
	"flag"
	"log"
	"net/http"
	"os"

	"github.com/swarmlab/swarmlab/app/invoices/internal/web"
)

var version = "v1"

//go:embed index.html
var page []byte

func main() {
	listen := flag.String("listen", web.Env("LISTEN_ADDR", ":8080"), "HTTP listen address [$LISTEN_ADDR]")
	healthcheck := flag.Bool("healthcheck", false, "probe /healthz on the listen address and exit 0 if healthy (the container health check)")
	flag.Parse()
	if *healthcheck {
		os.Exit(web.Healthcheck(*listen))
	}
	info := web.Info{Version: version, Host: web.Hostname()}
	ctx, stop := web.SignalContext()
	defer stop()
	log.Printf("webapp %s on %s: listening on %s", info.Version, info.Host, *listen)
	if err := web.Serve(ctx, web.NewServer(*listen, handler(info))); err != nil {
		log.Fatal(err)
	}
}

func handler(info web.Info) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(page)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		web.JSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("/", web.NotFound)
	return web.Headers(info, mux)
}
