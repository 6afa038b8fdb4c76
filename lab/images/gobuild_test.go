package images

import (
	"os"
	"path/filepath"
	"testing"
)

// Each image has its own output directory: a different ldflags (customers
// and customers-v2) or platform must not reuse another image's programs.
func TestOutputKey(t *testing.T) {
	a := GoImage{Repo: "swarmlab/customers", ModuleDir: "/m", Packages: []string{"./app/invoices/cmd/customers"}}
	b := a
	b.LDFlags = "-X main.version=v2"
	if outputKey(a, "amd64") == outputKey(b, "amd64") || outputKey(a, "amd64") == outputKey(a, "arm64") {
		t.Error("output keys collide across ldflags or architectures")
	}
	if outputKey(a, "amd64") != outputKey(a, "amd64") {
		t.Error("output key is not stable")
	}
}

// What an interrupted build left in an output directory does not get into
// the image.
func TestCleanOutput(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"customers", "Dockerfile", "customers-go-tmp-umask", "stale"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cleanOutput(dir, []string{"./app/invoices/cmd/customers/"})
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "customers" {
		t.Errorf("left %v, want only the program", entries)
	}
}
