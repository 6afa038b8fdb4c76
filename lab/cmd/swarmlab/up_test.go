package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/swarmlab/swarmlab/lab"
	"github.com/swarmlab/swarmlab/lab/provider/fake"
)

// up as a whole, on provider/fake and a fake engine for this machine's: no
// Docker. The fake nodes have no engine, so the bring-up fails at
// preflight; up reports each step, the error, and leaves nothing.
func TestUpOnTheFakeProvider(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	t.Setenv("SWARMLAB_TOPOLOGIES", "../../../topologies")
	host := fake.NewEngine()
	defer host.Close()
	t.Setenv(lab.HostEnv, host.Addr())
	p := fake.New()
	was := labOptions
	t.Cleanup(func() { labOptions = was })
	labOptions = func(o lab.Options) lab.Options {
		c, err := host.Client()
		if err != nil {
			t.Fatal(err)
		}
		o.Provider, o.Host = p, c
		return o
	}
	for _, keep := range []bool{false, true} {
		p.Deleted = nil
		var out, errb bytes.Buffer
		args := []string{"up", "swarm-ha", "--name", "cli-fake"}
		if keep {
			args = append(args, "--keep-on-failure")
		}
		code := run(context.Background(), args, &out, &errb)
		if code != 1 {
			t.Fatalf("keep %v: exit %d, want 1; stderr %q", keep, code, errb.String())
		}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if lines[0] != "Creating lab cli-fake from "+filepath.Join("../../../topologies", "swarm-ha.yaml") {
			t.Errorf("first line %q", lines[0])
		}
		var steps []string
		for _, l := range lines[1:] {
			if f := strings.Fields(l); len(f) > 2 && (f[0] == "✓" || f[0] == "✗") {
				steps = append(steps, f[0]+" "+strings.Join(f[1:len(f)-1], " "))
			}
		}
		want := []string{"✓ Checking images", "✓ Starting 5 nodes and the registry", "✗ Preflight and registry push"}
		if !slices.Equal(steps, want) {
			t.Errorf("keep %v: steps %q, want %q\n%s", keep, steps, want, out.String())
		}
		if !strings.HasPrefix(errb.String(), "swarmlab up: preflight and registry push: ") {
			t.Errorf("keep %v: stderr %q", keep, errb.String())
		}
		_, err := os.Stat(lab.StateDir("cli-fake"))
		switch {
		case keep && (len(p.Deleted) != 0 || err != nil):
			t.Errorf("keep: deleted %v, state %v; want the lab and its record kept", p.Deleted, err)
		case !keep && (len(p.Deleted) != 1 || !strings.HasPrefix(p.Deleted[0], "cli-fake/") || err == nil):
			t.Errorf("deleted %v, state %v; want this run removed, and its state", p.Deleted, err)
		}
	}
}
