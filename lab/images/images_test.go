package images

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab/topology"
)

func sampleFS() fstest.MapFS {
	return fstest.MapFS{
		"ctx/Dockerfile":     {Data: []byte("FROM debian:bookworm-slim\nCOPY run.sh conf/app.conf /\n")},
		"ctx/run.sh":         {Data: []byte("#!/bin/sh\necho hi\n")},
		"ctx/conf/app.conf":  {Data: []byte("key = value\n")},
		"other/Dockerfile":   {Data: []byte("FROM scratch\n")},
		"ctx-sibling/README": {Data: []byte("not part of ctx\n")},
	}
}

func mustHash(t *testing.T, fsys fs.FS, dir string) string {
	t.Helper()
	h, err := HashFS(fsys, dir)
	if err != nil {
		t.Fatalf("HashFS(%s): %v", dir, err)
	}
	return h
}

// The tag of a given set of files must never change silently: every machine must compute the
// same tags, or images are rebuilt (or, worse, reused) for nothing. If you change the hashing on
// purpose, bump hashSalt and update this value.
func TestHashFSIsStable(t *testing.T) {
	const golden = "946fc2e016cb"
	fsys := sampleFS()
	h1 := mustHash(t, fsys, "ctx")
	h2 := mustHash(t, fsys, "ctx")
	if h1 != h2 {
		t.Fatalf("two hashes of the same files differ: %s %s", h1, h2)
	}
	if !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(h1) {
		t.Fatalf("hash %q is not 12 hex digits", h1)
	}
	if h1 != golden {
		t.Errorf("hash of the sample context = %s, want %s (hashing changed?)", h1, golden)
	}
}

func TestHashFSChangesWithTheInputs(t *testing.T) {
	base := mustHash(t, sampleFS(), "ctx")
	cases := map[string]func(fstest.MapFS){
		"content": func(m fstest.MapFS) { m["ctx/run.sh"] = &fstest.MapFile{Data: []byte("#!/bin/sh\necho ho\n")} },
		"one byte more": func(m fstest.MapFS) {
			m["ctx/conf/app.conf"] = &fstest.MapFile{Data: []byte("key = value\n\n")}
		},
		"new file":     func(m fstest.MapFS) { m["ctx/extra"] = &fstest.MapFile{Data: []byte("x")} },
		"empty file":   func(m fstest.MapFS) { m["ctx/empty"] = &fstest.MapFile{} },
		"removed file": func(m fstest.MapFS) { delete(m, "ctx/conf/app.conf") },
		"renamed file": func(m fstest.MapFS) {
			m["ctx/conf/app2.conf"] = m["ctx/conf/app.conf"]
			delete(m, "ctx/conf/app.conf")
		},
		"executable bit": func(m fstest.MapFS) {
			m["ctx/conf/app.conf"] = &fstest.MapFile{Data: []byte("key = value\n"), Mode: 0o755}
		},
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			m := sampleFS()
			change(m)
			if h := mustHash(t, m, "ctx"); h == base {
				t.Errorf("hash did not change: %s", h)
			}
		})
	}
	t.Run("files outside the context", func(t *testing.T) {
		m := sampleFS()
		m["other/Dockerfile"] = &fstest.MapFile{Data: []byte("FROM busybox\n")}
		m["ctx-sibling/new"] = &fstest.MapFile{Data: []byte("x")}
		if h := mustHash(t, m, "ctx"); h != base {
			t.Errorf("hash changed with files outside the context: %s != %s", h, base)
		}
	})
}

// An on-disk copy of a context (os.DirFS) hashes like the embedded one, so app images built
// from disk and from an embed.FS agree.
func TestHashFSSameOnDiskAndInMemory(t *testing.T) {
	dir := t.TempDir()
	for name, f := range sampleFS() {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if a, b := mustHash(t, sampleFS(), "ctx"), mustHash(t, os.DirFS(dir), "ctx"); a != b {
		t.Errorf("on disk %s != in memory %s", b, a)
	}
	if _, err := HashFS(sampleFS(), "missing"); err == nil {
		t.Error("HashFS of a missing directory: no error")
	}
	if _, err := HashFS(sampleFS(), "ctx/run.sh"); err == nil {
		t.Error("HashFS of a file: no error")
	}
}

type tarEntry struct {
	mode int64
	typ  byte
	data string
}

func readTar(t *testing.T, b []byte) map[string]tarEntry {
	t.Helper()
	out := map[string]tarEntry{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if !hdr.ModTime.Equal(contextMTime) {
			t.Errorf("%s: mtime %v, want the fixed %v", hdr.Name, hdr.ModTime, contextMTime)
		}
		out[hdr.Name] = tarEntry{mode: hdr.Mode, typ: hdr.Typeflag, data: string(data)}
	}
}

func TestTarFSHoldsTheContext(t *testing.T) {
	b, err := TarFS(sampleFS(), "ctx")
	if err != nil {
		t.Fatal(err)
	}
	entries := readTar(t, b)
	want := map[string]tarEntry{
		"Dockerfile":    {0o644, tar.TypeReg, "FROM debian:bookworm-slim\nCOPY run.sh conf/app.conf /\n"},
		"run.sh":        {0o755, tar.TypeReg, "#!/bin/sh\necho hi\n"},
		"conf/":         {0o755, tar.TypeDir, ""},
		"conf/app.conf": {0o644, tar.TypeReg, "key = value\n"},
	}
	if len(entries) != len(want) {
		t.Errorf("tar has %d entries, want %d: %v", len(entries), len(want), entries)
	}
	for name, w := range want {
		if got, ok := entries[name]; !ok {
			t.Errorf("tar lacks %s", name)
		} else if got != w {
			t.Errorf("%s: got %+v, want %+v", name, got, w)
		}
	}
	b2, err := TarFS(sampleFS(), "ctx")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, b2) {
		t.Error("two tars of the same context differ")
	}
}

