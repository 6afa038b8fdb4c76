package wait

import (
	"context"
	"io"
	"net/http"
	"time"
)

// httpClient bounds each attempt, so a server that accepts and never
// answers costs one interval, not the whole wait.
var httpClient = &http.Client{Timeout: 2 * time.Second}

// HTTPOK holds when a GET of url answers 200; it reports the error, or the
// status and the start of the body, it got otherwise.
func HTTPOK(url string) Check {
	return func(ctx context.Context) Result {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return Fail(err)
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			return Continue("%v", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			// The start of the body often says why (a proxy's "no server").
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
			return Continue("HTTP %d: %s", resp.StatusCode, b)
		}
		return Done("HTTP 200")
	}
}
