package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab/provider/common"
)

// The lab's kept logs (common.LogsVolume): one volume that every node
// mounts at common.LogsDir, and that is read back through the host engine
// only, by a throwaway container of the node image that mounts it, so that
// this machine needs no access to the engine's filesystem.

// logsMount mounts the lab's logs volume in a node.
func logsMount(lab string) mount.Mount {
	return mount.Mount{Type: mount.TypeVolume, Source: common.LogsVolume(lab), Target: common.LogsDir}
}

// ensureLogsVolume makes the lab's logs volume before its nodes start. The
// logs a former lab of the same name kept are replaced; if they cannot be
// (a reader has them open) the new lab's are added to them.
func (p *Provider) ensureLogsVolume(ctx context.Context, lab, run string, logf func(string, ...any)) error {
	name := common.LogsVolume(lab)
	if v, err := p.host.VolumeInspect(ctx, name, client.VolumeInspectOptions{}); err == nil {
		if v.Volume.Labels[common.LabelLogs] != lab {
			return fmt.Errorf("volume %s exists and is not the kept logs of a lab %s (label %s); remove it", name, lab, common.LabelLogs)
		}
		if _, err := p.host.VolumeRemove(ctx, name, client.VolumeRemoveOptions{}); err != nil {
			logf("keeping the logs of the former lab %s in %s (%v): this lab's are added", lab, name, err)
		} else {
			logf("removed the logs kept of the former lab %s", lab)
		}
	} else if !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("inspecting volume %s: %w", name, err)
	}
	_, err := p.host.VolumeCreate(ctx, client.VolumeCreateOptions{
		Name: name, Labels: map[string]string{common.LabelLogs: lab, common.LabelRun: run},
	})
	if err != nil {
		return fmt.Errorf("creating volume %s: %w", name, err)
	}
	return nil
}

// KeptLogs names the labs whose logs the host engine keeps.
func (p *Provider) KeptLogs(ctx context.Context) ([]string, error) {
	vs, err := p.host.VolumeList(ctx, client.VolumeListOptions{Filters: make(client.Filters).Add("label", common.LabelLogs)})
	if err != nil {
		return nil, fmt.Errorf("listing kept logs: %w", err)
	}
	var out []string
	for _, v := range vs.Items {
		if lab := v.Labels[common.LabelLogs]; lab != "" && v.Name == common.LogsVolume(lab) {
			out = append(out, lab)
		}
	}
	sort.Strings(out)
	return out, nil
}

// checkLogs fails with common.ErrNoLogs when lab has no logs volume (a
// volume mount would make an empty one).
func (p *Provider) checkLogs(ctx context.Context, lab string) error {
	_, err := p.host.VolumeInspect(ctx, common.LogsVolume(lab), client.VolumeInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return fmt.Errorf("lab %s: %w (volume %s)", lab, common.ErrNoLogs, common.LogsVolume(lab))
	}
	if err != nil {
		return fmt.Errorf("inspecting volume %s: %w", common.LogsVolume(lab), err)
	}
	return nil
}

// reader creates (does not start) a container of the node image that
// mounts lab's logs volume read-only and runs cmd.
func (p *Provider) reader(ctx context.Context, lab string, cmd []string, stdin bool) (string, error) {
	if err := p.checkLogs(ctx, lab); err != nil {
		return "", err
	}
	res, err := p.host.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{
			Image:     p.nodeImage,
			Cmd:       cmd,
			Labels:    map[string]string{common.LabelLogs: lab, common.LabelComponent: common.ComponentLogsReader},
			OpenStdin: stdin, StdinOnce: stdin, AttachStdin: stdin,
			AttachStdout: true, AttachStderr: true,
		},
		HostConfig: &container.HostConfig{
			// A started reader goes when it ends, even if this process
			// went first (its stdin then ends, and so does it).
			AutoRemove:  stdin,
			NetworkMode: "none",
			Mounts:      []mount.Mount{{Type: mount.TypeVolume, Source: common.LogsVolume(lab), Target: common.LogsDir, ReadOnly: true}},
		},
	})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return "", fmt.Errorf("reading the logs of lab %s needs the node image %s: run scripts/bootstrap: %w", lab, p.nodeImage, err)
		}
		return "", fmt.Errorf("creating a reader of the logs of lab %s: %w", lab, err)
	}
	return res.ID, nil
}

// removeReader removes a reader container, on a context of its own: the
// caller's may be what ended the read.
func (p *Provider) removeReader(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// RemoveVolumes: the node image declares /var/lib/docker a volume, so
	// each reader gets an anonymous one, which would otherwise outlive it.
	p.host.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
}