func TestImagesAreKnown(t *testing.T) {
	all := All()
	var names []string
	for _, img := range all {
		names = append(names, img.Name)
	}
	if want := []string{"base", "base-trixie", "node-26", "node-20.10", "sshnode", "registry", "redis", "postgres", "haproxy", "nginx", "mariadb"}; !slices.Equal(names, want) {
		t.Fatalf("images %v, want %v", names, want)
	}
	wantPublic := map[string][]string{
		"redis":    {"redis:latest", "redis:7"},
		"postgres": {"postgres:latest", "postgres:15"},
		"haproxy":  {"haproxy:latest", "haproxy:2.6"},
		"nginx":    {"nginx:latest", "nginx:1.22"},
		"mariadb":  {"mariadb:latest", "mariadb:11", "mariadb:11.8"},
	}
	// the images made in variants from one context: repository, variant, base, context
	variants := map[string]struct{ repo, variant, on, dir string }{
		"base-trixie": {"swarmlab/base", "trixie", "", "base"},
		"node-26":     {"swarmlab/node", "26", "base-trixie", "node"},
		"node-20.10":  {"swarmlab/node", "20.10", "base", "node"},
		"mariadb":     {"swarmlab/mariadb", "", "base-trixie", "mariadb"},
	}
	tags := map[string]bool{}
	refs := map[string]bool{}
	for _, img := range all {
		repo, variant, on, dir := "swarmlab/"+img.Name, "", "base", img.Name
		if v, ok := variants[img.Name]; ok {
			repo, variant, on, dir = v.repo, v.variant, v.on, v.dir
		}
		if img.Name == "base" {
			on = ""
		}
		if img.Repo != repo || img.Variant != variant {
			t.Errorf("%s: repo %s variant %q, want %s %q", img.Name, img.Repo, img.Variant, repo, variant)
		}
		if !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(img.Tag) {
			t.Errorf("%s: tag %q is not 12 hex digits", img.Name, img.Tag)
		}
		wantRef, wantLatest := repo+":"+img.Tag, repo+":latest"
		if variant != "" {
			wantRef, wantLatest = repo+":"+variant+"-"+img.Tag, repo+":"+variant
		}
		if img.Ref() != wantRef || img.Latest() != wantLatest {
			t.Errorf("%s: ref %s, latest %s, want %s, %s", img.Name, img.Ref(), img.Latest(), wantRef, wantLatest)
		}
		if tags[img.Tag] || refs[img.Ref()] || refs[img.Latest()] {
			t.Errorf("%s: tag %s shared with another image", img.Name, img.Tag)
		}
		tags[img.Tag], refs[img.Ref()], refs[img.Latest()] = true, true, true
		if !slices.Equal(img.Public, wantPublic[img.Name]) {
			t.Errorf("%s: public %v, want %v", img.Name, img.Public, wantPublic[img.Name])
		}
		fsys, ctxDir := img.Files()
		if ctxDir != dir {
			t.Errorf("%s: context %s, want %s", img.Name, ctxDir, dir)
		}
		own := mustHash(t, fsys, ctxDir)
		if on == "" {
			release := map[string]string{"base": Bookworm, "base-trixie": Trixie}[img.Name]
			if img.Base != DebianImage(release) || img.On != "" || img.Debian != release {
				t.Errorf("%s: base %q on %q debian %q, want %s", img.Name, img.Base, img.On, img.Debian, DebianImage(release))
			}
			if want := onTag(own, DebianImage(release)); img.Tag != want {
				t.Errorf("%s: tag %s but its files on %s hash to %s", img.Name, img.Tag, DebianImage(release), want)
			}
			if a := img.buildArgs(); len(a) != 1 || a[DebianArg] == nil || *a[DebianArg] != DebianImage(release) {
				t.Errorf("%s: build args %v", img.Name, a)
			}
			continue
		}
		// every other image is built on a base, and its tag moves with the base's
		base := mustGet(on)
		if img.On != on || img.Base != base.Ref() || img.Debian != "" {
			t.Errorf("%s: on %q, base %q, debian %q, want %s, %s", img.Name, img.On, img.Base, img.Debian, on, base.Ref())
		}
		if want := onTag(own, base.Tag); img.Tag != want {
			t.Errorf("%s: tag %s, want %s (its files %s on base %s)", img.Name, img.Tag, want, own, base.Tag)
		}
	}
	if BaseImage != "debian:bookworm-slim" || DebianImage(Trixie) != "debian:trixie-slim" {
		t.Errorf("BaseImage %s, trixie %s", BaseImage, DebianImage(Trixie))
	}
	if Registry().Name != "registry" || SSHNode().Name != "sshnode" {
		t.Error("Registry() / SSHNode() are wrong")
	}
	var std []string
	for _, img := range Standard() {
		std = append(std, img.Name)
		// an image of its own is never replaced by the official one
		if want := img.Public[len(img.Public)-1]; img.Own && img.PullRef() != "" || !img.Own && img.PullRef() != want {
			t.Errorf("%s: pull ref %s (own %v)", img.Name, img.PullRef(), img.Own)
		}
		if img.Own != (img.Name == "mariadb") {
			t.Errorf("%s: own %v", img.Name, img.Own)
		}
	}
	if !slices.Equal(std, []string{"redis", "postgres", "haproxy", "nginx", "mariadb"}) {
		t.Errorf("Standard() = %v", std)
	}
	// All returns copies: callers cannot change the package's images.
	a := All()
	r := slices.IndexFunc(a, func(i Image) bool { return i.Name == "redis" })
	a[r].Public[0] = "changed"
	if All()[r].Public[0] == "changed" {
		t.Error("All() shares its slices")
	}
}

