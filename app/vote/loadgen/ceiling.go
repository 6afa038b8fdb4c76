package loadgen

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
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
	type result struct {
		lat          []time.Duration
		sent, failed int
		errs         map[string]int
	}
	results := make([]result, concurrency)
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for g := range concurrency {
		wg.Go(func() {
			res := &results[g]
			res.errs = map[string]int{}
			c, _ := newGetConn(url) // checked above
			defer c.close()
			for ctx.Err() == nil && time.Now().Before(end) {
				t0 := time.Now()
				status, err := c.send(nil, 10*time.Second)
				res.sent++
				switch {
				case err == nil && status/100 == 2:
					res.lat = append(res.lat, time.Since(t0))
				case err != nil:
					res.failed++
					res.errs[errKind(err)]++
				default:
					res.failed++
					res.errs["HTTP "+strconv.Itoa(status)]++
				}
			}
		})
	}
	wg.Wait()
	rep := CeilingReport{URL: url, Concurrency: concurrency, Seconds: time.Since(start).Seconds(), Errors: map[string]int{}}
	var lat []time.Duration
	for _, r := range results {
		rep.Requests += r.sent
		rep.Failed += r.failed
		lat = append(lat, r.lat...)
		for k, n := range r.errs {
			rep.Errors[k] += n
		}
	}
	rep.OK = len(lat)
	rep.PerSec = float64(rep.OK) / rep.Seconds
	slices.Sort(lat)
	rep.P50ms, rep.P99ms = pct(lat, 0.50), pct(lat, 0.99)
	return rep, ctx.Err()
}
