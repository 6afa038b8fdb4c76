package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/swarmlab/swarmlab/lab"
	"github.com/swarmlab/swarmlab/lab/provider/fake"
)

func TestLogsUsage(t *testing.T) {
	t.Setenv(LabEnv, "x")
	for _, args := range [][]string{
		{"logs"}, {"logs", "a", "b", "c"}, {"logs", "web", "--since", "yesterday"}, {"logs", "--prune", "a", "b"},
		{"export"}, {"export", "stats", "dir"}, {"export", "logs"}, {"export", "logs", "a", "b", "c"},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", args, code, errb.String())
		}
	}
}

func TestCheckSince(t *testing.T) {
	for _, ok := range []string{"", "10m", "1h30m", "2024-05-01T10:00:00Z", "2024-05-01T10:00:00.5+02:00", "2024-05-01T10:00:00", "2024-05-01", "1714550400", "1714550400.5"} {
		if err := checkSince(ok); err != nil {
			t.Errorf("checkSince(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"yesterday", "10 m", "2024-13-01"} {
		if err := checkSince(bad); err == nil {
			t.Errorf("checkSince(%q) worked", bad)
		}
	}
}

// On an engine with no lab and no kept logs: logs says so, --prune has
// nothing to remove, and a lab named that has no logs says which have.
func TestLogsOnAnEngineWithNothing(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	t.Setenv(LabEnv, "")
	host := fake.NewEngine()
	defer host.Close()
	t.Setenv(lab.HostEnv, host.Addr())

	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"logs", "web"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "no lab exists and no lab's logs are kept") {
		t.Errorf("logs web: exit %d, stderr %q", code, errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := run(context.Background(), []string{"logs", "--prune"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "No kept logs to remove") {
		t.Errorf("logs --prune: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := run(context.Background(), []string{"logs", "gone", "web"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "lab gone: no logs kept") {
		t.Errorf("logs gone web: exit %d, stderr %q", code, errb.String())
	}
}
