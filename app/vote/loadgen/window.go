package loadgen

import (
	"slices"
	"sort"
	"time"
)

// event is one request: when it was sent, as time since the run started,
// and its outcome in the low two bits. Eight bytes a request keeps a long
// run's log small (200,000 votes: 1.6 MB).
type event int64

func newEvent(sent time.Duration, o outcome) event { return event(int64(sent)<<2 | int64(o)) }

func (e event) sent() time.Duration { return time.Duration(e >> 2) }
func (e event) outcome() outcome    { return outcome(e & 3) }

// mergeLogs joins every connection's log, sorted by send time.
func mergeLogs(all []connStats) []event {
	n := 0
	for _, s := range all {
		n += len(s.log)
	}
	log := make([]event, 0, n)
	for _, s := range all {
		log = append(log, s.log...)
	}
	slices.Sort(log)
	return log
}

// WindowCounts is what became of the votes sent in a time window.
type WindowCounts struct {
	Accepted int `json:"accepted"` // 2xx
	Failed   int `json:"failed"`   // 5xx or transport error: outcome unknown
	Rejected int `json:"rejected"` // 4xx
}

// Between counts the votes sent at or after from and before to, by outcome:
// how the service answered during a fault, or after a recovery.
func (r Report) Between(from, to time.Time) WindowCounts {
	var w WindowCounts
	lo, hi := from.Sub(r.Started), to.Sub(r.Started)
	i := sort.Search(len(r.log), func(i int) bool { return r.log[i].sent() >= lo })
	for _, e := range r.log[i:] {
		if e.sent() >= hi {
			break
		}
		switch e.outcome() {
		case accepted:
			w.Accepted++
		case failed:
			w.Failed++
		case rejected:
			w.Rejected++
		}
	}
	return w
}
