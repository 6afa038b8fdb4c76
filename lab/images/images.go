// Package images knows the container images of the lab and makes sure they exist in a Docker
// engine.
//
// Their build contexts are embedded in the binary (the directories beside this file, one per
// image, each holding a Dockerfile). An image's tag is a hash of its build inputs (HashFS), e.g.
// swarmlab/registry:3f2a9c1b0d4e, so an image is rebuilt exactly when its files change, and
// nothing is built when the tag is already there. An image made in several variants from one
// context (the node, one per Docker engine) has the variant before the hash:
// swarmlab/node:26-5d1c0a9e7f32, swarmlab/node:20.10-0b6e4f1a2c3d.
//
// The first images, base and base-trixie, are debian:bookworm-slim and debian:trixie-slim with
// the apt preamble every other image shares (base/Dockerfile, built twice with the build argument
// SWARMLAB_DEBIAN). Where the Debian image is missing, Ensure pulls it, or else makes it on this
// machine with debootstrap and imports it (debian.go). The others are built on a base: their
// Dockerfiles start `ARG SWARMLAB_BASE` / `FROM ${SWARMLAB_BASE}`, the build gets the base's
// hashed tag in that build argument, and an image's own tag hashes the base's tag with its files,
// so that a change of base rebuilds every image on it. Building an image builds its base first
// when that is missing.
//
// The images:
//   - base, base-trixie: the shared first layer (not run by themselves);
//   - node-26, node-20.10: a Swarm node, Docker-in-Docker on Debian's dockerd: docker.io 26.1 of
//     Debian 13 (on base-trixie) or 20.10 of Debian 12 (on base), from the same context (see
//     node/Dockerfile for how it must be run), with the lab's log collector swarmlab-logd
//     (node/swarmlab-logd, a Go program built into the context: programs.go). NodeFor picks
//     one by engine version;
//   - sshnode: a stand-in for a host of your own (sshd, and dockerd on its unix socket only),
//     for testing the ssh provider locally;
//   - registry: Debian's docker-registry without auth, on :5000;
//   - the standard images used by stacks (redis, postgres, haproxy, nginx, mariadb), built from
//     Debian packages but with the official images' interfaces (entrypoints, environment, paths,
//     ports), so that the same stack files work with the official images where those can be
//     pulled. mariadb does more than the official image (a Galera cluster member or arbitrator in
//     a swarm, mariadb/swarmlab-galera): it is always built, never pulled;
//     They are slim: a build stage on base gathers the programs, their shared libraries and
//     files (base/swarmlab-rootfs), and the image is that root FROM scratch (12-90 MB, where
//     the Debian-based ones were 210-495 MB: every node of a lab pulls them).
package images

