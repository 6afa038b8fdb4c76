package lab

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// With no engine at the address, Host says so, names the way out, and
// wraps ErrNoEngine so callers know that retrying will not help.
func TestHostWithoutEngine(t *testing.T) {
	t.Setenv(HostEnv, "unix://"+filepath.Join(t.TempDir(), "docker.sock"))
	c, err := Host(context.Background())
	if err == nil {
		c.Close()
		t.Fatal("Host answered without an engine")
	}
	if !errors.Is(err, ErrNoEngine) {
		t.Fatalf("error does not wrap ErrNoEngine: %v", err)
	}
	if !strings.Contains(err.Error(), "scripts/bootstrap") {
		t.Fatalf("error does not say how to start an engine: %v", err)
	}
}
