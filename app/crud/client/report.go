package client

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/swarmlab/swarmlab/app/crud/history"
)

// Report is a stopped run: what was sent, what each check found. Verdict
// says whether it passed; the spec asserts on the fields and on Between.
type Report struct {
	Started     time.Time `json:"started"`
	SendSeconds float64   `json:"send_seconds"`
	Sessions    int       `json:"sessions"`
	Keys        int       `json:"keys"`
	KeyPrefix   string    `json:"key_prefix"`

	// Every request, item operations, logins, probes and the read-back.
	Requests     int            `json:"requests"`
	OK           int            `json:"ok"`
	Failed       int            `json:"failed"`       // transport error, timeout, 5xx, or slower than SlowAfter
	Rejected     int            `json:"rejected"`     // another 4xx than the call allows
	Unauthorized int            `json:"unauthorized"` // 401: a lost session
	Errors       map[string]int `json:"errors,omitempty"`

	// The sessions: the load's, then the read-back's own (the last one).
	SessionReports []SessionReport `json:"session_reports"`
	LostSessions   int             `json:"lost_sessions"`  // sessions that got a 401
	CounterResets  int             `json:"counter_resets"` // times a requests counter went back
	SessionSwaps   int             `json:"session_swaps"`  // times GET /session named another session
	// Malformed counts answers that do not say what the API promises;
	// MalformedExamples shows a few.
	Malformed         int      `json:"malformed"`
	MalformedExamples []string `json:"malformed_examples,omitempty"`

	Ops             int               `json:"ops"` // item operations in the history
	Final           FinalCheck        `json:"final"`
	Linearizability history.Result    `json:"linearizability"`
	Bench           history.Benchmark `json:"bench"`
	History         []history.Op      `json:"-"`
	Result          string            `json:"verdict"` // "pass", or what Verdict says
	log             []event           // every request, by send time
}

// SessionReport is one session's life.
type SessionReport struct {
	Client       int      `json:"client"` // its id in the history
	IDs          []string `json:"ids"`    // the session ids it had, one per login
	Logins       int      `json:"logins"`
	Probes       int      `json:"probes"`   // GET /session answered
	Requests     int64    `json:"requests"` // its counter, as last read
	Unauthorized int      `json:"unauthorized"`
	Resets       int      `json:"resets"`
	Swaps        int      `json:"swaps"`
	Events       []string `json:"events,omitempty"` // what went wrong, the first few of each kind
}

func (r *Report) addSession(s *session) {
	r.SessionReports = append(r.SessionReports, SessionReport{
		Client: s.client, IDs: s.ids, Logins: s.logins, Probes: s.probes, Requests: s.count,
		Unauthorized: s.unauthorized, Resets: s.resets, Swaps: s.swaps, Events: s.events,
	})
	if s.unauthorized > 0 {
		r.LostSessions++
	}
	r.CounterResets += s.resets
	r.SessionSwaps += s.swaps
	r.Malformed += s.malformed
	if len(r.MalformedExamples) < maxEvents {
		r.MalformedExamples = append(r.MalformedExamples, s.malformedEx...)
	}
	r.log = append(r.log, s.log...) // sorted by the caller, once every session is in
	w := countEvents(s.log)
	r.Requests += w.Sent
	r.OK += w.OK
	r.Failed += w.Failed
	r.Rejected += w.Rejected
	r.Unauthorized += w.Unauthorized
	if r.Errors == nil {
		r.Errors = map[string]int{}
	}
	for k, n := range w.Errors {
		r.Errors[k] += n
	}
}

// class is how a request ended.
type class uint8

const (
	succeeded    class = iota
	failed             // transport error, timeout, 5xx, slow
	rejected           // a 4xx the call does not allow
	unauthorized       // 401
)

// event is one request, on the run's clock.
type event struct {
	sent, took time.Duration
	class      class
	why        string // "GET /items/{id}: HTTP 502", for the failures
}

// WindowCounts is what became of the requests sent in a time window.
type WindowCounts struct {
	Sent         int            `json:"sent"`
	OK           int            `json:"ok"`
	Failed       int            `json:"failed"`
	Rejected     int            `json:"rejected"`
	Unauthorized int            `json:"unauthorized"`
	Errors       map[string]int `json:"errors,omitempty"` // failures by request and kind
}

// Failures are the requests that did not get the answer they should have.
func (w WindowCounts) Failures() int { return w.Failed + w.Rejected + w.Unauthorized }

func countEvents(evs []event) WindowCounts {
	w := WindowCounts{Errors: map[string]int{}}
	for _, e := range evs {
		w.Sent++
		switch e.class {
		case succeeded:
			w.OK++
		case failed:
			w.Failed++
		case rejected:
			w.Rejected++
		case unauthorized:
			w.Unauthorized++
		}
		if e.why != "" {
			w.Errors[e.why]++
		}
	}
	return w
}