// The node image is chosen by engine version: the default one for none, an error that lists the
// versions for an unknown one. The engines are the ones lab/topology accepts.
func TestNodeFor(t *testing.T) {
	for engine, want := range map[string]string{"": "node-26", "26": "node-26", "20.10": "node-20.10"} {
		img, err := NodeFor(engine)
		if err != nil || img.Name != want {
			t.Errorf("NodeFor(%q) = %s, %v, want %s", engine, img.Name, err, want)
		}
	}
	if img, _ := NodeFor("26"); !strings.HasPrefix(img.Ref(), "swarmlab/node:26-") || img.Latest() != "swarmlab/node:26" || mustGet(img.On).Debian != Trixie {
		t.Errorf("node 26: %s, %s, on %s", img.Ref(), img.Latest(), img.On)
	}
	if img, _ := NodeFor("20.10"); !strings.HasPrefix(img.Ref(), "swarmlab/node:20.10-") || mustGet(img.On).Debian != Bookworm {
		t.Errorf("node 20.10: %s on %s", img.Ref(), img.On)
	}
	for _, bad := range []string{"27", "20", "latest"} {
		_, err := NodeFor(bad)
		if err == nil || !strings.Contains(err.Error(), `"`+bad+`"`) || !strings.Contains(err.Error(), "supported: 26, 20.10") {
			t.Errorf("NodeFor(%q): %v", bad, err)
		}
	}
	if got := Engines(); !slices.Equal(got, []string{DefaultEngine, "20.10"}) || !slices.Equal(got, topology.Engines) || DefaultEngine != topology.DefaultEngine {
		t.Errorf("Engines() = %v (default %s), lab/topology accepts %v (default %s)", got, DefaultEngine, topology.Engines, topology.DefaultEngine)
	}
	var nodes []string
	for _, n := range Nodes() {
		nodes = append(nodes, n.Name)
	}
	if !slices.Equal(nodes, []string{"node-26", "node-20.10"}) {
		t.Errorf("Nodes() = %v", nodes)
	}
}

// Every file a Dockerfile COPYs must be in the embedded context, and scripts must be executable.
func TestEmbeddedContextsAreComplete(t *testing.T) {
	for _, img := range All() {
		t.Run(img.Name, func(t *testing.T) {
			fsys, dir := img.Files()
			b, err := TarFS(fsys, dir)
			if err != nil {
				t.Fatal(err)
			}
			entries := readTar(t, b)
			df, ok := entries["Dockerfile"]
			if !ok {
				t.Fatal("no Dockerfile")
			}
			for _, line := range strings.Split(df.data, "\n") {
				f := strings.Fields(line)
				if len(f) < 3 || !strings.EqualFold(f[0], "COPY") || strings.HasPrefix(strings.ToLower(f[1]), "--from=") {
					continue // (COPY --from copies from a build stage, not from the context)
				}
				for _, src := range f[1 : len(f)-1] {
					if strings.HasPrefix(src, "--") {
						continue
					}
					if slices.Contains(img.programs, src) {
						if _, ok := entries[src+"/main.go"]; !ok {
							t.Errorf("Dockerfile copies the program %s, whose sources are not in the context", src)
						}
						continue // built into the context (programs.go)
					}
					e, ok := entries[src]
					if !ok {
						t.Errorf("Dockerfile copies %s, which is not in the context", src)
						continue
					}
					if strings.HasPrefix(e.data, "#!") && e.mode != 0o755 {
						t.Errorf("script %s has mode %o", src, e.mode)
					}
				}
			}
		})
	}
}

