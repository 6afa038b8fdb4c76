package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmlab/swarmlab/lab/topology"
)

// fakeEngine is just enough of a Docker engine for Up to start: it answers
// pings, holds every image inspect until the caller gives up on it (so a
// bring-up is always cut short in its first step), and lists nothing for
// the cleanup. It records the cleanup's list calls.
type fakeEngine struct {
	*httptest.Server
	inspecting chan struct{} // closed at the first image inspect
	once       sync.Once

	mu    sync.Mutex
	lists []string // "path?filters" of each list call, in order
	// cancelledLists counts list calls whose request was cancelled.
	cancelledLists int
}

func newFakeEngine(t *testing.T) *fakeEngine {
	f := &fakeEngine{inspecting: make(chan struct{})}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeEngine) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Api-Version", "1.47")
	w.Header().Set("Content-Type", "application/json")
	path := r.URL.Path
	switch {
	case strings.HasSuffix(path, "/_ping"):
		w.Write([]byte("OK"))
	case strings.Contains(path, "/images/") && strings.HasSuffix(path, "/json"):
		f.once.Do(func() { close(f.inspecting) })
		<-r.Context().Done() // the bring-up gives up on it
	case strings.HasSuffix(path, "/containers/json"), strings.HasSuffix(path, "/networks"), strings.HasSuffix(path, "/volumes"):
		f.mu.Lock()
		f.lists = append(f.lists, path+"?"+r.URL.Query().Get("filters"))
		if r.Context().Err() != nil {
			f.cancelledLists++
		}
		f.mu.Unlock()
		if strings.HasSuffix(path, "/volumes") {
			w.Write([]byte(`{"Volumes":[]}`))
		} else {
			w.Write([]byte(`[]`))
		}
	default:
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"message":"not in the fake engine"}`))
	}
}

func (f *fakeEngine) listCalls() ([]string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.lists...), f.cancelledLists
}

func fakeTopology(t *testing.T) *topology.Topology {
	t.Helper()
	topo, _, err := topology.LoadFile("../topologies/swarm-3.yaml")
	if err != nil {
		t.Fatal(err)
	}
	topo.Stacks = nil // nothing to build: the test is about the steps
	return topo
}

// upCancelledInFirstStep runs Up against a fake engine and ends ctx (with
// end) as soon as the first step is under way.
func upCancelledInFirstStep(t *testing.T, opts Options, end func(context.Context) (context.Context, func())) (*fakeEngine, *Lab, error, string, time.Duration) {
	t.Helper()
	f := newFakeEngine(t)
	t.Setenv(HostEnv, "tcp://"+strings.TrimPrefix(f.URL, "http://"))
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // where lab state would go
	ctx, stop := end(context.Background())
	defer stop()
	var out bytes.Buffer
	opts.Out = &out
	type result struct {
		l   *Lab
		err error
	}
	res := make(chan result, 1)
	go func() {
		l, err := Up(ctx, fakeTopology(t), opts)
		res <- result{l, err}
	}()
	select {
	case <-f.inspecting:
	case r := <-res:
		t.Fatalf("Up returned before its first step: %v\n%s", r.err, out.String())
	case <-time.After(20 * time.Second):
		t.Fatal("Up never reached its first step")
	}
	stop()
	start := time.Now()
	select {
	case r := <-res:
		return f, r.l, r.err, out.String(), time.Since(start)
	case <-time.After(20 * time.Second):
		t.Fatalf("Up did not return after its ctx was cancelled; its output:\n%s", out.String())
	}
	panic("unreachable")
}

// A cancelled Up returns, with an error that says it was cancelled, after
// removing what this run made, with a context the cancellation does not
// reach; and it never blocks nor exits the process.
func TestCancelledUpCleansUpAndReturns(t *testing.T) {
	for _, keep := range []bool{false, true} {
		f, l, err, out, took := upCancelledInFirstStep(t, Options{Name: "cancel-test", KeepOnFailure: keep}, func(ctx context.Context) (context.Context, func()) {
			ctx, cancel := context.WithCancelCause(ctx)
			return ctx, func() { cancel(errors.New("interrupted by the test")) }
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("keep %v: Up's error %v does not wrap context.Canceled", keep, err)
		}
		if !strings.HasPrefix(err.Error(), "checking images: ") {
			t.Errorf("keep %v: error %q does not name the step it cut short", keep, err)
		}
		if took > 10*time.Second {
			t.Errorf("keep %v: Up took %v to return after the cancel", keep, took)
		}
		if l == nil || l.runID == "" {
			t.Fatalf("keep %v: Up returned no lab with its run id", keep)
		}
		lists, cancelled := f.listCalls()
		// The cleanup lists what carries this run's label (to remove it),
		// even with --keep-on-failure: a cancel is not a failure.
		var ofRun int
		for _, c := range lists {
			if strings.Contains(c, "io.swarmlab.run="+l.runID) && strings.Contains(c, "cancel-test") {
				ofRun++
			}
		}
		if ofRun == 0 {
			t.Errorf("keep %v: no cleanup listed what run %s made; list calls: %q\n%s", keep, l.runID, lists, out)
		}
		if cancelled > 0 {
			t.Errorf("keep %v: %d of the cleanup's calls ran on the cancelled context", keep, cancelled)
		}
		if !strings.Contains(out, "bring-up of lab cancel-test cancelled (interrupted by the test): removing what it made") {
			t.Errorf("keep %v: output does not say the cancelled bring-up is being removed:\n%s", keep, out)
		}
		if strings.Contains(out, "kept for inspection") {
			t.Errorf("keep %v: a cancelled bring-up was kept:\n%s", keep, out)
		}
	}
}

// A bring-up that runs out of time has failed: --keep-on-failure keeps it,
// and without it, it is removed.
func TestUpPastItsDeadlineIsAFailure(t *testing.T) {
	for _, keep := range []bool{false, true} {
		f, _, err, out, _ := upCancelledInFirstStep(t, Options{Name: "deadline-test", KeepOnFailure: keep}, func(ctx context.Context) (context.Context, func()) {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			// The first step is under way: let the deadline end it.
			return ctx, func() { <-ctx.Done(); cancel() }
		})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("keep %v: Up's error %v does not wrap context.DeadlineExceeded", keep, err)
		}
		lists, _ := f.listCalls()
		kept := strings.Contains(out, "lab deadline-test kept for inspection (--keep-on-failure); remove it with: swarmlab down deadline-test")
		switch {
		case keep && (!kept || len(lists) > 0):
			t.Errorf("keep: want the lab kept and nothing removed; list calls %q, output:\n%s", lists, out)
		case !keep && (kept || len(lists) == 0):
			t.Errorf("no keep: want the lab removed; list calls %q, output:\n%s", lists, out)
		}
	}
}

// A step cut short may fail with an error of its own; Up's error still
// says that its ctx ended.
func TestWithCtxErr(t *testing.T) {
	own := errors.New("forming the swarm: no leader yet")
	ctx, cancel := context.WithCancel(context.Background())
	if got := withCtxErr(ctx, own); got != own {
		t.Errorf("a live ctx changed the error to %v", got)
	}
	cancel()
	got := withCtxErr(ctx, own)
	if !errors.Is(got, context.Canceled) || !errors.Is(got, own) || got.Error() != "forming the swarm: no leader yet (context canceled)" {
		t.Errorf("withCtxErr = %v, want the step's error wrapping context.Canceled", got)
	}
	if wrapped := fmt.Errorf("checking images: %w", context.Canceled); withCtxErr(ctx, wrapped) != wrapped {
		t.Error("an error that already wraps ctx.Err() was wrapped again")
	}
	if withCtxErr(ctx, nil) != nil {
		t.Error("a nil error became one")
	}
}