// Between counts the requests sent at or after from and before to: how the
// app answered during a fault, or after it recovered.
func (r Report) Between(from, to time.Time) WindowCounts {
	lo, hi := from.Sub(r.Started), to.Sub(r.Started)
	i := sort.Search(len(r.log), func(i int) bool { return r.log[i].sent >= lo })
	j := sort.Search(len(r.log), func(i int) bool { return r.log[i].sent >= hi })
	return countEvents(r.log[i:max(i, j)])
}

// FailedBetween is nil if at most allowed requests sent between from and
// to failed, and otherwise says how many did, and how.
func (r Report) FailedBetween(from, to time.Time, allowed int) error {
	w := r.Between(from, to)
	if w.Failures() <= allowed {
		return nil
	}
	return fmt.Errorf("%d of %d requests sent from %s to %s failed, over the %d allowed: %s",
		w.Failures(), w.Sent, at(from.Sub(r.Started)), at(to.Sub(r.Started)), allowed, kinds(w.Errors))
}

// kinds lists failure counts, the most frequent first.
func kinds(errs map[string]int) string {
	ks := slices.Collect(maps.Keys(errs))
	sort.Slice(ks, func(i, j int) bool {
		if errs[ks[i]] != errs[ks[j]] {
			return errs[ks[i]] > errs[ks[j]]
		}
		return ks[i] < ks[j]
	})
	var parts []string
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("%d× %s", errs[k], k))
	}
	return strings.Join(parts, ", ")
}

// SessionErr is nil if no session was lost, none's counter went back, and
// GET /session always named the session logged in.
func (r Report) SessionErr() error {
	var bad []string
	if r.LostSessions > 0 {
		bad = append(bad, fmt.Sprintf("%d of %d sessions were lost (%d requests answered 401)", r.LostSessions, len(r.SessionReports), r.Unauthorized))
	}
	if r.CounterResets > 0 {
		bad = append(bad, fmt.Sprintf("a session's requests counter went back %d times", r.CounterResets))
	}
	if r.SessionSwaps > 0 {
		bad = append(bad, fmt.Sprintf("GET /session named another session than the one logged in %d times", r.SessionSwaps))
	}
	if len(bad) == 0 {
		return nil
	}
	var seen []string
	for _, s := range r.SessionReports {
		seen = append(seen, s.Events...)
	}
	if len(seen) > 2*maxEvents {
		seen = seen[:2*maxEvents]
	}
	return fmt.Errorf("%s: %s", strings.Join(bad, "; "), strings.Join(seen, "; "))
}

// DurabilityErr is nil if every key read back holds its latest
// acknowledged write (or a write whose outcome is unknown), and no key the
// run never wrote is listed.
func (r Report) DurabilityErr() error {
	f := r.Final
	var bad []string
	if len(f.Lost) > 0 {
		bad = append(bad, fmt.Sprintf("%d of %d keys lost their latest acknowledged write: %s", len(f.Lost), f.Checked, findings(f.Lost)))
	}
	if len(f.Unexpected) > 0 {
		bad = append(bad, fmt.Sprintf("%d unexpected: %s", len(f.Unexpected), findings(f.Unexpected)))
	}
	if len(bad) == 0 {
		return nil
	}
	return errors.New(strings.Join(bad, "; "))
}

func findings(fs []Finding) string {
	var s []string
	for _, f := range fs[:min(len(fs), maxEvents)] {
		s = append(s, f.String())
	}
	if len(fs) > maxEvents {
		s = append(s, fmt.Sprintf("and %d more", len(fs)-maxEvents))
	}
	return strings.Join(s, "; ")
}

// Verdict is the run's one check: nil if the history is linearizable, the
// read-back finds every acknowledged write, no session was lost or reset,
// every answer was well formed, and enough was proven. Otherwise it says
// what is wrong; a run that found nothing wrong but proved too little (no
// write acknowledged, no read, a key not read back, a linearizability check
// that ran out of time) is an error wrapping ErrInconclusive.
func (r Report) Verdict() error {
	var bad []string
	for _, err := range []error{r.SessionErr(), r.DurabilityErr()} {
		if err != nil {
			bad = append(bad, err.Error())
		}
	}
	if r.Linearizability.Verdict == history.NotLinearizable {
		bad = append(bad, r.Linearizability.Err().Error())
	}
	if r.Malformed > 0 {
		bad = append(bad, fmt.Sprintf("%d answers not as the API says, e.g. %s", r.Malformed, strings.Join(r.MalformedExamples[:min(3, len(r.MalformedExamples))], "; ")))
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}

	var why []string
	if r.Bench.Writes.Done == 0 {
		why = append(why, "no write was acknowledged")
	}
	if r.Bench.Reads.Done == 0 && r.Final.Checked == 0 {
		why = append(why, "no read was answered")
	}
	if len(r.Final.Unread) > 0 {
		why = append(why, fmt.Sprintf("%d of %d keys could not be read back", len(r.Final.Unread), r.Final.Keys))
	}
	if err := r.Linearizability.Err(); err != nil {
		why = append(why, err.Error())
	}
	if len(why) > 0 {
		return fmt.Errorf("%w: %s", ErrInconclusive, strings.Join(why, "; "))
	}
	return nil
}
