package loadgen

import (
	"slices"
	"strconv"
	"time"
)

// connStats counts what the requests of one connection's goroutine got;
// each goroutine has its own, summed once sending ends.
type connStats struct {
	lat                        []time.Duration // of the 2xx answers
	sent, ok, rejected, failed int
	errs                       map[string]int // rejections and failures by kind
	log                        []event        // Run's requests, in the order sent
}

// outcome is how one request ended.
type outcome int

const (
	accepted outcome = iota // 2xx
	rejected                // 4xx: the server said no
	failed                  // 5xx or a transport error: it may have been done
)

// count records a request sent at t0 that got status or err.
func (s *connStats) count(t0 time.Time, status int, err error) outcome {
	s.sent++
	if s.errs == nil {
		s.errs = map[string]int{}
	}
	switch {
	case err == nil && status/100 == 2:
		s.ok++
		s.lat = append(s.lat, time.Since(t0))
		return accepted
	case err == nil && status/100 == 4:
		s.rejected++
		s.errs["HTTP "+strconv.Itoa(status)]++
		return rejected
	default:
		s.failed++
		if err != nil {
			s.errs[errKind(err)]++
		} else {
			s.errs["HTTP "+strconv.Itoa(status)]++
		}
		return failed
	}
}

// sumStats adds up every connection's counts, with the latencies sorted.
func sumStats(all []connStats) connStats {
	tot := connStats{errs: map[string]int{}}
	for _, s := range all {
		tot.sent += s.sent
		tot.ok += s.ok
		tot.rejected += s.rejected
		tot.failed += s.failed
		tot.lat = append(tot.lat, s.lat...)
		for k, n := range s.errs {
			tot.errs[k] += n
		}
	}
	slices.Sort(tot.lat)
	return tot
}
