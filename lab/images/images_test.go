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
	if want := []string{"base", "node", "sshnode", "registry", "redis", "postgres", "haproxy", "nginx"}; !slices.Equal(names, want) {
		t.Fatalf("images %v, want %v", names, want)
	}
	wantPublic := map[string][]string{
		"base":     nil,
		"node":     nil,
		"sshnode":  nil,
		"registry": nil,
		"redis":    {"redis:latest", "redis:7"},
		"postgres": {"postgres:latest", "postgres:15"},
		"haproxy":  {"haproxy:latest", "haproxy:2.6"},
		"nginx":    {"nginx:latest", "nginx:1.22"},
	}
	tags := map[string]bool{}
	for _, img := range all {
		if img.Repo != "swarmlab/"+img.Name {
			t.Errorf("%s: repo %s", img.Name, img.Repo)
		}
		if !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(img.Tag) {
			t.Errorf("%s: tag %q is not 12 hex digits", img.Name, img.Tag)
		}
		if img.Ref() != "swarmlab/"+img.Name+":"+img.Tag || img.Latest() != "swarmlab/"+img.Name+":latest" {
			t.Errorf("%s: ref %s, latest %s", img.Name, img.Ref(), img.Latest())
		}
		if tags[img.Tag] {
			t.Errorf("%s: tag %s shared with another image", img.Name, img.Tag)
		}
		tags[img.Tag] = true
		if !slices.Equal(img.Public, wantPublic[img.Name]) {
			t.Errorf("%s: public %v, want %v", img.Name, img.Public, wantPublic[img.Name])
		}
		fsys, dir := img.Files()
		own := mustHash(t, fsys, dir)
		if img.Name == "base" {
			if img.Base != BaseImage || img.On != "" {
				t.Errorf("base: base %q on %q, want %s", img.Base, img.On, BaseImage)
			}
			if own != img.Tag {
				t.Errorf("base: tag %s but its files hash to %s", img.Tag, own)
			}
			continue
		}
		// every other image is built on base, and its tag moves with base's
		base := mustGet("base")
		if img.On != "base" || img.Base != base.Ref() {
			t.Errorf("%s: on %q, base %q, want base, %s", img.Name, img.On, img.Base, base.Ref())
		}
		if want := onTag(own, base.Tag); img.Tag != want {
			t.Errorf("%s: tag %s, want %s (its files %s on base %s)", img.Name, img.Tag, want, own, base.Tag)
		}
	}
	if Node().Name != "node" || Registry().Name != "registry" || len(Node().Public) != 0 {
		t.Error("Node() / Registry() are wrong")
	}
	var std []string
	for _, img := range Standard() {
		std = append(std, img.Name)
		if img.PullRef() != img.Public[len(img.Public)-1] {
			t.Errorf("%s: pull ref %s", img.Name, img.PullRef())
		}
	}
	if !slices.Equal(std, []string{"redis", "postgres", "haproxy", "nginx"}) {
		t.Errorf("Standard() = %v", std)
	}
	// All returns copies: callers cannot change the package's images.
	a := All()
	a[4].Public[0] = "changed"
	if All()[4].Public[0] == "changed" {
		t.Error("All() shares its slices")
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

func TestEnsureBuildsOnlyWhatIsMissing(t *testing.T) {
	ctx := context.Background()

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

	t.Run("no base image", func(t *testing.T) {
		f := newFakeEngine()
		_, err := Ensure(ctx, f, nil)
		if err == nil || !strings.Contains(err.Error(), "base image debian:bookworm-slim is missing") {
			t.Errorf("err = %v", err)
		}
	})

	t.Run("pull fails, build", func(t *testing.T) {
		f := newFakeEngine(BaseImage, Node().Ref())
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
			if img.Name == "node" {
				continue
			}
			wantBuilds = append(wantBuilds, img.Ref())
			if img.Standard() {
				wantPulls = append(wantPulls, img.PullRef())
			}
			if refs[img.Name] != img.Ref() {
				t.Errorf("%s -> %s", img.Name, refs[img.Name])
			}
		}
		if !slices.Equal(f.builds, wantBuilds) || !slices.Equal(f.pulls, wantPulls) {
			t.Errorf("builds %v pulls %v, want %v %v", f.builds, f.pulls, wantBuilds, wantPulls)
		}
		// base first, from debian; every other image on base, through the build argument
		base := mustGet("base")
		if f.builds[0] != base.Ref() || f.buildArgs[base.Ref()] != nil {
			t.Errorf("first build %s with args %v, want %s without", f.builds[0], f.buildArgs[f.builds[0]], base.Ref())
		}
		for _, ref := range f.builds[1:] {
			if a := f.buildArgs[ref][BaseArg]; a == nil || *a != base.Ref() {
				t.Errorf("%s built with %s=%v, want %s", ref, BaseArg, a, base.Ref())
			}
		}
		df := readTar(t, f.buildTars[mustGet("redis").Ref()])["Dockerfile"].data
		if !strings.Contains(df, "FROM ${"+BaseArg+"}") {
			t.Errorf("redis's Dockerfile does not start FROM ${%s}:\n%s", BaseArg, df)
		}
	})

	t.Run("base missing, its image there", func(t *testing.T) {
		// an image built on base that exists needs nothing; one that is missing builds base first
		f := newFakeEngine(BaseImage, Node().Ref())
		if _, err := EnsureWith(ctx, f, Options{Only: []string{"node"}}); err != nil {
			t.Fatal(err)
		}
		if want := []string{mustGet("base").Ref()}; !slices.Equal(f.builds, want) {
			t.Errorf("builds %v, want %v (Only node: base comes too)", f.builds, want)
		}
		f = newFakeEngine(BaseImage)
		err := buildImage(ctx, f, Registry(), nil)
		if err == nil || !strings.Contains(err.Error(), "base image "+mustGet("base").Ref()+" is missing") {
			t.Errorf("building registry without base: %v", err)
		}
	})

	t.Run("pull works", func(t *testing.T) {
		f := newFakeEngine(BaseImage)
		f.pullOK = true
		refs, err := Ensure(ctx, f, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(f.builds, []string{mustGet("base").Ref(), Node().Ref(), SSHNode().Ref(), Registry().Ref()}) {
			t.Errorf("builds %v", f.builds)
		}
		for _, img := range Standard() {
			if refs[img.Name] != img.PullRef() {
				t.Errorf("%s -> %s, want %s", img.Name, refs[img.Name], img.PullRef())
			}
		}
	})

	t.Run("no pull, only some", func(t *testing.T) {
		f := newFakeEngine(BaseImage)
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
		f := newFakeEngine(BaseImage)
		built, err := EnsureBuilt(ctx, f, Registry())
		if err != nil || !built {
			t.Fatalf("built=%v err=%v", built, err)
		}
		if want := []string{mustGet("base").Ref(), Registry().Ref()}; !slices.Equal(f.builds, want) {
			t.Errorf("builds %v, want %v", f.builds, want)
		}
		built, err = EnsureBuilt(ctx, f, Registry())
		if err != nil || built {
			t.Fatalf("second time: built=%v err=%v", built, err)
		}
	})
}
