package images

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"testing/fstest"
)

// The node image's build context holds its log collector compiled (a
// static Linux program), not its sources; its tag comes from the sources,
// not from their tests.
func TestNodeContextHoldsTheCollectorBuilt(t *testing.T) {
	if testing.Short() {
		t.Skip("builds swarmlab-logd")
	}
	b, err := contextTar(context.Background(), newFakeEngine(), mustGet("node-26"))
	if err != nil {
		t.Fatal(err)
	}
	entries := readTar(t, b)
	bin, ok := entries["swarmlab-logd"]
	if !ok || bin.mode != 0o755 || !strings.HasPrefix(bin.data, "\x7fELF") {
		t.Fatalf("context lacks the program swarmlab-logd (mode %o, %d bytes)", bin.mode, len(bin.data))
	}
	for name := range entries {
		if strings.HasPrefix(name, "swarmlab-logd/") {
			t.Errorf("context holds the program's source %s", name)
		}
	}
	if df := entries["Dockerfile"].data; !strings.Contains(df, "COPY swarmlab-logd /usr/local/bin/swarmlab-logd") {
		t.Errorf("Dockerfile does not install the collector:\n%s", df)
	}
	// Statically linked: no program interpreter.
	if bytes.Contains([]byte(bin.data[:4096]), []byte("ld-linux")) {
		t.Error("swarmlab-logd is dynamically linked")
	}
}

func TestProgramTestsAreNoBuildInput(t *testing.T) {
	fsys := fstest.MapFS{
		"ctx/Dockerfile":        {Data: []byte("FROM scratch\n")},
		"ctx/prog/main.go":      {Data: []byte("package main\nfunc main() {}\n")},
		"ctx/prog/main_test.go": {Data: []byte("package main\n")},
	}
	h1 := mustHash(t, fsys, "ctx")
	fsys["ctx/prog/main_test.go"] = &fstest.MapFile{Data: []byte("package main\n// changed\n")}
	if h2 := mustHash(t, fsys, "ctx"); h1 != h2 {
		t.Error("changing a test changed the tag")
	}
	fsys["ctx/prog/main.go"] = &fstest.MapFile{Data: []byte("package main\nfunc main() { println() }\n")}
	if h3 := mustHash(t, fsys, "ctx"); h1 == h3 {
		t.Error("changing the program did not change the tag")
	}
	files, _ := readContext(fsys, "ctx")
	got := withProgram(files, "prog", []byte("BIN"))
	var names []string
	for _, f := range got {
		names = append(names, f.rel)
	}
	if strings.Join(names, " ") != "Dockerfile prog" {
		t.Errorf("context %v, want Dockerfile and the program", names)
	}
}

func TestBuildProgramSaysWhatFailed(t *testing.T) {
	fsys := fstest.MapFS{"p/main.go": {Data: []byte("package main\nimport \"example.com/nope\"\nfunc main() { nope.X() }\n")}}
	_, err := buildProgram(context.Background(), fsys, "p", "amd64")
	if err == nil || !strings.Contains(err.Error(), "program p: go build") || !strings.Contains(err.Error(), "example.com/nope") {
		t.Errorf("err = %v", err)
	}
	if _, err := buildProgram(context.Background(), fstest.MapFS{"q/README": {}}, "q", "amd64"); err == nil || !strings.Contains(err.Error(), "no Go files") {
		t.Errorf("err = %v", err)
	}
}
