package probe

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Fair checks that the replies counted by who answered (counts) spread
// evenly over want: each of want answered total/len(want) of them, give or
// take tol of that share (0.1 is ±10%), and nobody outside want answered.
// The error names every replica out of bounds, with the whole spread.
func Fair(counts map[string]int, want []string, tol float64) error {
	if len(want) == 0 {
		return errors.New("no replica to share the requests")
	}
	total := 0
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		return errors.New("no reply at all")
	}
	fair := float64(total) / float64(len(want))
	lo, hi := fair*(1-tol), fair*(1+tol)
	var problems []string
	for _, w := range want {
		if got := float64(counts[w]); got < lo || got > hi {
			problems = append(problems, fmt.Sprintf("%s answered %d", w, counts[w]))
		}
	}
	var extra []string
	for k, c := range counts {
		if c > 0 && !slices.Contains(want, k) {
			extra = append(extra, fmt.Sprintf("%s answered %d", k, c))
		}
	}
	slices.Sort(extra)
	if len(extra) > 0 {
		problems = append(problems, "not a replica: "+strings.Join(extra, ", "))
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%d replies over %d replicas, fair share %.1f, allowed %.1f–%.1f (±%.0f%%): %s; spread: %s",
		total, len(want), fair, lo, hi, tol*100, strings.Join(problems, "; "), spread(counts))
}

func spread(counts map[string]int) string {
	var parts []string
	for _, k := range sortedKeys(counts) {
		parts = append(parts, fmt.Sprintf("%s:%d", k, counts[k]))
	}
	return strings.Join(parts, " ")
}