// The entry point scripts at least parse.
func TestScriptsParse(t *testing.T) {
	for _, img := range All() {
		fsys, dir := img.Files()
		err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := fs.ReadFile(fsys, p)
			if err != nil {
				return err
			}
			first, _, _ := strings.Cut(string(data), "\n")
			if !strings.HasPrefix(first, "#!") {
				return nil
			}
			shell := "sh"
			if strings.Contains(first, "bash") {
				shell = "bash"
			}
			if _, err := exec.LookPath(shell); err != nil {
				t.Logf("%s: no %s here, not checked", p, shell)
				return nil
			}
			cmd := exec.Command(shell, "-n")
			cmd.Stdin = bytes.NewReader(data)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s -n %s: %v\n%s", shell, p, err, out)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestDockerfileFroms(t *testing.T) {
	args := map[string]string{"SWARMLAB_BASE": "swarmlab/base:0123"}
	cases := []struct {
		df   string
		want []string
	}{
		{"FROM debian:bookworm-slim\nRUN true\n", []string{"debian:bookworm-slim"}},
		{"ARG SWARMLAB_BASE=x\nFROM ${SWARMLAB_BASE}\nRUN true\n", []string{"swarmlab/base:0123"}},
		{"FROM $SWARMLAB_BASE\n", []string{"swarmlab/base:0123"}},
		// a multi-stage build: stages and scratch are no images to have
		{"ARG SWARMLAB_BASE\nFROM ${SWARMLAB_BASE} AS build\nRUN x\nFROM build as second\nFROM scratch\nCOPY --from=build / /\n", []string{"swarmlab/base:0123"}},
		{"FROM a AS one\nFROM b\nFROM ONE\nFROM a\n", []string{"a", "b"}},
		{"FROM ${OTHER}\n", []string{"${OTHER}"}},
		{"FROM scratch\n", nil},
	}
	for _, c := range cases {
		if got := dockerfileFroms(c.df, args); !slices.Equal(got, c.want) {
			t.Errorf("dockerfileFroms(%q) = %q, want %q", c.df, got, c.want)
		}
	}
}

func layeredFS() fstest.MapFS {
	return fstest.MapFS{
		"b/Dockerfile":    {Data: []byte("FROM debian:bookworm-slim\nCOPY tool /\n")},
		"b/tool":          {Data: []byte("#!/bin/sh\n")},
		"app/Dockerfile":  {Data: []byte("ARG SWARMLAB_BASE\nFROM ${SWARMLAB_BASE} AS build\nRUN tool\nFROM scratch\nCOPY --from=build /out /\n")},
		"solo/Dockerfile": {Data: []byte("FROM scratch\n")},
	}
}

// An image built on another gets that image's reference as its base, and a tag that changes
// when the other image's files do, though its own did not.
func TestImagesOfChainsTags(t *testing.T) {
	specs := []spec{{name: "b"}, {name: "app", on: "b"}, {name: "solo"}}
	imgs, err := imagesOf(layeredFS(), specs)
	if err != nil {
		t.Fatal(err)
	}
	b, app, solo := imgs[0], imgs[1], imgs[2]
	if b.Base != "debian:bookworm-slim" || b.On != "" || b.Tag != mustHash(t, layeredFS(), "b") {
		t.Errorf("b: %+v", b)
	}
	if app.Base != b.Ref() || app.On != "b" || app.Tag == mustHash(t, layeredFS(), "app") {
		t.Errorf("app: %+v (b %s)", app, b.Ref())
	}
	if solo.Base != "" || solo.Tag != mustHash(t, layeredFS(), "solo") {
		t.Errorf("solo: %+v", solo)
	}
	if got := app.buildArgs(); len(got) != 1 || got[BaseArg] == nil || *got[BaseArg] != b.Ref() {
		t.Errorf("app's build args %v", got)
	}
	if b.buildArgs() != nil {
		t.Errorf("b's build args %v", b.buildArgs())
	}

	m := layeredFS()
	m["b/tool"] = &fstest.MapFile{Data: []byte("#!/bin/sh\necho new\n")}
	again, err := imagesOf(m, specs)
	if err != nil {
		t.Fatal(err)
	}
	if again[0].Tag == b.Tag || again[1].Tag == app.Tag || again[1].Base != again[0].Ref() {
		t.Errorf("b's files changed: b %s -> %s, app %s -> %s (base %s)", b.Tag, again[0].Tag, app.Tag, again[1].Tag, again[1].Base)
	}
	if again[2].Tag != solo.Tag {
		t.Errorf("solo's tag moved with b's files")
	}
}

func TestImagesOfRefusesBrokenChains(t *testing.T) {
	cases := map[string]struct {
		fsys  fstest.MapFS
		specs []spec
		want  string
	}{
		"base after": {layeredFS(), []spec{{name: "app", on: "b"}, {name: "b"}}, "does not come before"},
		"not FROM the arg": {fstest.MapFS{
			"b/Dockerfile": {Data: []byte("FROM debian:bookworm-slim\n")},
			"x/Dockerfile": {Data: []byte("FROM debian:bookworm-slim\n")},
		}, []spec{{name: "b"}, {name: "x", on: "b"}}, "starts FROM ${SWARMLAB_BASE} only"},
		"also FROM another image": {fstest.MapFS{
			"b/Dockerfile": {Data: []byte("FROM debian:bookworm-slim\n")},
			"x/Dockerfile": {Data: []byte("ARG SWARMLAB_BASE\nFROM ${SWARMLAB_BASE} AS a\nFROM golang AS g\nFROM scratch\n")},
		}, []spec{{name: "b"}, {name: "x", on: "b"}}, "starts FROM ${SWARMLAB_BASE} only"},
		"two bases": {fstest.MapFS{
			"x/Dockerfile": {Data: []byte("FROM a AS one\nFROM b\n")},
		}, []spec{{name: "x"}}, "one base image at most"},
		"no context": {layeredFS(), []spec{{name: "nope"}}, "context nope"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := imagesOf(c.fsys, c.specs); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want %q", err, c.want)
			}
		})
	}
}

