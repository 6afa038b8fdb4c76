package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/moby/moby/client"
)

// GoImage is an image holding static Go programs and nothing else: no base
// image, no shell, nothing to pull.
type GoImage struct {
	// Repo names the image, e.g. "swarmlab/vote".
	Repo string
	// ModuleDir is the directory go build runs in (the module root).
	ModuleDir string
	// Packages are main packages relative to ModuleDir ("./app/vote/cmd/vote").
	// Each becomes /<its directory's name> in the image.
	Packages []string
	// LDFlags are added to the linker flags, e.g. "-X main.version=v2".
	LDFlags string
}

// BuildGo compiles img's packages for the engine's platform (CGO off,
// -trimpath, so the same source gives the same bytes) and builds them into a
// FROM scratch image whose entrypoint is the first program. The tag is a hash
// of the binaries: unchanged programs give the same tag and no new image.
//
// The programs are written to a directory kept per image (GoBuildDir), so
// that go build itself sees they are up to date and does not link them
// again: about 0.1 s instead of 1 s per image on a warm machine.
func BuildGo(ctx context.Context, cli client.APIClient, img GoImage) (string, error) {
	if len(img.Packages) == 0 {
		return "", fmt.Errorf("image %s: no Go packages to build", img.Repo)
	}
	arch, err := engineArch(ctx, cli)
	if err != nil {
		return "", err
	}
	dir, release, err := outputDir(img, arch)
	if err != nil {
		return "", err
	}
	defer release()

	args := []string{"build", "-trimpath", "-ldflags", strings.TrimSpace("-s -w " + img.LDFlags), "-o", dir + string(os.PathSeparator)}
	cmd := exec.CommandContext(ctx, "go", append(args, img.Packages...)...)
	cmd.Dir = img.ModuleDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("image %s: go build %s: %v\n%s", img.Repo, strings.Join(img.Packages, " "), err, out)
	}
	entry := filepath.Base(strings.TrimSuffix(img.Packages[0], "/"))
	dockerfile := fmt.Sprintf("FROM scratch\nCOPY . /\nENTRYPOINT [\"/%s\"]\n", entry)
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return "", err
	}
	files, err := readContext(os.DirFS(dir), ".")
	if err != nil {
		return "", err
	}
	ref := img.Repo + ":" + hashFiles(files)
	if ok, _, err := exists(ctx, cli, ref); err != nil || ok {
		return ref, err
	}
	tarball, err := tarFiles(files)
	if err != nil {
		return "", err
	}
	if err := buildTar(ctx, cli, tarball, ref, nil, nil, nil); err != nil {
		return "", err
	}
	return ref, nil
}

// engineArch maps the engine's architecture to GOARCH.
func engineArch(ctx context.Context, cli client.APIClient) (string, error) {
	info, err := cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		return "", fmt.Errorf("reading the engine's architecture: %w", err)
	}
	switch a := info.Info.Architecture; a {
	case "x86_64", "amd64":
		return "amd64", nil
	case "aarch64", "arm64":
		return "arm64", nil
	default:
		return "", fmt.Errorf("engine architecture %q is not supported for Go images", a)
	}
}

// ModuleRoot finds the directory holding go.mod at or above dir.
func ModuleRoot(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod at or above %s", dir)
		}
		d = parent
	}
}

// GoBuildDir is where BuildGo keeps the programs of each Go image between
// builds.
func GoBuildDir() string {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "swarmlab", "gobuild")
}

// outputKey names the output directory of an image: everything that makes
// go build write different programs into it, but not the sources (go build
// compares those itself).
func outputKey(img GoImage, arch string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%q %q %q %q %q", img.Repo, img.ModuleDir, img.Packages, img.LDFlags, arch)
	return filepath.Base(img.Repo) + "-" + hex.EncodeToString(h.Sum(nil))[:16]
}

// outputDir returns the image's output directory, locked against another
// build of the same image (another process), and the func that unlocks it.
// Where files cannot be locked, each build gets a fresh directory.
func outputDir(img GoImage, arch string) (string, func(), error) {
	root := GoBuildDir()
	if err := os.MkdirAll(root, 0o755); err == nil {
		dir := filepath.Join(root, outputKey(img, arch))
		if unlock, err := lockFile(dir + ".lock"); err == nil {
			if err := os.MkdirAll(dir, 0o755); err == nil {
				// Only the image's programs and its Dockerfile belong in
				// the context: clear what an interrupted build left.
				cleanOutput(dir, img.Packages)
				return dir, unlock, nil
			}
			unlock()
		}
	}
	dir, err := os.MkdirTemp("", "swarmlab-goimage-")
	if err != nil {
		return "", nil, err
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

// cleanOutput removes every file of dir that is not one of the programs.
func cleanOutput(dir string, pkgs []string) {
	keep := map[string]bool{}
	for _, p := range pkgs {
		keep[filepath.Base(strings.TrimSuffix(p, "/"))] = true
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !keep[e.Name()] {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}
