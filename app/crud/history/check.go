package history

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// DefaultTimeout bounds a check given no timeout.
const DefaultTimeout = time.Minute

// Verdict is what a check concluded.
type Verdict string

const (
	Linearizable    Verdict = "linearizable"
	NotLinearizable Verdict = "not linearizable"
	// Unknown: the check ran out of time before it found an answer for
	// some key, and found no violation elsewhere. Not a pass.
	Unknown Verdict = "unknown"
)

// Options for Check.
type Options struct {
	// Timeout bounds the whole check, every key's (default DefaultTimeout);
	// writing the visualization has the same bound again.
	Timeout time.Duration
	// VisualizePath, if set, is where porcupine's HTML visualization is
	// written: of the non-linearizable keys if there are any, else of every
	// key.
	VisualizePath string
}

// Result is a check's outcome. Err says whether it passed.
type Result struct {
	Verdict Verdict `json:"verdict"`
	// Key is the first non-linearizable key, in key order; Illegal are all
	// of them, and Witness what was seen on Key that no order explains,
	// when it is a simple case (a stale or invented read).
	Key     string   `json:"key,omitempty"`
	Illegal []string `json:"illegal,omitempty"`
	Witness string   `json:"witness,omitempty"`
	// TimedOut are the keys whose check did not end in time.
	TimedOut []string `json:"timed_out,omitempty"`

	Keys    int           `json:"keys"`    // keys checked
	Ops     int           `json:"ops"`     // operations checked
	Pending int           `json:"pending"` // of them, unknown: allowed to have happened or not
	Elapsed time.Duration `json:"elapsed"`
	Timeout time.Duration `json:"timeout"`

	Visualization string `json:"visualization,omitempty"` // the file written
	VisualizeErr  string `json:"visualize_error,omitempty"`
}

// Check checks ops for linearizability against Model, each key on its own
// and in parallel, within opts.Timeout.
func Check(ops []Op, opts Options) Result {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	start := time.Now()
	deadline := start.Add(opts.Timeout)
	model := Model()
	pops := Operations(ops)
	parts := model.Partition(pops)
	res := Result{Keys: len(parts), Ops: len(pops), Timeout: opts.Timeout}
	for _, op := range pops {
		if op.Output.(output).pending {
			res.Pending++
		}
	}

	verdicts := make([]porcupine.CheckResult, len(parts))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), max(len(parts), 1)) {
		wg.Go(func() {
			for i := range next {
				left := time.Until(deadline)
				if left <= 0 {
					// porcupine takes 0 for no limit: never pass it that.
					verdicts[i] = porcupine.Unknown
					continue
				}
				verdicts[i] = porcupine.CheckOperationsTimeout(model, parts[i], left)
			}
		})
	}
	for i := range parts {
		next <- i
	}
	close(next)
	wg.Wait()

	var illegal [][]porcupine.Operation
	for i, v := range verdicts {
		key := parts[i][0].Input.(input).key
		switch v {
		case porcupine.Illegal:
			res.Illegal = append(res.Illegal, key)
			illegal = append(illegal, parts[i])
		case porcupine.Unknown:
			res.TimedOut = append(res.TimedOut, key)
		}
	}
	switch {
	case len(res.Illegal) > 0:
		res.Verdict, res.Key = NotLinearizable, res.Illegal[0]
		res.Witness = witness(ops, res.Key)
	case len(res.TimedOut) > 0:
		res.Verdict = Unknown
	default:
		res.Verdict = Linearizable
	}
	res.Elapsed = time.Since(start)

	if opts.VisualizePath != "" {
		show := pops
		if len(illegal) > 0 {
			show = nil
			for _, p := range illegal {
				show = append(show, p...)
			}
		}
		_, info := porcupine.CheckOperationsVerbose(model, show, opts.Timeout)
		if err := porcupine.VisualizePath(model, info, opts.VisualizePath); err != nil {
			res.VisualizeErr = err.Error()
		} else {
			res.Visualization = opts.VisualizePath
		}
	}
	return res
}

// ErrUnknown is what Result.Err wraps when the check ran out of time.
var ErrUnknown = errors.New("linearizability unknown")

// Err is nil only for a linearizable history: a violation, or a check that
// ran out of time, is an error that says so.
func (r Result) Err() error {
	var see string
	switch {
	case r.Visualization != "":
		see = "; porcupine's visualization is in " + r.Visualization
	case r.VisualizeErr != "":
		see = "; writing the visualization failed: " + r.VisualizeErr
	}
	switch r.Verdict {
	case Linearizable:
		return nil
	case NotLinearizable:
		msg := fmt.Sprintf("key %s is not linearizable", r.Key)
		if len(r.Illegal) > 1 {
			msg = fmt.Sprintf("%d of %d keys are not linearizable (%s), the first %s",
				len(r.Illegal), r.Keys, listKeys(r.Illegal), r.Key)
		}
		if r.Witness != "" {
			msg += ": " + r.Witness
		}
		return fmt.Errorf("%s (%d operations checked, %d of them unknown)%s", msg, r.Ops, r.Pending, see)
	case Unknown:
		return fmt.Errorf("%w: the check timed out after %s on %d of %d keys (%s), not a pass; %d operations, %d of them unknown%s",
			ErrUnknown, r.Timeout, len(r.TimedOut), r.Keys, listKeys(r.TimedOut), r.Ops, r.Pending, see)
	}
	return fmt.Errorf("no check was run (verdict %q)", r.Verdict)
}

