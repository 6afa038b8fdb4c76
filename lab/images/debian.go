package images

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/client"
)

// debianChanges are the image settings of a Debian image made with debootstrap, as the official
// debian:*-slim images have them.
var debianChanges = []string{
	"ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	`CMD ["bash"]`,
}

// debootstrap makes a minimal Debian root file system of release in dir (which exists and is
// empty), writing its output to log. Tests replace it.
var debootstrap = func(ctx context.Context, release, dir string, log io.Writer) error {
	cmd := exec.CommandContext(ctx, "debootstrap", "--variant=minbase", release, dir)
	cmd.Stdout, cmd.Stderr = log, log
	return cmd.Run()
}

// isRoot tells whether this process runs as root. Tests replace it.
// aptLockWait makes apt-get wait up to 10 minutes for dpkg's lock, held by another apt-get.
const aptLockWait = "DPkg::Lock::Timeout=600"

var isRoot = func() bool { return os.Geteuid() == 0 }

// lookDebootstrap finds the debootstrap program, installing Debian's package with apt-get when it
// is missing and this process may (root, apt-get present). Tests replace it.
var lookDebootstrap = func(ctx context.Context, logf func(string, ...any)) error {
	if _, err := exec.LookPath("debootstrap"); err == nil {
		return nil
	}
	if _, err := exec.LookPath("apt-get"); err != nil || !isRoot() {
		return errors.New("the debootstrap program is missing (install Debian's debootstrap package, as root)")
	}
	logf("%-11s installing  Debian's debootstrap package with apt-get ...", "debootstrap")
	// Another apt (scripts/bootstrap installs the tests' packages while the images build) may
	// hold dpkg's lock: wait for it rather than fail at once.
	install := func() ([]byte, error) {
		cmd := exec.CommandContext(ctx, "apt-get", "-o", aptLockWait, "install", "-y", "-qq", "--no-install-recommends", "debootstrap")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return cmd.CombinedOutput()
	}
	out, err := install()
	if err != nil { // the package lists may lack it: update them once
		if uout, uerr := exec.CommandContext(ctx, "apt-get", "-o", aptLockWait, "update", "-qq").CombinedOutput(); uerr != nil {
			return fmt.Errorf("apt-get update: %v: %s", uerr, lastLines(string(uout), 10))
		}
		out, err = install()
	}
	if err != nil {
		return fmt.Errorf("apt-get install debootstrap: %v: %s", err, lastLines(string(out), 10))
	}
	return nil
}

// EnsureDebian makes sure DebianImage(release) exists on the engine cli: it is there already, or
// it is pulled (bounded by opts.PullTimeout), or else it is made on this machine with
// `debootstrap --variant=minbase` (about 45 s, from the Debian mirror, which needs root) and
// imported through cli, with the official image's PATH and CMD. What it does goes to
// opts.Logf, one line per step. Callers in other processes of this machine wait for one another
// (a lock file under the user's cache directory), so a tree is made once.
func EnsureDebian(ctx context.Context, cli client.APIClient, release string, opts Options) error {
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	ref := DebianImage(release)
	if ok, _, err := exists(ctx, cli, ref); err != nil || ok {
		return err
	}
	if unlock, err := lockFile(filepath.Join(cacheDir(), "debian-"+release+".lock")); err == nil {
		defer unlock()
		if ok, _, err := exists(ctx, cli, ref); err != nil || ok { // made meanwhile
			return err
		}
	}
	timeout := opts.PullTimeout
	if timeout <= 0 {
		timeout = DefaultPullTimeout
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	start := time.Now()
	perr := Pull(pctx, cli, ref)
	cancel()
	if perr == nil {
		logf("%-11s pulled      %s in %s", release, ref, since(start))
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	logf("%-11s no pull     %s: %s; making it with debootstrap (about a minute) ...", release, ref, firstLine(perr.Error()))
	if !isRoot() {
		return fmt.Errorf("cannot pull %s, and making it with debootstrap needs root: run as root, or make the image available (docker pull or docker load %s)", ref, ref)
	}
	if err := lookDebootstrap(ctx, logf); err != nil {
		return fmt.Errorf("cannot pull %s, nor make it: %w", ref, err)
	}
	start = time.Now()
	if err := makeDebian(ctx, cli, release, ref); err != nil {
		return err
	}
	_, size, _ := exists(ctx, cli, ref)
	logf("%-11s made        %s with debootstrap in %s (%s)", release, ref, since(start), humanSize(size))
	return nil
}

// makeDebian runs debootstrap into a temporary directory and imports the tree as ref.
func makeDebian(ctx context.Context, cli client.APIClient, release, ref string) error {
	dir, err := os.MkdirTemp("", "swarmlab-rootfs-"+release+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		return err
	}
	var log bytes.Buffer
	if err := debootstrap(ctx, release, root, &log); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("debootstrap --variant=minbase %s: %v\n--- last lines of its output ---\n%s", release, err, lastLines(log.String(), 20))
	}
	return importTree(ctx, cli, root, ref)
}

// importTree packs directory root with tar (which keeps owners, modes, links and devices as
// they are) and imports it into the engine as image ref.
func importTree(ctx context.Context, cli client.APIClient, root, ref string) error {
	cmd := exec.CommandContext(ctx, "tar", "--numeric-owner", "-C", root, "-c", ".")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("tar of %s: %w", root, err)
	}
	ierr := func() error {
		res, err := cli.ImageImport(ctx, client.ImageImportSource{Source: out, SourceName: "-"}, ref, client.ImageImportOptions{Changes: debianChanges})
		if err != nil {
			return err
		}
		defer res.Close()
		dec := json.NewDecoder(res)
		for {
			var msg struct {
				Error *struct {
					Message string `json:"message"`
				} `json:"errorDetail"`
			}
			if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
				return nil
			} else if err != nil {
				return err
			}
			if msg.Error != nil {
				return errors.New(msg.Error.Message)
			}
		}
	}()
	io.Copy(io.Discard, out) // let tar end if the import stopped reading
	werr := cmd.Wait()
	if ierr != nil {
		return fmt.Errorf("import %s: %w", ref, ierr)
	}
	if werr != nil {
		return fmt.Errorf("tar of %s: %v: %s", root, werr, lastLines(stderr.String(), 5))
	}
	if ok, _, err := exists(ctx, cli, ref); err != nil || !ok {
		return fmt.Errorf("import %s ended but the image is not there (%v)", ref, err)
	}
	return nil
}

// cacheDir is where the package keeps what outlives a process (lock files).
func cacheDir() string {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	dir := filepath.Join(base, "swarmlab")
	os.MkdirAll(dir, 0o755)
	return dir
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
