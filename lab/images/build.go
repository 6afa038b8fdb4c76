package images

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/client"
)

// hashSalt changes every tag when the way contexts are hashed or packed changes.
const hashSalt = "swarmlab-build-context/v1\n"

// tailLines is how many lines of build output a build error carries.
const tailLines = 25

// contextMTime is the modification time of every file in a build context, so that the same
// files always give the same tar (and the same classic-builder cache keys).
var contextMTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

type contextFile struct {
	rel  string // slash-separated, relative to the context directory
	dir  bool
	mode int64
	data []byte
}

// readContext lists the directory dir of fsys in lexical order (fs.WalkDir's order). A file is
// executable if its mode says so (on-disk directories) or if it starts with "#!" (go:embed
// forgets modes): build contexts need no COPY --chmod, which the classic builder lacks. Go test
// files are left out: they are no build input.
func readContext(fsys fs.FS, dir string) ([]contextFile, error) {
	if dir == "" {
		dir = "."
	}
	var files []contextFile
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			if !d.IsDir() {
				return fmt.Errorf("%s is not a directory", dir)
			}
			return nil
		}
		rel := strings.TrimPrefix(p, dir+"/")
		if dir == "." {
			rel = p
		}
		if d.IsDir() {
			files = append(files, contextFile{rel: rel, dir: true, mode: 0o755})
			return nil
		}
		if !d.Type().IsRegular() && d.Type()&fs.ModeSymlink == 0 {
			return nil // sockets, devices, pipes: not build inputs
		}
		if strings.HasSuffix(rel, "_test.go") {
			return nil // the tests of a Go program of the context (programs.go)
		}
		data, err := fs.ReadFile(fsys, p) // follows symlinks of on-disk directories
		if err != nil {
			return err
		}
		mode := int64(0o644)
		info, err := fs.Stat(fsys, p)
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o111 != 0 || bytes.HasPrefix(data, []byte("#!")) {
			mode = 0o755
		}
		files = append(files, contextFile{rel: rel, mode: mode, data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read build context %s: %w", dir, err)
	}
	return files, nil
}

// HashFS returns the tag that identifies the build inputs held in directory dir of fsys: the
// first 12 hex digits of a sha256 over every file's path, mode and content. The same files give
// the same tag on every machine; changing, adding, removing or renaming a file changes it.
func HashFS(fsys fs.FS, dir string) (string, error) {
	files, err := readContext(fsys, dir)
	if err != nil {
		return "", err
	}
	return hashFiles(files), nil
}

func hashFiles(files []contextFile) string {
	h := sha256.New()
	io.WriteString(h, hashSalt)
	for _, f := range files {
		if f.dir {
			fmt.Fprintf(h, "dir %q\n", f.rel)
			continue
		}
		fmt.Fprintf(h, "file %q %o %d\n", f.rel, f.mode, len(f.data))
		h.Write(f.data)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// TarFS packs directory dir of fsys as a build context (a tar stream, paths relative to dir,
// fixed owner and time).
func TarFS(fsys fs.FS, dir string) ([]byte, error) {
	files, err := readContext(fsys, dir)
	if err != nil {
		return nil, err
	}
	return tarFiles(files)
}

func tarFiles(files []contextFile) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{
			Name:    f.rel,
			Mode:    f.mode,
			ModTime: contextMTime,
			Format:  tar.FormatPAX,
		}
		if f.dir {
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
		} else {
			hdr.Typeflag = tar.TypeReg
			hdr.Size = int64(len(f.data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if !f.dir {
			if _, err := tw.Write(f.data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// BuildContext builds directory dir of fsys (an embedded or an on-disk directory holding a
// Dockerfile) with the engine's classic builder and tags the result ref. Every line of build
// output goes to logf when logf is not nil. A failed build returns an error that carries the
// last lines of the output.
func BuildContext(ctx context.Context, cli client.APIClient, fsys fs.FS, dir, ref string, logf func(format string, args ...any)) error {
	tarball, err := TarFS(fsys, dir)
	if err != nil {
		return err
	}
	return buildTar(ctx, cli, tarball, ref, nil, nil, logf)
}

func buildTar(ctx context.Context, cli client.APIClient, tarball []byte, ref string, labels map[string]string, args map[string]*string, logf func(format string, args ...any)) error {
	res, err := cli.ImageBuild(ctx, bytes.NewReader(tarball), client.ImageBuildOptions{
		Tags:        []string{ref},
		Dockerfile:  "Dockerfile",
		Remove:      true,
		ForceRemove: true,
		Version:     build.BuilderV1,
		Labels:      labels,
		BuildArgs:   args,
	})
	if err != nil {
		return fmt.Errorf("build %s: %w", ref, err)
	}
	defer res.Body.Close()

	var tail []string
	var partial string // output comes in chunks that do not always end a line
	emit := func(line string) {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" {
			return
		}
		tail = append(tail, line)
		if len(tail) > tailLines {
			tail = tail[len(tail)-tailLines:]
		}
		if logf != nil {
			logf("%s", line)
		}
	}
	failed := func(msg string) error {
		if partial != "" {
			emit(partial)
		}
		if len(tail) == 0 {
			return fmt.Errorf("build %s: %s", ref, msg)
		}
		return fmt.Errorf("build %s: %s\n--- last lines of build output ---\n%s", ref, msg, strings.Join(tail, "\n"))
	}

	dec := json.NewDecoder(res.Body)
	for {
		var msg struct {
			Stream string `json:"stream"`
			Status string `json:"status"`
			Error  *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
			ErrorText string `json:"error"`
		}
		if err := dec.Decode(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			if ctx.Err() != nil {
				return failed(ctx.Err().Error())
			}
			return failed("reading build output: " + err.Error())
		}
		if msg.Error != nil || msg.ErrorText != "" {
			text := msg.ErrorText
			if msg.Error != nil && msg.Error.Message != "" {
				text = msg.Error.Message
			}
			return failed(strings.TrimSpace(text))
		}
		out := msg.Stream
		if out == "" && msg.Status != "" {
			out = msg.Status + "\n"
		}
		lines := strings.Split(partial+out, "\n")
		partial = lines[len(lines)-1]
		for _, l := range lines[:len(lines)-1] {
			emit(l)
		}
	}
	if partial != "" {
		emit(partial)
		partial = ""
	}
	if ctx.Err() != nil {
		return failed(ctx.Err().Error())
	}
	// The stream ended without an error: the tag must now exist.
	if _, err := cli.ImageInspect(ctx, ref); err != nil {
		if cerrdefs.IsNotFound(err) {
			return failed("build output ended but the image is not there")
		}
		return fmt.Errorf("build %s: %w", ref, err)
	}
	return nil
}