// fakeEngine is the part of a Docker engine that this package uses.
type fakeEngine struct {
	client.APIClient // nil: any other call panics

	mu          sync.Mutex
	images      map[string]bool
	buildStream string // JSON messages answered to a build
	buildFails  bool   // the build does not create the tag
	pullOK      bool
	builds      []string
	buildTars   map[string][]byte
	buildArgs   map[string]map[string]*string
	pulls       []string
	tags        []string

	imports       []string
	importChanges []string
	importTar     []byte
}

func newFakeEngine(images ...string) *fakeEngine {
	f := &fakeEngine{images: map[string]bool{}, buildTars: map[string][]byte{}, buildArgs: map[string]map[string]*string{}}
	for _, i := range images {
		f.images[i] = true
	}
	return f
}

func (f *fakeEngine) ImageInspect(_ context.Context, ref string, _ ...client.ImageInspectOption) (client.ImageInspectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.images[ref] {
		var r client.ImageInspectResult
		r.Size = 123e6
		return r, nil
	}
	return client.ImageInspectResult{}, fmt.Errorf("no such image: %s: %w", ref, cerrdefs.ErrNotFound)
}

func (f *fakeEngine) ImageBuild(_ context.Context, r io.Reader, opts client.ImageBuildOptions) (client.ImageBuildResult, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return client.ImageBuildResult{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.builds = append(f.builds, opts.Tags...)
	stream := f.buildStream
	if stream == "" {
		stream = `{"stream":"Step 1/1 : FROM debian:bookworm-slim\n"}` + "\n" + `{"stream":"Successfully built 0123\n"}` + "\n"
	}
	for _, tag := range opts.Tags {
		f.buildTars[tag] = b
		f.buildArgs[tag] = opts.BuildArgs
		if !f.buildFails {
			f.images[tag] = true
		}
	}
	return client.ImageBuildResult{Body: io.NopCloser(strings.NewReader(stream))}, nil
}

func (f *fakeEngine) Info(context.Context, client.InfoOptions) (client.SystemInfoResult, error) {
	var r client.SystemInfoResult
	r.Info.Architecture = "x86_64"
	return r, nil
}

func (f *fakeEngine) ImageTag(_ context.Context, opts client.ImageTagOptions) (client.ImageTagResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tags = append(f.tags, opts.Source+" -> "+opts.Target)
	f.images[opts.Target] = true
	return client.ImageTagResult{}, nil
}

type fakePull struct{ io.ReadCloser }

func (fakePull) JSONMessages(context.Context) iter.Seq2[jsonstream.Message, error] {
	return func(func(jsonstream.Message, error) bool) {}
}
func (fakePull) Wait(context.Context) error { return nil }

func (f *fakeEngine) ImagePull(_ context.Context, ref string, _ client.ImagePullOptions) (client.ImagePullResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pulls = append(f.pulls, ref)
	if !f.pullOK {
		return nil, errors.New("Error response from daemon: no registry here")
	}
	f.images[ref] = true
	return fakePull{io.NopCloser(strings.NewReader(""))}, nil
}

func (f *fakeEngine) ImageImport(_ context.Context, src client.ImageImportSource, ref string, opts client.ImageImportOptions) (client.ImageImportResult, error) {
	b, err := io.ReadAll(src.Source)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.imports = append(f.imports, ref)
	f.importChanges = opts.Changes
	f.importTar = b
	f.images[ref] = true
	return io.NopCloser(strings.NewReader(`{"status":"sha256:0123"}` + "\n")), nil
}

func TestBuildContextStreamsOutputAndReportsErrors(t *testing.T) {
	ctx := context.Background()

	t.Run("success", func(t *testing.T) {
		f := newFakeEngine()
		// output chunks do not always end lines
		f.buildStream = `{"stream":"Step 1/2 : FROM debian:bookworm-slim\n"}
{"stream":" ---\u003e 2d60477a255c\nStep 2/2 : RUN ec"}
{"stream":"ho hi\n"}
{"status":"something"}
{"aux":{"ID":"sha256:0123"}}
{"stream":"Successfully tagged x:y\n"}
`
		var lines []string
		err := BuildContext(ctx, f, sampleFS(), "ctx", "x:y", func(format string, args ...any) {
			lines = append(lines, fmt.Sprintf(format, args...))
		})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"Step 1/2 : FROM debian:bookworm-slim", " ---> 2d60477a255c", "Step 2/2 : RUN echo hi", "something", "Successfully tagged x:y"}
		if !slices.Equal(lines, want) {
			t.Errorf("output lines\n%q\nwant\n%q", lines, want)
		}
		entries := readTar(t, f.buildTars["x:y"])
		if _, ok := entries["run.sh"]; !ok {
			t.Errorf("the build context lacks run.sh: %v", entries)
		}
	})

	t.Run("build error", func(t *testing.T) {
		f := newFakeEngine()
		var b strings.Builder
		for i := 1; i <= 40; i++ {
			fmt.Fprintf(&b, `{"stream":"line %d\n"}`+"\n", i)
		}
		b.WriteString(`{"errorDetail":{"code":100,"message":"The command '/bin/sh -c apt-get install nope' returned a non-zero code: 100"},"error":"The command ..."}` + "\n")
		f.buildStream = b.String()
		f.buildFails = true
		err := BuildContext(ctx, f, sampleFS(), "ctx", "x:y", nil)
		if err == nil {
			t.Fatal("no error")
		}
		msg := err.Error()
		for _, want := range []string{"build x:y", "returned a non-zero code: 100", "line 40", "line 16"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error lacks %q:\n%s", want, msg)
			}
		}
		if strings.Contains(msg, "line 15\n") {
			t.Errorf("error carries more than the last %d lines:\n%s", tailLines, msg)
		}
	})

	t.Run("stream ends without the image", func(t *testing.T) {
		f := newFakeEngine()
		f.buildFails = true
		if err := BuildContext(ctx, f, sampleFS(), "ctx", "x:y", nil); err == nil || !strings.Contains(err.Error(), "not there") {
			t.Errorf("err = %v", err)
		}
	})
}

