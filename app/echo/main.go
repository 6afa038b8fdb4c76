// Command echo is the lab's test app: it answers every request with its
// version, task, node and hostname, so a test can tell which replica and
// which version served it.
//
//	echo                 serve on :8080 (ADDR overrides)
//	echo healthcheck     exit 0 if the local server is healthy (for HEALTHCHECK;
//	                     the image has no shell or curl)
//
// The version is set at build time (-ldflags "-X main.version=v2"); a build
// with -X main.broken=true fails its health check, for rollback tests.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

var (
	version = "dev"
	broken  = "false"
)

// Reply is what every request gets back.
type Reply struct {
	Version  string `json:"version"`
	Task     string `json:"task"`
	Node     string `json:"node"`
	Hostname string `json:"hostname"`
}

func main() {
	addr := os.Getenv("ADDR")
	if addr == "" {
		addr = ":8080"
	}
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		os.Exit(healthcheck("http://127.0.0.1" + port(addr) + "/healthz"))
	}
	host, _ := os.Hostname()
	h := Handler(Reply{Version: version, Task: os.Getenv("TASK"), Node: os.Getenv("NODE"), Hostname: host}, broken == "true")
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		// Finish requests in flight before the task goes away.
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	fmt.Fprintf(os.Stderr, "echo %s listening on %s\n", version, addr)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// port returns the ":8080" of an address like ":8080" or "0.0.0.0:8080".
func port(addr string) string {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[i:]
		}
	}
	return addr
}

// Handler serves the reply on every path but /healthz.
func Handler(r Reply, broken bool) http.Handler {
	body, _ := json.Marshal(r)
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if broken {
			http.Error(w, "this build is broken on purpose", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Echo-Version", r.Version)
		w.Write(body)
	})
	return mux
}

func healthcheck(url string) int {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "unhealthy:", resp.Status)
		return 1
	}
	return 0
}
