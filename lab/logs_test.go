package lab

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/swarmlab/swarmlab/lab/provider/fake"
)

type tarFile struct {
	name string
	typ  byte
	body string
}

func tarOf(t *testing.T, files ...tarFile) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Typeflag: f.typ, Mode: 0o644, Size: int64(len(f.body))}
		if f.typ != tar.TypeReg {
			hdr.Size = 0
			hdr.Linkname = "/etc/passwd"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if f.typ == tar.TypeReg {
			tw.Write([]byte(f.body))
		}
	}
	tw.Close()
	return b.Bytes()
}

func keptTar(t *testing.T) []byte {
	return tarOf(t,
		tarFile{"swarmlab/", tar.TypeDir, ""},
		tarFile{"swarmlab/nodes/m1/dockerd.log", tar.TypeReg, "2024-05-01T08:00:00.000000000Z stderr level=info\n"},
		tarFile{"swarmlab/nodes/m1/events.jsonl", tar.TypeReg, "{}\n"},
		tarFile{"swarmlab/tasks/app_web/app_web.1.t1@w1.log", tar.TypeReg, "2024-05-01T08:00:01.000000000Z stdout hi\n"},
		tarFile{"swarmlab/nodes/m1/link", tar.TypeSymlink, ""},
	)
}

func TestUntarLogs(t *testing.T) {
	dir := t.TempDir()
	n, err := untarLogs(bytes.NewReader(keptTar(t)), dir)
	if err != nil || n != 3 {
		t.Fatalf("untarLogs = %d, %v", n, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "tasks/app_web/app_web.1.t1@w1.log")); !strings.HasSuffix(string(b), "stdout hi\n") {
		t.Errorf("task log %q", b)
	}
	if _, err := os.Lstat(filepath.Join(dir, "nodes/m1/link")); err == nil {
		t.Error("a symlink was written")
	}
	outside := filepath.Join(filepath.Dir(dir), "evil")
	evil := tarOf(t, tarFile{"swarmlab/../evil", tar.TypeReg, "x"})
	if _, err := untarLogs(bytes.NewReader(evil), dir); err == nil || !strings.Contains(err.Error(), "leaves the directory") {
		t.Errorf("an entry out of the directory: %v", err)
	}
	if _, err := os.Stat(outside); err == nil {
		t.Error("an entry was written out of the directory")
	}
}

// keeping is the fake provider, keeping logs: CopyLogs gives a tar.
type keeping struct {
	*fake.Provider
	tar    []byte
	copied []string
}

func (k *keeping) KeptLogs(context.Context) ([]string, error) { return []string{"unit"}, nil }
func (k *keeping) ReadLogs(context.Context, string, []string, io.Writer, io.Writer) error {
	return nil
}
func (k *keeping) PruneLogs(context.Context, string) error { return nil }
func (k *keeping) CopyLogs(_ context.Context, lab string) (io.ReadCloser, error) {
	k.copied = append(k.copied, lab)
	if k.tar == nil {
		return nil, ErrNoLogs
	}
	return io.NopCloser(bytes.NewReader(k.tar)), nil
}

func labWithEngine(t *testing.T) *Lab {
	l, _, m1, _ := fakeLab()
	e := fake.NewEngine()
	t.Cleanup(e.Close)
	c, err := e.Client()
	if err != nil {
		t.Fatal(err)
	}
	m1.EngineClient = c
	return l
}

func TestExportLogsWritesTheKeptLogsAndTheSwarm(t *testing.T) {
	l := labWithEngine(t)
	k := &keeping{Provider: fake.New(), tar: keptTar(t)}
	l.prov = k
	dir := filepath.Join(t.TempDir(), "bundle")
	if err := l.ExportLogs(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(k.copied, []string{"unit"}) {
		t.Errorf("copied the logs of %v", k.copied)
	}
	for _, f := range []string{"README.txt", "machines.json", "swarm/nodes.json", "swarm/services.json", "swarm/tasks.json",
		"nodes/m1/dockerd.log", "nodes/m1/events.jsonl", "tasks/app_web/app_web.1.t1@w1.log"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("bundle lacks %s", f)
		}
	}
	// The kept dockerd log, not what the engine holds.
	if b, _ := os.ReadFile(filepath.Join(dir, "nodes/m1/dockerd.log")); !strings.Contains(string(b), "level=info") {
		t.Errorf("dockerd.log %q", b)
	}
	readme, _ := os.ReadFile(filepath.Join(dir, "README.txt"))
	if !strings.Contains(string(readme), "lab unit (fake provider, up)") || !strings.Contains(string(readme), "volume swarmlab-logs-unit") || strings.Contains(string(readme), "not collected") {
		t.Errorf("README.txt:\n%s", readme)
	}
	machines, _ := os.ReadFile(filepath.Join(dir, "machines.json"))
	if !strings.Contains(string(machines), `"Name": "w1"`) {
		t.Errorf("machines.json:\n%s", machines)
	}
}

// Without kept logs (a provider that keeps none, as ssh), the bundle holds
// what the engines still have, and says what it could not get.
func TestExportLogsWithoutKeptLogs(t *testing.T) {
	l := labWithEngine(t)
	dir := t.TempDir()
	err := l.ExportLogs(context.Background(), dir)
	if err == nil || !strings.Contains(err.Error(), "events.jsonl") {
		t.Errorf("err = %v, want the events the fake engine cannot give", err)
	}
	for node, want := range map[string]string{"m1": "fake engine log of m1", "w1": "fake engine log of w1"} {
		if b, _ := os.ReadFile(filepath.Join(dir, "nodes", node, "dockerd.log")); !strings.Contains(string(b), want) {
			t.Errorf("%s dockerd.log %q", node, b)
		}
	}
	readme, _ := os.ReadFile(filepath.Join(dir, "README.txt"))
	if !strings.Contains(string(readme), "not kept") || !strings.Contains(string(readme), "not collected:") {
		t.Errorf("README.txt:\n%s", readme)
	}

	// A lab that is down, and kept nothing: only the README, saying so.
	k := &keeping{Provider: fake.New()}
	dir = t.TempDir()
	err = exportLogs(context.Background(), k, nil, "gone", dir)
	if !errors.Is(err, ErrNoLogs) {
		t.Errorf("err = %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "README.txt" {
		t.Errorf("bundle of a lab that is gone: %v", entries)
	}
}

func TestLogsOptionsArgs(t *testing.T) {
	for _, c := range []struct {
		o    LogsOptions
		want string
	}{
		{LogsOptions{}, ""},
		{LogsOptions{Since: "10m", Tail: 5, Follow: true, Timestamps: true}, "--since 10m --tail 5 -f -t"},
		{LogsOptions{Tail: -1}, ""},
	} {
		if got := strings.Join(c.o.args(), " "); got != c.want {
			t.Errorf("%+v: %q, want %q", c.o, got, c.want)
		}
	}
}