func refsOf(imgs []Image) []string {
	var out []string
	for _, i := range imgs {
		out = append(out, i.Ref())
	}
	return out
}

// debians are the Debian images the base images start from.
var debians = []string{DebianImage(Bookworm), DebianImage(Trixie)}

func without(refs []string, drop ...string) []string {
	return slices.DeleteFunc(slices.Clone(refs), func(r string) bool { return slices.Contains(drop, r) })
}

func TestEnsureBuildsOnlyWhatIsMissing(t *testing.T) {
	ctx := context.Background()
	node26, node2010 := mustGet("node-26"), mustGet("node-20.10")

	t.Run("nothing to do", func(t *testing.T) {
		f := newFakeEngine(refsOf(All())...)
		missing, err := Missing(ctx, f)
		if err != nil || len(missing) != 0 {
			t.Fatalf("Missing = %v, %v", missing, err)
		}
		var logged []string
		refs, err := Ensure(ctx, f, func(format string, args ...any) { logged = append(logged, fmt.Sprintf(format, args...)) })
		if err != nil {
			t.Fatal(err)
		}
		if len(f.builds) != 0 || len(f.pulls) != 0 {
			t.Errorf("builds %v, pulls %v", f.builds, f.pulls)
		}
		if len(logged) != len(All()) {
			t.Errorf("logged %d lines, want one per image:\n%s", len(logged), strings.Join(logged, "\n"))
		}
		for _, img := range All() {
			if refs[img.Name] != img.Ref() {
				t.Errorf("%s -> %s, want %s", img.Name, refs[img.Name], img.Ref())
			}
			if !slices.Contains(f.tags, img.Ref()+" -> "+img.Latest()) {
				t.Errorf("%s not tagged latest: %v", img.Name, f.tags)
			}
		}
	})

	t.Run("no Debian image, none can be made", func(t *testing.T) {
		stubDebootstrap(t, errors.New("no mirror"))
		f := newFakeEngine()
		_, err := Ensure(ctx, f, nil)
		if err == nil || !strings.Contains(err.Error(), "debootstrap --variant=minbase bookworm: no mirror") {
			t.Errorf("err = %v", err)
		}
		if !slices.Equal(f.pulls, []string{BaseImage}) {
			t.Errorf("pulls %v, want the Debian image first", f.pulls)
		}
	})

	t.Run("pull fails, build", func(t *testing.T) {
		f := newFakeEngine(append(slices.Clone(debians), node2010.Ref())...)
		missing, err := Missing(ctx, f)
		if err != nil || len(missing) != len(All())-1 {
			t.Fatalf("Missing = %v, %v", refsOf(missing), err)
		}
		refs, err := Ensure(ctx, f, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		var wantBuilds, wantPulls []string
		for _, img := range All() {
			if img.Name == node2010.Name {
				continue
			}
			wantBuilds = append(wantBuilds, img.Ref())
			if img.PullRef() != "" {
				wantPulls = append(wantPulls, img.PullRef())
			}
			if refs[img.Name] != img.Ref() {
				t.Errorf("%s -> %s", img.Name, refs[img.Name])
			}
		}
		if !slices.Equal(f.builds, wantBuilds) || !slices.Equal(f.pulls, wantPulls) {
			t.Errorf("builds %v pulls %v, want %v %v", f.builds, f.pulls, wantBuilds, wantPulls)
		}
		// the bases first, each from its Debian image; every other image on its base, through
		// the build argument
		for i, b := range []Image{mustGet("base"), mustGet("base-trixie")} {
			if a := f.buildArgs[b.Ref()]; f.builds[i] != b.Ref() || len(a) != 1 || a[DebianArg] == nil || *a[DebianArg] != DebianImage(b.Debian) {
				t.Errorf("build %d: %s with args %v, want %s with %s=%s", i, f.builds[i], a, b.Ref(), DebianArg, DebianImage(b.Debian))
			}
		}
		for _, ref := range f.builds[2:] {
			want := mustGet("base").Ref()
			if ref == node26.Ref() || ref == mustGet("mariadb").Ref() {
				want = mustGet("base-trixie").Ref()
			}
			if a := f.buildArgs[ref][BaseArg]; a == nil || *a != want {
				t.Errorf("%s built with %s=%v, want %s", ref, BaseArg, a, want)
			}
		}
		df := readTar(t, f.buildTars[mustGet("redis").Ref()])["Dockerfile"].data
		if !strings.Contains(df, "FROM ${"+BaseArg+"}") {
			t.Errorf("redis's Dockerfile does not start FROM ${%s}:\n%s", BaseArg, df)
		}
		df = readTar(t, f.buildTars[mustGet("base-trixie").Ref()])["Dockerfile"].data
		if !strings.Contains(df, "FROM ${"+DebianArg+"}") {
			t.Errorf("base's Dockerfile does not start FROM ${%s}:\n%s", DebianArg, df)
		}
	})

	t.Run("base missing, its image there", func(t *testing.T) {
		// an image built on base that exists needs nothing; one that is missing builds base first
		f := newFakeEngine(append(slices.Clone(debians), node2010.Ref())...)
		if _, err := EnsureWith(ctx, f, Options{Only: []string{"node-20.10"}}); err != nil {
			t.Fatal(err)
		}
		if want := []string{mustGet("base").Ref()}; !slices.Equal(f.builds, want) {
			t.Errorf("builds %v, want %v (Only node-20.10: base comes too)", f.builds, want)
		}
		// the node of 26 is built on the trixie base only
		f = newFakeEngine(debians...)
		if _, err := EnsureWith(ctx, f, Options{Only: []string{"node-26"}}); err != nil {
			t.Fatal(err)
		}
		if want := []string{mustGet("base-trixie").Ref(), node26.Ref()}; !slices.Equal(f.builds, want) {
			t.Errorf("builds %v, want %v", f.builds, want)
		}
		f = newFakeEngine(debians...)
		err := buildImage(ctx, f, Registry(), nil)
		if err == nil || !strings.Contains(err.Error(), "base image "+mustGet("base").Ref()+" is missing") {
			t.Errorf("building registry without base: %v", err)
		}
	})

	t.Run("pull works", func(t *testing.T) {
		f := newFakeEngine(debians...)
		f.pullOK = true
		refs, err := Ensure(ctx, f, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{mustGet("base").Ref(), mustGet("base-trixie").Ref(), node26.Ref(), node2010.Ref(), SSHNode().Ref(), Registry().Ref(), mustGet("mariadb").Ref()}; !slices.Equal(f.builds, want) {
			t.Errorf("builds %v, want %v (mariadb: built, never pulled)", f.builds, want)
		}
		for _, img := range Standard() {
			if img.Own {
				if refs[img.Name] != img.Ref() {
					t.Errorf("%s -> %s, want %s", img.Name, refs[img.Name], img.Ref())
				}
				continue
			}
			if refs[img.Name] != img.PullRef() {
				t.Errorf("%s -> %s, want %s", img.Name, refs[img.Name], img.PullRef())
			}
		}
	})

	t.Run("no pull, only some", func(t *testing.T) {
		f := newFakeEngine(debians...)
		f.pullOK = true
		refs, err := EnsureWith(ctx, f, Options{NoPull: true, Only: []string{"redis"}})
		if err != nil {
			t.Fatal(err)
		}
		// redis is built on base, which comes first
		if len(f.pulls) != 0 || !slices.Equal(f.builds, []string{mustGet("base").Ref(), mustGet("redis").Ref()}) || len(refs) != 2 {
			t.Errorf("pulls %v builds %v refs %v", f.pulls, f.builds, refs)
		}
		f.builds = nil
		if _, err := EnsureWith(ctx, f, Options{NoPull: true, Only: []string{"nginx"}}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(f.builds, []string{mustGet("nginx").Ref()}) {
			t.Errorf("with base there, builds %v", f.builds)
		}
		if _, err := EnsureWith(ctx, f, Options{Only: []string{"nope"}}); err == nil {
			t.Error("unknown image: no error")
		}
	})

	t.Run("EnsureBuilt", func(t *testing.T) {
		stubDebootstrap(t, nil)
		f := newFakeEngine() // no Debian image: made
		built, err := EnsureBuilt(ctx, f, Registry())
		if err != nil || !built {
			t.Fatalf("built=%v err=%v", built, err)
		}
		if want := []string{mustGet("base").Ref(), Registry().Ref()}; !slices.Equal(f.builds, want) {
			t.Errorf("builds %v, want %v", f.builds, want)
		}
		if want := []string{BaseImage}; !slices.Equal(f.imports, want) {
			t.Errorf("imports %v, want %v", f.imports, want)
		}
		built, err = EnsureBuilt(ctx, f, Registry())
		if err != nil || built {
			t.Fatalf("second time: built=%v err=%v", built, err)
		}
	})
}

// stubDebootstrap makes EnsureDebian's debootstrap write a tiny tree (or fail with err), as root
// with the program found, for the test.
func stubDebootstrap(t *testing.T, err error) *[]string {
	t.Helper()
	var ran []string
	oldRun, oldLook, oldRoot := debootstrap, lookDebootstrap, isRoot
	debootstrap = func(_ context.Context, release, dir string, log io.Writer) error {
		ran = append(ran, release)
		fmt.Fprintf(log, "I: Retrieving InRelease\nE: %v\n", err)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, "etc", "os-release"), []byte("VERSION_CODENAME="+release+"\n"), 0o644)
	}
	lookDebootstrap = func(context.Context, func(string, ...any)) error { return nil }
	isRoot = func() bool { return true }
	t.Cleanup(func() { debootstrap, lookDebootstrap, isRoot = oldRun, oldLook, oldRoot })
	return &ran
}

// A Debian image is used when there, pulled when it can be, else made with debootstrap and
// imported with the official image's settings; and not made without root.
func TestEnsureDebian(t *testing.T) {
	ctx := context.Background()
	t.Run("there", func(t *testing.T) {
		ran := stubDebootstrap(t, nil)
		f := newFakeEngine(DebianImage(Trixie))
		if err := EnsureDebian(ctx, f, Trixie, Options{}); err != nil || len(f.pulls) != 0 || len(*ran) != 0 {
			t.Errorf("err %v, pulls %v, debootstrap %v", err, f.pulls, *ran)
		}
	})
	t.Run("pulled", func(t *testing.T) {
		ran := stubDebootstrap(t, nil)
		f := newFakeEngine()
		f.pullOK = true
		if err := EnsureDebian(ctx, f, Trixie, Options{}); err != nil || !slices.Equal(f.pulls, []string{"debian:trixie-slim"}) || len(*ran) != 0 {
			t.Errorf("err %v, pulls %v, debootstrap %v", err, f.pulls, *ran)
		}
	})
	t.Run("made", func(t *testing.T) {
		ran := stubDebootstrap(t, nil)
		f := newFakeEngine()
		var logged []string
		err := EnsureDebian(ctx, f, Trixie, Options{Logf: func(format string, args ...any) { logged = append(logged, fmt.Sprintf(format, args...)) }})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(*ran, []string{Trixie}) || !slices.Equal(f.imports, []string{"debian:trixie-slim"}) || !f.images["debian:trixie-slim"] {
			t.Fatalf("debootstrap %v, imports %v", *ran, f.imports)
		}
		if !slices.Equal(f.importChanges, debianChanges) {
			t.Errorf("import changes %q, want %q", f.importChanges, debianChanges)
		}
		tr, found := tar.NewReader(bytes.NewReader(f.importTar)), false
		for {
			hdr, err := tr.Next()
			if err != nil {
				break
			}
			if b, _ := io.ReadAll(tr); hdr.Name == "./etc/os-release" && string(b) == "VERSION_CODENAME=trixie\n" {
				found = true
			}
		}
		if !found {
			t.Errorf("the imported tree lacks the debootstrap's ./etc/os-release")
		}
		if len(logged) != 2 || !strings.Contains(logged[0], "making it with debootstrap") || !strings.Contains(logged[1], "made        debian:trixie-slim with debootstrap in") {
			t.Errorf("logged %q", logged)
		}
	})
	t.Run("debootstrap fails", func(t *testing.T) {
		stubDebootstrap(t, errors.New("exit status 1"))
		err := EnsureDebian(ctx, newFakeEngine(), Trixie, Options{})
		if err == nil || !strings.Contains(err.Error(), "last lines of its output ---\nI: Retrieving InRelease\nE: exit status 1") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("not root", func(t *testing.T) {
		ran := stubDebootstrap(t, nil)
		isRoot = func() bool { return false }
		err := EnsureDebian(ctx, newFakeEngine(), Trixie, Options{})
		if err == nil || !strings.Contains(err.Error(), "cannot pull debian:trixie-slim, and making it with debootstrap needs root") || len(*ran) != 0 {
			t.Errorf("err = %v, debootstrap %v", err, *ran)
		}
	})
	t.Run("no debootstrap", func(t *testing.T) {
		stubDebootstrap(t, nil)
		lookDebootstrap = func(context.Context, func(string, ...any)) error {
			return errors.New("the debootstrap program is missing")
		}
		err := EnsureDebian(ctx, newFakeEngine(), Bookworm, Options{})
		if err == nil || !strings.Contains(err.Error(), "cannot pull debian:bookworm-slim, nor make it: the debootstrap program is missing") {
			t.Errorf("err = %v", err)
		}
	})
}