import (
	"cmp"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

//go:embed base node sshnode registry redis postgres haproxy nginx mariadb
var contexts embed.FS

// RepoPrefix is the repository namespace of the lab's own images.
const RepoPrefix = "swarmlab/"

// Debian releases the lab's images are built from.
const (
	Bookworm = "bookworm" // Debian 12: docker.io 20.10.24
	Trixie   = "trixie"   // Debian 13: docker.io 26.1.5
)

// DebianImage is the Debian image of a release, which the lab's base images start FROM:
// "debian:trixie-slim".
func DebianImage(release string) string { return "debian:" + release + "-slim" }

// BaseImage is the image the lab's base image (and so every lab image but the trixie ones)
// starts from.
var BaseImage = DebianImage(Bookworm)

// BaseArg is the build argument through which an image built on another lab image gets that
// image's reference: its Dockerfile says `ARG SWARMLAB_BASE` and `FROM ${SWARMLAB_BASE}`.
const BaseArg = "SWARMLAB_BASE"

// DebianArg is the build argument through which base/Dockerfile gets the Debian image it starts
// FROM (DebianImage of the base's release).
const DebianArg = "SWARMLAB_DEBIAN"

// DefaultPullTimeout bounds the attempt to pull a standard image's official version.
const DefaultPullTimeout = 20 * time.Second

// Image is one of the lab's images.
type Image struct {
	Name string // "node-26", "registry", "redis", ...
	Repo string // "swarmlab/node"
	// Variant tells apart images of one repository made from one context ("26", "20.10",
	// "trixie"); empty for an image with no variants.
	Variant string
	Tag     string   // hash of the build inputs (12 hex digits)
	Public  []string // for standard images, what a stack writes: "redis:latest", "redis:7"; else empty
	// Own says that the image's interface is more than the official one's (mariadb's Galera
	// modes): the official image would not do, so it is never pulled instead (PullRef is empty).
	Own  bool
	Base string // the image its build starts FROM: a Debian image, or the lab image named by On
	On   string // the lab image it is built on ("base"), passed as BaseArg; empty for none
	// Debian is the release of the Debian image a base image starts FROM (Base), which Ensure
	// pulls or makes when it is missing; empty for the images built on another.
	Debian string
	dir    string            // the build context: a directory of contexts
	args   map[string]string // build arguments of its own (DebianArg)
	// programs are directories of the context holding a Go program's sources, each built into
	// the context as a file of that name (programs.go).
	programs []string
}

// Ref is the image's local reference, e.g. "swarmlab/registry:3f2a9c1b0d4e" or
// "swarmlab/node:26-5d1c0a9e7f32".
func (i Image) Ref() string {
	if i.Variant != "" {
		return i.Repo + ":" + i.Variant + "-" + i.Tag
	}
	return i.Repo + ":" + i.Tag
}

// Latest is the moving tag set for humans, e.g. "swarmlab/registry:latest", or for a variant
// "swarmlab/node:26".
func (i Image) Latest() string {
	if i.Variant != "" {
		return i.Repo + ":" + i.Variant
	}
	return i.Repo + ":latest"
}

// PullRef is the official image tried before building a standard image: the most specific of
// its public names ("redis:7"). Empty for node and registry, and for an image of its Own.
func (i Image) PullRef() string {
	if len(i.Public) == 0 || i.Own {
		return ""
	}
	return i.Public[len(i.Public)-1]
}

// Standard tells whether the image stands in for an official image.
func (i Image) Standard() bool { return len(i.Public) > 0 }

// Files returns the image's build context.
func (i Image) Files() (fs.FS, string) { return contexts, i.dir }

type spec struct {
	name    string
	dir     string // the build context; empty: name
	repo    string // empty: RepoPrefix + name
	variant string
	on      string // the lab image it is built on
	debian  string // for an image on no other: the Debian release it starts FROM (DebianArg)
	public  []string
	own     bool // Image.Own
	// programs are the Go programs of the context (programs.go)
	programs []string
}

// Engines are the Docker engine versions a lab's nodes can run, the default first. The lab
// validates a topology's provider.engine against lab/topology's list, which a test holds equal
// to this one.
var engines = []struct{ version, node string }{
	{"26", "node-26"},
	{"20.10", "node-20.10"},
}

// DefaultEngine is the engine of nodes whose topology names none.
const DefaultEngine = "26"

// Engines lists the engine versions NodeFor knows, the default first.
func Engines() []string {
	out := make([]string, len(engines))
	for i, e := range engines {
		out[i] = e.version
	}
	return out
}

// specs lists the images in build order: an image's base comes before it.
var specs = []spec{
	{name: "base", debian: Bookworm},
	{name: "base-trixie", dir: "base", repo: RepoPrefix + "base", variant: Trixie, debian: Trixie},
	{name: "node-26", dir: "node", repo: RepoPrefix + "node", variant: "26", on: "base-trixie", programs: []string{"swarmlab-logd"}},
	{name: "node-20.10", dir: "node", repo: RepoPrefix + "node", variant: "20.10", on: "base", programs: []string{"swarmlab-logd"}},
	{name: "sshnode", on: "base"},
	{name: "registry", on: "base"},
	{name: "redis", on: "base", public: []string{"redis:latest", "redis:7"}},
	{name: "postgres", on: "base", public: []string{"postgres:latest", "postgres:15"}},
	{name: "haproxy", on: "base", public: []string{"haproxy:latest", "haproxy:2.6"}},
	{name: "nginx", on: "base", public: []string{"nginx:latest", "nginx:1.22"}},
	// Debian 13's MariaDB is 11.8 (Debian 12's, 10.11)
	{name: "mariadb", on: "base-trixie", public: []string{"mariadb:latest", "mariadb:11", "mariadb:11.8"}, own: true, programs: []string{"swarmlab-galera"}},
}

var all = sync.OnceValue(func() []Image {
	imgs, err := imagesOf(contexts, specs)
	if err != nil {
		panic("images: " + err.Error())
	}
	return imgs
})

// imagesOf makes the images of specs from their contexts in fsys (one directory per name, or
// spec.dir). An image built on another (spec.on) must come after it, and its Dockerfile must
// start its build FROM ${SWARMLAB_BASE} and from no other image. An image on a Debian release
// gets DebianImage(release) as its build argument DebianArg.
func imagesOf(fsys fs.FS, specs []spec) ([]Image, error) {
	out := make([]Image, 0, len(specs))
	byName := map[string]Image{}
	for _, s := range specs {
		dir := cmp.Or(s.dir, s.name)
		tag, err := HashFS(fsys, dir)
		if err != nil {
			return nil, fmt.Errorf("context %s: %w", dir, err)
		}
		df, err := fs.ReadFile(fsys, dir+"/Dockerfile")
		if err != nil {
			return nil, fmt.Errorf("context %s: %w", dir, err)
		}
		if _, dup := byName[s.name]; dup {
			return nil, fmt.Errorf("two images are called %s", s.name)
		}
		img := Image{
			Name:    s.name,
			Repo:    cmp.Or(s.repo, RepoPrefix+s.name),
			Variant: s.variant,
			Public:  append([]string(nil), s.public...),
			Own:     s.own,
			On:      s.on,
			Debian:  s.debian,
			dir:     dir,

			programs: append([]string(nil), s.programs...),
		}
		if s.debian != "" {
			if s.on != "" {
				return nil, fmt.Errorf("%s is built on %s and on Debian %s: one base only", s.name, s.on, s.debian)
			}
			img.args = map[string]string{DebianArg: DebianImage(s.debian)}
		}
		froms := dockerfileFroms(string(df), img.args)
		if s.on != "" {
			on, ok := byName[s.on]
			if !ok {
				return nil, fmt.Errorf("%s is built on %s, which does not come before it", s.name, s.on)
			}
			if !slices.Equal(froms, []string{"${" + BaseArg + "}"}) {
				return nil, fmt.Errorf("%s/Dockerfile starts FROM %v: an image built on %s starts FROM ${%s} only", dir, froms, s.on, BaseArg)
			}
			img.Base = on.Ref()
			tag = onTag(tag, on.Tag)
		} else {
			if len(froms) > 1 {
				return nil, fmt.Errorf("%s/Dockerfile starts FROM %v: one base image at most", dir, froms)
			}
			if len(froms) == 1 {
				img.Base = froms[0]
			}
			if s.debian != "" && img.Base != DebianImage(s.debian) {
				return nil, fmt.Errorf("%s/Dockerfile starts FROM %v: an image on Debian %s starts FROM ${%s}", dir, froms, s.debian, DebianArg)
			}
			if s.debian != "" {
				// One context, one tag per Debian release.
				tag = onTag(tag, DebianImage(s.debian))
			}
		}
		img.Tag = tag
		for _, prev := range out {
			if prev.Ref() == img.Ref() {
				return nil, fmt.Errorf("%s and %s have the same reference %s", prev.Name, s.name, img.Ref())
			}
		}
		out = append(out, img)
		byName[s.name] = img
	}
	return out, nil
}

// onTag is the tag of an image whose own files hash to own, built on an image tagged baseTag.
func onTag(own, baseTag string) string {
	h := sha256.Sum256([]byte(hashSalt + "on " + baseTag + "\n" + own + "\n"))
	return hex.EncodeToString(h[:])[:12]
}

type fromLine struct{ image, stage string }

func dockerfileFromLines(dockerfile string) []fromLine {
	var out []fromLine
	for _, line := range strings.Split(dockerfile, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && strings.EqualFold(f[0], "FROM") {
			i := 1
			for i < len(f) && strings.HasPrefix(f[i], "--") {
				i++
			}
			if i < len(f) {
				fl := fromLine{image: f[i]}
				if i+2 < len(f) && strings.EqualFold(f[i+1], "AS") {
					fl.stage = f[i+2]
				}
				out = append(out, fl)
			}
		}
	}
	return out
}

// dockerfileFroms returns the images a Dockerfile's build stages start FROM, once each, in order:
// not scratch, nor an earlier stage. A "${ARG}" or "$ARG" in args is replaced by its value; others
// are kept as written.
func dockerfileFroms(dockerfile string, args map[string]string) []string {
	var out []string
	stages := map[string]bool{}
	for _, f := range dockerfileFromLines(dockerfile) {
		img := f.image
		for k, v := range args {
			img = strings.ReplaceAll(img, "${"+k+"}", v)
			img = strings.ReplaceAll(img, "$"+k, v)
		}
		if !strings.EqualFold(img, "scratch") && !stages[strings.ToLower(img)] && !slices.Contains(out, img) {
			out = append(out, img)
		}
		if f.stage != "" {
			stages[strings.ToLower(f.stage)] = true
		}
	}
	return out
}

// All returns every image, in build order.
func All() []Image {
	a := all()
	out := make([]Image, len(a))
	copy(out, a)
	for i := range out {
		out[i].Public = append([]string(nil), a[i].Public...)
		out[i].programs = append([]string(nil), a[i].programs...)
	}
	return out
}

// Get returns the image called name.
func Get(name string) (Image, bool) {
	for _, img := range All() {
		if img.Name == name {
			return img, true
		}
	}
	return Image{}, false
}

func mustGet(name string) Image {
	img, ok := Get(name)
	if !ok {
		panic("images: no image " + name)
	}
	return img
}

// NodeFor is the image of a Swarm node (Docker-in-Docker) that runs Docker engine version
// engine ("26", "20.10"; empty: DefaultEngine). An unknown version is an error that lists the
// known ones.
func NodeFor(engine string) (Image, error) {
	if engine == "" {
		engine = DefaultEngine
	}
	for _, e := range engines {
		if e.version == engine {
			return mustGet(e.node), nil
		}
	}
	return Image{}, fmt.Errorf("no node image runs Docker engine %q (supported: %s)", engine, strings.Join(Engines(), ", "))
}

// Nodes returns the node images, one per engine, the default engine's first.
func Nodes() []Image {
	out := make([]Image, len(engines))
	for i, e := range engines {
		out[i] = mustGet(e.node)
	}
	return out
}

// SSHNode is the image that stands in for a host of your own in the ssh provider's tests.
func SSHNode() Image { return mustGet("sshnode") }

// Registry is the image of the lab's registry.
func Registry() Image { return mustGet("registry") }

// Standard returns the standard images (redis, postgres, haproxy, nginx, mariadb).
func Standard() []Image {
	var out []Image
	for _, img := range All() {
		if img.Standard() {
			out = append(out, img)
		}
	}
	return out
}

// exists tells whether ref is in the engine's image store.
func exists(ctx context.Context, cli client.APIClient, ref string) (bool, int64, error) {
	res, err := cli.ImageInspect(ctx, ref)
	if err == nil {
		return true, res.Size, nil
	}
	if cerrdefs.IsNotFound(err) {
		return false, 0, nil
	}
	return false, 0, fmt.Errorf("inspect image %s: %w", ref, err)
}

// Missing returns the images whose hashed tag is not in the engine (the ones Ensure would
// build, or for standard images, try to pull first).
func Missing(ctx context.Context, cli client.APIClient) ([]Image, error) {
	var out []Image
	for _, img := range All() {
		ok, _, err := exists(ctx, cli, img.Ref())
		if err != nil {
			return nil, err
		}
		if !ok {
			out = append(out, img)
		}
	}
	return out, nil
}

// EnsureBuilt builds img unless its hashed tag already exists, and tags it Latest; the lab
// image it is built on is built first when missing, and a base image's Debian image is pulled
// or made (EnsureDebian). It reports whether it built img. It never pulls a standard image.
func EnsureBuilt(ctx context.Context, cli client.APIClient, img Image) (bool, error) {
	ok, _, err := exists(ctx, cli, img.Ref())
	if err != nil {
		return false, err
	}
	if !ok {
		if img.On != "" {
			if _, err := EnsureBuilt(ctx, cli, mustGet(img.On)); err != nil {
				return false, err
			}
		}
		if img.Debian != "" {
			if err := EnsureDebian(ctx, cli, img.Debian, Options{}); err != nil {
				return false, err
			}
		}
		if err := buildImage(ctx, cli, img, nil); err != nil {
			return false, err
		}
	}
	return !ok, tagLatest(ctx, cli, img)
}

// buildArgs are the build arguments of img: its base's reference, for an image built on another;
// the Debian image, for a base image.
func (i Image) buildArgs() map[string]*string {
	if i.On == "" && len(i.args) == 0 {
		return nil
	}
	out := map[string]*string{}
	for k, v := range i.args {
		out[k] = &v
	}
	if i.On != "" {
		base := i.Base
		out[BaseArg] = &base
	}
	return out
}

func buildImage(ctx context.Context, cli client.APIClient, img Image, out func(format string, args ...any)) error {
	if img.Base != "" && img.Base != "scratch" {
		ok, _, err := exists(ctx, cli, img.Base)
		if err != nil {
			return err
		}
		if !ok {
			how := "Ensure pulls it or makes it with debootstrap"
			if img.On != "" {
				how = "the lab image " + img.On + " is built first"
			}
			return fmt.Errorf("build %s: base image %s is missing (%s)", img.Ref(), img.Base, how)
		}
	}
	tarball, err := contextTar(ctx, cli, img)
	if err != nil {
		return err
	}
	labels := map[string]string{
		"org.swarmlab.image":       img.Name,
		"org.swarmlab.inputs-hash": img.Tag,
	}
	return buildTar(ctx, cli, tarball, img.Ref(), labels, img.buildArgs(), out)
}

func tagLatest(ctx context.Context, cli client.APIClient, img Image) error {
	if _, err := cli.ImageTag(ctx, client.ImageTagOptions{Source: img.Ref(), Target: img.Latest()}); err != nil {
		return fmt.Errorf("tag %s as %s: %w", img.Ref(), img.Latest(), err)
	}
	return nil
}

// Options tunes EnsureWith.
type Options struct {
	// Logf gets one line per image: up to date, pulled, or built (preceded by a line saying
	// that a build starts, since a build takes a while).
	Logf func(format string, args ...any)
	// BuildOutput gets every line of build output; nil drops it.
	BuildOutput func(format string, args ...any)
	// NoPull skips trying the official images of the standard images: they are built.
	NoPull bool
	// PullTimeout bounds each pull attempt; 0 means DefaultPullTimeout.
	PullTimeout time.Duration
	// Only restricts the work to the images of these names (and the lab images they are built
	// on); empty means all.
	Only []string
}

// Ensure makes sure every image exists locally, building what is missing in build order, and
// logging one line per image through logf (nil for silence). For a standard image whose hashed
// tag is missing it first tries to pull the official image (PullRef, DefaultPullTimeout) and
// uses it if that works. It returns, for each image name, the local reference to use:
// "swarmlab/redis:<hash>", or "redis:7" when the official image was pulled.
func Ensure(ctx context.Context, cli client.APIClient, logf func(format string, args ...any)) (map[string]string, error) {
	return EnsureWith(ctx, cli, Options{Logf: logf})
}

// EnsureWith is Ensure with options.
func EnsureWith(ctx context.Context, cli client.APIClient, opts Options) (map[string]string, error) {
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	timeout := opts.PullTimeout
	if timeout <= 0 {
		timeout = DefaultPullTimeout
	}
	want := map[string]bool{}
	for _, n := range opts.Only {
		for n != "" {
			img, ok := Get(n)
			if !ok {
				return nil, fmt.Errorf("images: no image %q", n)
			}
			want[n] = true
			n = img.On // what it is built on comes too
		}
	}

	refs := map[string]string{}
	for _, img := range All() {
		if len(want) > 0 && !want[img.Name] {
			continue
		}
		ok, size, err := exists(ctx, cli, img.Ref())
		if err != nil {
			return refs, err
		}
		if ok {
			if err := tagLatest(ctx, cli, img); err != nil {
				return refs, err
			}
			logf("%-11s up to date  %s (%s)", img.Name, img.Ref(), humanSize(size))
			refs[img.Name] = img.Ref()
			continue
		}

		if img.PullRef() != "" && !opts.NoPull {
			pctx, cancel := context.WithTimeout(ctx, timeout)
			start := time.Now()
			perr := Pull(pctx, cli, img.PullRef())
			cancel()
			if perr == nil {
				logf("%-11s pulled      %s (official image, in %s); not building %s", img.Name, img.PullRef(), since(start), img.Ref())
				refs[img.Name] = img.PullRef()
				continue
			}
			if ctx.Err() != nil {
				return refs, ctx.Err()
			}
			logf("%-11s no pull     %s: %s; building from Debian packages", img.Name, img.PullRef(), firstLine(perr.Error()))
		}

		if img.Debian != "" {
			if err := EnsureDebian(ctx, cli, img.Debian, opts); err != nil {
				return refs, err
			}
		}
		logf("%-11s building    %s from %s ...", img.Name, img.Ref(), img.Base)
		start := time.Now()
		if err := buildImage(ctx, cli, img, opts.BuildOutput); err != nil {
			return refs, err
		}
		if err := tagLatest(ctx, cli, img); err != nil {
			return refs, err
		}
		_, size, _ = exists(ctx, cli, img.Ref())
		logf("%-11s built       %s in %s (%s)", img.Name, img.Ref(), since(start), humanSize(size))
		refs[img.Name] = img.Ref()
	}
	return refs, nil
}

// Pull pulls ref on the engine cli and waits for the end of the stream (where
// registry errors are reported), then checks the image is there.
func Pull(ctx context.Context, cli client.APIClient, ref string) error {
	resp, err := cli.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err != nil {
		return err
	}
	defer resp.Close()
	if err := resp.Wait(ctx); err != nil {
		return err
	}
	ok, _, err := exists(ctx, cli, ref)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("pull %s ended but the image is not there", ref)
	}
	return nil
}

func since(t time.Time) string {
	return time.Since(t).Round(100 * time.Millisecond).String()
}

func humanSize(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.0f MB", float64(n)/1e6)
	default:
		return fmt.Sprintf("%d B", n)
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return s
}
