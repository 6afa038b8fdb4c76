package loadgen

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/swarmlab/swarmlab/app/internal/latency"
)

// CeilingReport is what Ceiling measured: how many GETs of one URL the
// path to it answers per second, with no vote, Redis write or fsync behind
// them. Pointed at the edge's own answer (/edge/ping), at a vote task's
// /healthz through the edge, and compared with Run's votes/s, it says which
// part of the path a vote's cost lies in.
type CeilingReport struct {
	URL         string         `json:"url"`
	Concurrency int            `json:"concurrency"`
	Seconds     float64        `json:"seconds"`
	Requests    int            `json:"requests"`
	OK          int            `json:"ok"` // 2xx
	Failed      int            `json:"failed"`
	PerSec      float64        `json:"ok_per_sec"`
	P50ms       float64        `json:"p50_ms"`
	P99ms       float64        `json:"p99_ms"`
	Errors      map[string]int `json:"errors,omitempty"`
}

// Ceiling GETs url as fast as it can over concurrency keep-alive
// connections for d (or until ctx ends), and reports the 2xx rate.
func Ceiling(ctx context.Context, url string, concurrency int, d time.Duration) (CeilingReport, error) {
	if concurrency <= 0 {
		concurrency = 64
	}
	if d <= 0 {
		return CeilingReport{}, fmt.Errorf("ceiling: duration must be positive, got %s", d)
	}
	if _, err := newGetConn(url); err != nil {
		return CeilingReport{}, err
	}
	results := make([]connStats, concurrency)
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for g := range concurrency {
		wg.Go(func() {
			res := &results[g]
			c, _ := newGetConn(url) // checked above
			defer c.close()
			for ctx.Err() == nil && time.Now().Before(end) {
				t0 := time.Now()
				status, err := c.send(nil, 10*time.Second)
				res.count(t0, status, err)
			}
		})
	}
	wg.Wait()
	tot := sumStats(results)
	rep := CeilingReport{
		URL: url, Concurrency: concurrency, Seconds: time.Since(start).Seconds(),
		// A 4xx is a failure here: the URL should just answer.
		Requests: tot.sent, OK: tot.ok, Failed: tot.rejected + tot.failed, Errors: tot.errs,
	}
	rep.PerSec = float64(rep.OK) / rep.Seconds
	rep.P50ms, rep.P99ms = latency.Ms(tot.lat, 0.50), latency.Ms(tot.lat, 0.99)
	return rep, ctx.Err()
}
