package images

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/moby/client"
)

// A context may hold the sources of Go programs an image needs (the node's log collector,
// node/swarmlab-logd): a directory of one main package that imports the standard library only.
// Its files are build inputs like any other (they make the image's tag; its _test.go files do
// not), and the build context sent to the engine holds, instead of that directory, a file of the
// same name: the program, compiled static for the engine's platform. So the image needs no Go
// toolchain in it and no module source around it: the embedded sources and the go command are
// enough, wherever the lab's binary runs.

// programGoVersion is the go line of the module a program is built as.
const programGoVersion = "1.22"

// contextTar packs img's build context, with its Go programs built.
func contextTar(ctx context.Context, cli client.APIClient, img Image) ([]byte, error) {
	files, err := readContext(contexts, img.dir)
	if err != nil || len(img.programs) == 0 {
		if err != nil {
			return nil, err
		}
		return tarFiles(files)
	}
	arch, err := engineArch(ctx, cli)
	if err != nil {
		return nil, err
	}
	for _, prog := range img.programs {
		bin, err := buildProgram(ctx, contexts, path.Join(img.dir, prog), arch)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", img.Name, err)
		}
		files = withProgram(files, prog, bin)
	}
	return tarFiles(files)
}

// withProgram replaces the directory prog of files (the program's sources) with the program.
func withProgram(files []contextFile, prog string, bin []byte) []contextFile {
	var out []contextFile
	placed := false
	for _, f := range files {
		if f.rel == prog || strings.HasPrefix(f.rel, prog+"/") {
			if !placed {
				out = append(out, contextFile{rel: prog, mode: 0o755, data: bin})
				placed = true
			}
			continue
		}
		out = append(out, f)
	}
	if !placed {
		out = append(out, contextFile{rel: prog, mode: 0o755, data: bin})
	}
	return out
}

// buildProgram compiles the Go files of directory dir of fsys (tests left out) as a module of
// their own, static (CGO off), trimmed, for linux/arch, and returns the program.
func buildProgram(ctx context.Context, fsys fs.FS, dir, arch string) ([]byte, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("program %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp("", "swarmlab-program-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	name := path.Base(dir)
	n := 0
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		data, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(tmp, e.Name()), data, 0o644); err != nil {
			return nil, err
		}
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("program %s: no Go files", dir)
	}
	mod := fmt.Sprintf("module swarmlab.local/%s\n\ngo %s\n", name, programGoVersion)
	if err := os.WriteFile(filepath.Join(tmp, "go.mod"), []byte(mod), 0o644); err != nil {
		return nil, err
	}
	out := filepath.Join(tmp, name+".bin")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, ".")
	cmd.Dir = tmp
	// Nothing of the caller's module, workspace or flags: these files alone.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch, "GOWORK=off", "GOFLAGS=", "GOTOOLCHAIN=local", "GOPROXY=off")
	if msg, err := cmd.CombinedOutput(); err != nil {
		if errors := strings.TrimSpace(string(msg)); errors != "" {
			return nil, fmt.Errorf("program %s: go build: %v\n%s", dir, err, errors)
		}
		return nil, fmt.Errorf("program %s: go build: %v (the go command builds it: is it on PATH?)", dir, err)
	}
	return os.ReadFile(out)
}
