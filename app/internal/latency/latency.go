// Package latency holds what the apps' load generators share to report
// request latencies.
package latency

import "time"

// Ms is the p-th (0..1) of sorted durations, in milliseconds; 0 for none.
func Ms(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := min(len(sorted)-1, int(p*float64(len(sorted))))
	return float64(sorted[i]) / float64(time.Millisecond)
}