// ReadLogs runs `swarmlab-logd logs ARGS...` (the node image's reader) on
// lab's logs volume and copies its output to stdout and stderr until it
// ends, or ctx does (which stops it: how -f ends). A failure of the reader
// (an unknown service) is the error, not a line on stderr.
func (p *Provider) ReadLogs(ctx context.Context, lab string, args []string, stdout, stderr io.Writer) error {
	cmd := append([]string{"swarmlab-logd", "logs", "--stdin-eof"}, args...)
	id, err := p.reader(ctx, lab, cmd, true)
	if err != nil {
		return err
	}
	defer p.removeReader(id)
	att, err := p.host.ContainerAttach(ctx, id, client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		return fmt.Errorf("attaching to the reader of the logs of lab %s: %w", lab, err)
	}
	defer att.Close()
	// Asked before the start: a reader that ends at once is removed at once.
	wait := p.host.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionRemoved})
	if _, err := p.host.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("starting the reader of the logs of lab %s: %w", lab, err)
	}
	errs := &readerErrors{w: stderr}
	copied := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(stdout, errs, att.Reader)
		copied <- err
	}()
	select {
	case <-ctx.Done():
		att.Close()
		<-copied
		return nil
	case err := <-copied:
		errs.flush()
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("reading the logs of lab %s: %w", lab, err)
		}
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-wait.Error:
		return fmt.Errorf("waiting for the reader of the logs of lab %s: %w", lab, err)
	case res := <-wait.Result:
		if res.StatusCode == 0 {
			return nil
		}
		if msg := errs.message(); msg != "" {
			return errors.New(msg)
		}
		return fmt.Errorf("the reader of the logs of lab %s exited with %d", lab, res.StatusCode)
	}
}

// readerErrors passes the reader's stderr through, but for its own
// messages ("swarmlab-logd: ..."), which become the error.
type readerErrors struct {
	w       io.Writer
	mu      sync.Mutex
	partial []byte
	own     []string
}

func (r *readerErrors) Write(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(b)
	r.partial = append(r.partial, b...)
	for {
		i := bytes.IndexByte(r.partial, '\n')
		if i < 0 {
			return n, nil
		}
		r.line(r.partial[:i+1])
		r.partial = r.partial[i+1:]
	}
}

func (r *readerErrors) line(l []byte) {
	if msg, ok := strings.CutPrefix(string(l), "swarmlab-logd: "); ok {
		r.own = append(r.own, strings.TrimSpace(msg))
		return
	}
	r.w.Write(l)
}

func (r *readerErrors) flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.partial) > 0 {
		r.line(r.partial)
		r.partial = nil
	}
}

func (r *readerErrors) message() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.own, "; ")
}

// CopyLogs returns lab's logs directory as a tar stream, its entries under
// one top directory, read through a container that is created and never
// started; Close removes it.
func (p *Provider) CopyLogs(ctx context.Context, lab string) (io.ReadCloser, error) {
	id, err := p.reader(ctx, lab, []string{"true"}, false)
	if err != nil {
		return nil, err
	}
	res, err := p.host.CopyFromContainer(ctx, id, client.CopyFromContainerOptions{SourcePath: common.LogsDir})
	if err != nil {
		p.removeReader(id)
		return nil, fmt.Errorf("copying the logs of lab %s: %w", lab, err)
	}
	return &removeOnClose{ReadCloser: res.Content, remove: func() { p.removeReader(id) }}, nil
}

type removeOnClose struct {
	io.ReadCloser
	remove func()
	once   sync.Once
}

func (r *removeOnClose) Close() error {
	err := r.ReadCloser.Close()
	r.once.Do(r.remove)
	return err
}

// PruneLogs removes lab's kept logs: its readers, then its logs volume. A
// lab that is up still writes there: that is an error saying so.
func (p *Provider) PruneLogs(ctx context.Context, lab string) error {
	f := make(client.Filters).Add("label", common.LabelLogs+"="+lab)
	cs, err := p.host.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return fmt.Errorf("listing the readers of the logs of lab %s: %w", lab, err)
	}
	for _, c := range cs.Items {
		if err := p.removeContainer(ctx, c.ID); err != nil {
			return err
		}
	}
	name := common.LogsVolume(lab)
	if _, err := p.host.VolumeRemove(ctx, name, client.VolumeRemoveOptions{}); err != nil {
		switch {
		case cerrdefs.IsNotFound(err):
			return fmt.Errorf("lab %s: %w", lab, common.ErrNoLogs)
		case cerrdefs.IsConflict(err):
			return fmt.Errorf("the logs of lab %s are in use (is the lab up? swarmlab down --purge %s removes it and its logs): %w", lab, lab, err)
		default:
			return fmt.Errorf("removing volume %s: %w", name, err)
		}
	}
	return nil
}
