// Package labtest brings labs up for Go tests, the way every app's lab test
// wants them: fresh, with up's progress in the test's log, and removed when
// the test ends, passes, fails or panics.
package labtest

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/swarmlab/swarmlab/lab"
	"github.com/swarmlab/swarmlab/lab/topology"
)

// Up brings topo up as the lab called name and removes it when the test
// ends. A lab of that name left by a killed run is removed first.
func Up(t testing.TB, topo *topology.Topology, name string) *lab.Lab {
	t.Helper()
	ctx := context.Background()
	lab.Down(ctx, name) // a lab left by a killed run
	l, err := lab.Up(ctx, topo, lab.Options{Name: name, Ephemeral: true, Out: Writer(t)})
	if err != nil {
		t.Fatalf("up %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := l.Down(context.Background()); err != nil {
			t.Errorf("down %s: %v", name, err)
		}
	})
	t.Logf("lab %s up in %s", name, l.BringUp.Total)
	return l
}

// Writer sends what is written to it to the test's log, a line at a time.
func Writer(t testing.TB) io.Writer { return logWriter{t} }

type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