func listKeys(keys []string) string {
	const most = 5
	if len(keys) <= most {
		return strings.Join(keys, ", ")
	}
	return strings.Join(keys[:most], ", ") + fmt.Sprintf(" and %d more", len(keys)-most)
}

// witness looks for a plain reason why key's operations are not
// linearizable: a get that returned a value no put wrote, one that returned
// a value overwritten before it began, a version other than its put's, or
// not found after an acknowledged put with no delete since, a put's
// version given again. "" if none of
// these is the reason.
func witness(ops []Op, key string) string {
	var mine []Op
	for _, op := range ops {
		if op.Key == key && op.Outcome() != Refused {
			mine = append(mine, op)
		}
	}
	for _, g := range mine {
		if g.Kind != Get || g.Outcome() != Done {
			continue
		}
		if s := staleRead(mine, g); s != "" {
			return s
		}
	}
	return versionReused(mine)
}

// versionReused finds two puts that returned the same version, or a put
// that returned a version below one that an earlier put had returned, with
// no delete that may have come in between.
func versionReused(ops []Op) string {
	for _, p := range ops {
		if p.Kind != Put || p.Outcome() != Done {
			continue
		}
	next:
		for _, q := range ops {
			if q.Kind != Put || q.Outcome() != Done || q.Invoke < p.Invoke || q == p ||
				q.Out.Version > p.Out.Version || q.Out.Version < p.Out.Version && q.Invoke <= p.Return {
				continue
			}
			for _, d := range ops {
				if d.Kind == Delete && (d.Outcome() == Pending || d.Return > p.Invoke) && d.Invoke < max(p.Return, q.Return) {
					continue next
				}
			}
			return fmt.Sprintf("put %q at %s returned v%d, though put %q, invoked before it at %s, returned v%d",
				q.Value, at(q.Invoke), q.Out.Version, p.Value, at(p.Invoke), p.Out.Version)
		}
	}
	return ""
}

func staleRead(ops []Op, g Op) string {
	end := func(op Op) time.Duration { // when op surely took effect, if it did
		if op.Outcome() == Pending {
			return 1<<63 - 1
		}
		return op.Return
	}
	doneBefore := func(w Op, after time.Duration) bool { // w took effect after `after` and before g began
		return w.Outcome() == Done && w.Invoke > after && w.Return < g.Invoke
	}
	if g.Out.Status == 404 {
		for _, p := range ops {
			if p.Kind != Put || p.Outcome() != Done || p.Return >= g.Invoke {
				continue
			}
			deleted := false
			for _, d := range ops {
				deleted = deleted || d.Kind == Delete && end(d) > p.Invoke && d.Invoke < g.Return
			}
			if !deleted {
				return fmt.Sprintf("get at %s found nothing, though put %q was acknowledged at %s (v%d) and no delete was sent since",
					at(g.Invoke), p.Value, at(p.Return), p.Out.Version)
			}
		}
		return ""
	}
	var writers []Op
	latest := time.Duration(-1)
	for _, p := range ops {
		if p.Kind == Put && p.Value == g.Out.Value && p.Invoke < g.Return {
			writers = append(writers, p)
			latest = max(latest, end(p))
		}
	}
	if len(writers) == 0 {
		return fmt.Sprintf("get at %s returned %q v%d, which no put sent before it returned", at(g.Invoke), g.Out.Value, g.Out.Version)
	}
	for _, w := range ops {
		if w.Kind != Get && !(w.Kind == Put && w.Value == g.Out.Value) && doneBefore(w, latest) {
			what := fmt.Sprintf("put %q (v%d)", w.Value, w.Out.Version)
			if w.Kind == Delete {
				what = "delete"
			}
			return fmt.Sprintf("get at %s returned %q v%d, though %s was acknowledged at %s, after that value's put returned (%s) and before the get began",
				at(g.Invoke), g.Out.Value, g.Out.Version, what, at(w.Return), at(latest))
		}
	}
	if len(writers) == 1 && writers[0].Outcome() == Done && writers[0].Out.Version != g.Out.Version {
		return fmt.Sprintf("get at %s returned %q v%d, but the put of that value returned v%d",
			at(g.Invoke), g.Out.Value, g.Out.Version, writers[0].Out.Version)
	}
	return ""
}

// at formats a time on the history's clock.
func at(d time.Duration) string { return "+" + d.Round(time.Microsecond).String() }
