package history

import (
	"fmt"
	"slices"
	"time"

	"github.com/swarmlab/swarmlab/app/internal/latency"
)

// Rate is how fast one kind of operation was answered.
type Rate struct {
	Done   int     `json:"done"`   // answered as the model expects (get 200 or 404, put 200, delete 204)
	Failed int     `json:"failed"` // unknown or refused
	PerSec float64 `json:"per_sec"`
	P50ms  float64 `json:"p50_ms"` // of the done ones
	P99ms  float64 `json:"p99_ms"`
}

// Benchmark is what a history says about speed: reads are gets, writes
// puts and deletes, per second over the same span.
type Benchmark struct {
	Seconds float64 `json:"seconds"` // from the first invoke to the last answer
	Reads   Rate    `json:"reads"`
	Writes  Rate    `json:"writes"`
}

func (b Benchmark) String() string {
	return fmt.Sprintf("%.1fs: reads %.0f/s (p50 %.1f ms, p99 %.1f ms, %d failed), writes %.0f/s (p50 %.1f ms, p99 %.1f ms, %d failed)",
		b.Seconds, b.Reads.PerSec, b.Reads.P50ms, b.Reads.P99ms, b.Reads.Failed,
		b.Writes.PerSec, b.Writes.P50ms, b.Writes.P99ms, b.Writes.Failed)
}

// Bench measures ops.
func Bench(ops []Op) Benchmark {
	var reads, writes []time.Duration
	var b Benchmark
	first, last := time.Duration(1<<63-1), time.Duration(0)
	for _, op := range ops {
		r, lat := &b.Writes, &writes
		if op.Kind == Get {
			r, lat = &b.Reads, &reads
		}
		first = min(first, op.Invoke)
		if op.Outcome() != Done {
			r.Failed++
			continue
		}
		r.Done++
		*lat = append(*lat, op.Return-op.Invoke)
		last = max(last, op.Return)
	}
	if last <= first {
		return b
	}
	b.Seconds = (last - first).Seconds()
	for _, x := range []struct {
		r   *Rate
		lat []time.Duration
	}{{&b.Reads, reads}, {&b.Writes, writes}} {
		slices.Sort(x.lat)
		x.r.PerSec = float64(x.r.Done) / b.Seconds
		x.r.P50ms, x.r.P99ms = latency.Ms(x.lat, 0.50), latency.Ms(x.lat, 0.99)
	}
	return b
}

// LongestWriteGap is the longest stretch between from and to (offsets from
// the history's start) in which no write (put or delete) was acknowledged:
// how long writes stalled, e.g. from a database node's loss until writes
// succeeded again. The stretch runs from one acknowledged write's return
// (or from) to the next's (or to).
func LongestWriteGap(ops []Op, from, to time.Duration) time.Duration {
	var ends []time.Duration
	for _, o := range ops {
		if (o.Kind == Put || o.Kind == Delete) && o.Outcome() == Done && o.Return >= from && o.Return <= to {
			ends = append(ends, o.Return)
		}
	}
	slices.Sort(ends)
	longest, last := time.Duration(0), from
	for _, e := range append(ends, to) {
		longest = max(longest, e-last)
		last = e
	}
	return longest
}
