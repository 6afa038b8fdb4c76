package lab

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/swarmlab/swarmlab/lab/provider"
)

// leftoverProvider says what it was told is left; any other call panics.
type leftoverProvider struct {
	provider.Provider
	left map[string][]string
}

func (p *leftoverProvider) Name() string { return "fake" }

func (p *leftoverProvider) Leftovers(_ context.Context, lab string) ([]string, error) {
	return p.left[lab], nil
}

// mute is a provider that cannot say what is left.
type mute struct{ provider.Provider }

func (mute) Name() string { return "mute" }

func TestLeftoversAskTheProviderAndTheStateDir(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	p := &leftoverProvider{left: map[string][]string{"a": {"container swarmlab-a-m1 (running)"}}}
	ctx := context.Background()

	if left, err := (&Lab{name: "b", prov: p}).Leftovers(ctx); err != nil || len(left) != 0 {
		t.Errorf("lab b: %q, %v; want nothing", left, err)
	}
	left, err := (&Lab{name: "a", prov: p}).Leftovers(ctx)
	if err != nil || !slices.Equal(left, []string{"container swarmlab-a-m1 (running)"}) {
		t.Errorf("lab a: %q, %v", left, err)
	}

	// What the lab keeps on this machine is the lab's too.
	if err := os.MkdirAll(StateDir("b"), 0o700); err != nil {
		t.Fatal(err)
	}
	left, err = (&Lab{name: "b", prov: p}).Leftovers(ctx)
	if err != nil || len(left) != 1 || left[0] != "state directory "+StateDir("b") {
		t.Errorf("lab b with a state directory: %q, %v", left, err)
	}

	// A provider that cannot tell is not taken for one that found nothing.
	if _, err := (&Lab{name: "a", prov: mute{}}).Leftovers(ctx); err == nil || !strings.Contains(err.Error(), "mute provider cannot say") {
		t.Errorf("a provider without Leftovers: %v, want an error", err)
	}
}
