// Package labtest brings labs up for Go tests, the way every app's lab test
// wants them: fresh, with up's progress in the test's log, and removed when
// the test ends, passes, fails or panics, or when SIGINT or SIGTERM ends the
// test binary.
//
// The lab library handles no signals: an Up whose context is cancelled
// removes what it made and returns. The process policy of a test binary is
// here: the first SIGINT or SIGTERM cancels Context (so bring-ups in flight
// stop and clean up), runs the OnInterrupt hooks, removes every lab
// brought up through this package that the tests have not removed yet, and
// exits as the signal would have (130, 143).
package labtest

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/swarmlab/swarmlab/lab"
	"github.com/swarmlab/swarmlab/lab/topology"
)

// Up brings topo up as the lab called name and removes it when the test
// ends. A lab of that name left by a killed run is removed first.
func Up(t testing.TB, topo *topology.Topology, name string) *lab.Lab {
	t.Helper()
	lab.Down(context.Background(), name) // a lab left by a killed run
	l, err := UpFor(context.Background(), topo, lab.Options{Name: name, Out: Writer(t)})
	if err != nil {
		t.Fatalf("up %s: %v", name, err)
	}
	release := RemoveOnInterrupt(l)
	t.Cleanup(func() {
		defer release()
		if err := l.Down(context.Background()); err != nil {
			t.Errorf("down %s: %v", name, err)
		}
	})
	t.Logf("lab %s up in %s", name, l.BringUp().Total)
	return l
}

// UpFor is lab.Up for tests that manage the lab themselves, with a ctx
// that a signal to the test binary cancels too: the bring-up then removes
// what it made, and UpFor does not return, for the process ends once every
// bring-up in flight has cleaned up. Pass the lab to RemoveOnInterrupt to
// have it removed on a later signal.
func UpFor(ctx context.Context, topo *topology.Topology, opts lab.Options) (*lab.Lab, error) {
	sig := Context()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer context.AfterFunc(sig, func() { cancel(context.Cause(sig)) })()
	interrupts.ups.Add(1)
	l, err := lab.Up(ctx, topo, opts)
	interrupts.ups.Done()
	if err != nil && sig.Err() != nil {
		select {} // the signal handler exits the process
	}
	return l, err
}

// interrupts is this test binary's signal handling.
var interrupts struct {
	once   sync.Once
	ctx    context.Context
	cancel context.CancelCauseFunc
	ups    sync.WaitGroup // bring-ups in flight

	mu      sync.Mutex
	next    int
	removes map[int]removal // labs up, and not removed yet
	hooks   []func(os.Signal)
}

type removal struct {
	name   string
	remove func(context.Context) error
}

// upWait bounds how long the handler waits for bring-ups in flight to
// clean up, and removeWait how long it spends removing the labs that are up.
const (
	upWait     = 3 * time.Minute
	removeWait = 2 * time.Minute
)

// hookTimeout bounds how long the OnInterrupt hooks may delay the removal.
var hookTimeout = 10 * time.Second

// OnInterrupt registers fn to run when SIGINT or SIGTERM ends the test
// binary, before the labs are removed: a suite uses it to write down what
// it measured so far. Hooks run in order, together bounded by 10 s, while
// the bring-ups in flight stop; fn must not start anything that needs the
// labs.
func OnInterrupt(fn func(os.Signal)) {
	Context()
	interrupts.mu.Lock()
	defer interrupts.mu.Unlock()
	interrupts.hooks = append(interrupts.hooks, fn)
}

func runHooks(s os.Signal) {
	interrupts.mu.Lock()
	fns := slices.Clone(interrupts.hooks)
	interrupts.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, fn := range fns {
			fn(s)
		}
	}()
	select {
	case <-done:
	case <-time.After(hookTimeout):
		fmt.Fprintf(os.Stderr, "labtest: the interrupt hooks did not end within %v\n", hookTimeout)
	}
}

// Context is cancelled by the first SIGINT or SIGTERM to the test binary;
// its cause names the signal. The handler is installed by the first call.
func Context() context.Context {
	interrupts.once.Do(func() {
		interrupts.ctx, interrupts.cancel = context.WithCancelCause(context.Background())
		interrupts.removes = map[int]removal{}
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
		go func() { onSignal(<-ch) }()
	})
	return interrupts.ctx
}

// RemoveOnInterrupt has l removed if a signal ends the test binary before
// release is called (call it once the test has removed l itself).
func RemoveOnInterrupt(l *lab.Lab) (release func()) {
	return removeOnInterrupt(l.Name(), l.Down)
}

func removeOnInterrupt(name string, remove func(context.Context) error) (release func()) {
	Context()
	interrupts.mu.Lock()
	defer interrupts.mu.Unlock()
	id := interrupts.next
	interrupts.next++
	interrupts.removes[id] = removal{name, remove}
	return func() {
		interrupts.mu.Lock()
		defer interrupts.mu.Unlock()
		delete(interrupts.removes, id)
	}
}

// onSignal stops the bring-ups in flight, lets them clean up, removes the
// labs that are up and exits as the signal would have.
func onSignal(s os.Signal) {
	name := s.String()
	switch s {
	case os.Interrupt:
		name = "SIGINT"
	case syscall.SIGTERM:
		name = "SIGTERM"
	}
	interrupts.cancel(fmt.Errorf("test binary interrupted by %s", name))
	runHooks(s)
	stopped := make(chan struct{})
	go func() { interrupts.ups.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(upWait):
		fmt.Fprintf(os.Stderr, "labtest: %s: a bring-up did not stop within %v\n", name, upWait)
	}
	interrupts.mu.Lock()
	removes := slices.Collect(maps.Values(interrupts.removes))
	interrupts.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), removeWait)
	defer cancel()
	for _, r := range removes {
		fmt.Fprintf(os.Stderr, "labtest: %s: removing lab %s\n", name, r.name)
		if err := r.remove(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "labtest: removing lab %s: %v\n", r.name, err)
		}
	}
	code := 1
	if sig, ok := s.(syscall.Signal); ok {
		code = 128 + int(sig)
	}
	os.Exit(code)
}

// Writer sends what is written to it to the test's log, a line at a time.
func Writer(t testing.TB) io.Writer { return logWriter{t} }

type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
