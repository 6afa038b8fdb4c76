package docker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab/provider/common"
)

// logsEngine is the part of the host engine the kept logs use: volumes,
// and reader containers whose output and exit code the test sets.
type logsEngine struct {
	client.APIClient // nil: any other call panics

	mu        sync.Mutex
	volumes   map[string]map[string]string // name -> labels
	inUse     bool                         // removing a volume conflicts
	created   []client.ContainerCreateOptions
	started   []string
	removed   []string
	listed    []client.Filters
	readers   []string // containers ContainerList answers
	output    []byte   // multiplexed output of a reader
	exitCode  int64
	copiedDir string
}

func (e *logsEngine) VolumeInspect(_ context.Context, name string, _ client.VolumeInspectOptions) (client.VolumeInspectResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	labels, ok := e.volumes[name]
	if !ok {
		return client.VolumeInspectResult{}, fmt.Errorf("no such volume: %w", cerrdefs.ErrNotFound)
	}
	return client.VolumeInspectResult{Volume: volume.Volume{Name: name, Labels: labels}}, nil
}

func (e *logsEngine) VolumeCreate(_ context.Context, o client.VolumeCreateOptions) (client.VolumeCreateResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.volumes[o.Name]; !ok {
		e.volumes[o.Name] = o.Labels
	}
	return client.VolumeCreateResult{}, nil
}

func (e *logsEngine) VolumeRemove(_ context.Context, name string, _ client.VolumeRemoveOptions) (client.VolumeRemoveResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.volumes[name]; !ok {
		return client.VolumeRemoveResult{}, fmt.Errorf("no such volume: %w", cerrdefs.ErrNotFound)
	}
	if e.inUse {
		return client.VolumeRemoveResult{}, fmt.Errorf("volume is in use: %w", cerrdefs.ErrConflict)
	}
	delete(e.volumes, name)
	return client.VolumeRemoveResult{}, nil
}

func (e *logsEngine) VolumeList(_ context.Context, o client.VolumeListOptions) (client.VolumeListResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var r client.VolumeListResult
	for name, labels := range e.volumes {
		if _, ok := labels[common.LabelLogs]; ok {
			r.Items = append(r.Items, volume.Volume{Name: name, Labels: labels})
		}
	}
	return r, nil
}

func (e *logsEngine) ContainerCreate(_ context.Context, o client.ContainerCreateOptions) (client.ContainerCreateResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.created = append(e.created, o)
	return client.ContainerCreateResult{ID: fmt.Sprintf("reader%d", len(e.created))}, nil
}

func (e *logsEngine) ContainerAttach(_ context.Context, id string, o client.ContainerAttachOptions) (client.ContainerAttachResult, error) {
	a, b := net.Pipe()
	go func() { io.Copy(io.Discard, b) }()
	var r client.ContainerAttachResult
	r.Conn, r.Reader = a, bufio.NewReader(bytes.NewReader(e.output))
	return r, nil
}

func (e *logsEngine) ContainerStart(_ context.Context, id string, _ client.ContainerStartOptions) (client.ContainerStartResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.started = append(e.started, id)
	return client.ContainerStartResult{}, nil
}

func (e *logsEngine) ContainerWait(_ context.Context, id string, _ client.ContainerWaitOptions) client.ContainerWaitResult {
	res := make(chan container.WaitResponse, 1)
	res <- container.WaitResponse{StatusCode: e.exitCode}
	return client.ContainerWaitResult{Result: res, Error: make(chan error)}
}

func (e *logsEngine) ContainerRemove(_ context.Context, id string, o client.ContainerRemoveOptions) (client.ContainerRemoveResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !o.RemoveVolumes { // the node image's VOLUME would outlive the reader
		id += " (its anonymous volume kept)"
	}
	e.removed = append(e.removed, id)
	return client.ContainerRemoveResult{}, nil
}

func (e *logsEngine) ContainerList(_ context.Context, o client.ContainerListOptions) (client.ContainerListResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.listed = append(e.listed, o.Filters)
	var r client.ContainerListResult
	for _, id := range e.readers {
		r.Items = append(r.Items, container.Summary{ID: id})
	}
	return r, nil
}

func (e *logsEngine) CopyFromContainer(_ context.Context, id string, o client.CopyFromContainerOptions) (client.CopyFromContainerResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.copiedDir = o.SourcePath
	return client.CopyFromContainerResult{Content: io.NopCloser(strings.NewReader("tar"))}, nil
}

func newLogsEngine(volumes map[string]map[string]string) (*logsEngine, *Provider) {
	e := &logsEngine{volumes: volumes}
	return e, New(e, "swarmlab/node:abc", "swarmlab/registry:def")
}

func mux(stream byte, s string) []byte {
	h := make([]byte, 8, 8+len(s))
	h[0] = stream
	binary.BigEndian.PutUint32(h[4:], uint32(len(s)))
	return append(h, s...)
}

func TestEnsureLogsVolume(t *testing.T) {
	ctx := context.Background()
	var logged []string
	logf := func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) }

	// New: made with its labels, which are not the lab's (down passes it by).
	e, p := newLogsEngine(map[string]map[string]string{})
	if err := p.ensureLogsVolume(ctx, "l1", "r1", logf); err != nil {
		t.Fatal(err)
	}
	labels := e.volumes["swarmlab-logs-l1"]
	if labels[common.LabelLogs] != "l1" || labels[common.LabelRun] != "r1" {
		t.Errorf("labels %v", labels)
	}
	if _, ok := labels[common.LabelLab]; ok {
		t.Error("the logs volume carries the lab label: down would remove it, and the lab would look up after down")
	}

	// A former lab's logs are replaced.
	e, p = newLogsEngine(map[string]map[string]string{"swarmlab-logs-l1": {common.LabelLogs: "l1", common.LabelRun: "old"}})
	if err := p.ensureLogsVolume(ctx, "l1", "r2", logf); err != nil {
		t.Fatal(err)
	}
	if e.volumes["swarmlab-logs-l1"][common.LabelRun] != "r2" {
		t.Errorf("the former lab's logs were not replaced: %v", e.volumes)
	}
	// ... unless they are in use: kept, and said.
	e, p = newLogsEngine(map[string]map[string]string{"swarmlab-logs-l1": {common.LabelLogs: "l1", common.LabelRun: "old"}})
	e.inUse, logged = true, nil
	if err := p.ensureLogsVolume(ctx, "l1", "r2", logf); err != nil {
		t.Fatal(err)
	}
	if len(logged) != 1 || !strings.Contains(logged[0], "keeping the logs of the former lab l1") {
		t.Errorf("logged %q", logged)
	}
	// A volume of that name that is not kept logs is not touched.
	e, p = newLogsEngine(map[string]map[string]string{"swarmlab-logs-l1": {}})
	if err := p.ensureLogsVolume(ctx, "l1", "r2", logf); err == nil || !strings.Contains(err.Error(), "is not the kept logs") {
		t.Errorf("err = %v", err)
	}
}

func TestReadLogsRunsTheReaderOnTheVolume(t *testing.T) {
	e, p := newLogsEngine(map[string]map[string]string{"swarmlab-logs-l1": {common.LabelLogs: "l1"}})
	e.output = append(mux(1, "app_web.1.x@w1 | hello\n"), mux(2, "app_web.1.x@w1 | oops\n")...)
	var out, errb bytes.Buffer
	if err := p.ReadLogs(context.Background(), "l1", []string{"--tail", "5", "web"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if out.String() != "app_web.1.x@w1 | hello\n" || errb.String() != "app_web.1.x@w1 | oops\n" {
		t.Errorf("stdout %q, stderr %q", out.String(), errb.String())
	}
	if len(e.created) != 1 {
		t.Fatalf("created %d containers", len(e.created))
	}
	c := e.created[0]
	if c.Config.Image != "swarmlab/node:abc" || !slices.Equal(c.Config.Cmd, []string{"swarmlab-logd", "logs", "--stdin-eof", "--tail", "5", "web"}) {
		t.Errorf("reader runs %s %v", c.Config.Image, c.Config.Cmd)
	}
	want := mount.Mount{Type: mount.TypeVolume, Source: "swarmlab-logs-l1", Target: common.LogsDir, ReadOnly: true}
	if !slices.Equal(c.HostConfig.Mounts, []mount.Mount{want}) || c.HostConfig.NetworkMode != "none" {
		t.Errorf("reader mounts %+v, network %q", c.HostConfig.Mounts, c.HostConfig.NetworkMode)
	}
	if _, ok := c.Config.Labels[common.LabelLab]; ok || c.Config.Labels[common.LabelLogs] != "l1" {
		t.Errorf("reader labels %v", c.Config.Labels)
	}
	if !c.Config.OpenStdin || !c.Config.StdinOnce || !c.HostConfig.AutoRemove {
		t.Error("the reader's stdin is not attached, or it is not removed when it ends: a reader whose client went away would follow forever, or stay")
	}
	if !slices.Equal(e.started, []string{"reader1"}) || !slices.Equal(e.removed, []string{"reader1"}) {
		t.Errorf("started %v, removed %v", e.started, e.removed)
	}
}

func TestReadLogsFailures(t *testing.T) {
	// The reader's own message is the error, not a line on stderr.
	e, p := newLogsEngine(map[string]map[string]string{"swarmlab-logs-l1": {common.LabelLogs: "l1"}})
	e.output = mux(2, "swarmlab-logd: no service or node \"x\" in the logs (services: app_web; nodes: m1)\n")
	e.exitCode = 1
	var out, errb bytes.Buffer
	err := p.ReadLogs(context.Background(), "l1", []string{"x"}, &out, &errb)
	if err == nil || err.Error() != `no service or node "x" in the logs (services: app_web; nodes: m1)` || errb.Len() != 0 {
		t.Errorf("err %v, stderr %q", err, errb.String())
	}
	if !slices.Equal(e.removed, []string{"reader1"}) {
		t.Errorf("removed %v", e.removed)
	}

	// No volume: no container (mounting would make an empty volume).
	e, p = newLogsEngine(map[string]map[string]string{})
	err = p.ReadLogs(context.Background(), "gone", []string{"web"}, &out, &errb)
	if !errors.Is(err, common.ErrNoLogs) || len(e.created) != 0 {
		t.Errorf("err %v, created %d", err, len(e.created))
	}
	if _, err := p.CopyLogs(context.Background(), "gone"); !errors.Is(err, common.ErrNoLogs) {
		t.Errorf("CopyLogs: %v", err)
	}
}

func TestCopyLogs(t *testing.T) {
	e, p := newLogsEngine(map[string]map[string]string{"swarmlab-logs-l1": {common.LabelLogs: "l1"}})
	rc, err := p.CopyLogs(context.Background(), "l1")
	if err != nil {
		t.Fatal(err)
	}
	if e.copiedDir != common.LogsDir || len(e.started) != 0 {
		t.Errorf("copied %q, started %v (a copy needs no running container)", e.copiedDir, e.started)
	}
	rc.Close()
	rc.Close()
	if !slices.Equal(e.removed, []string{"reader1"}) {
		t.Errorf("removed %v", e.removed)
	}
}

func TestPruneAndKeptLogs(t *testing.T) {
	ctx := context.Background()
	e, p := newLogsEngine(map[string]map[string]string{
		"swarmlab-logs-a": {common.LabelLogs: "a"}, "swarmlab-logs-b": {common.LabelLogs: "b"},
		"swarmlab-registry-cache": {common.LabelCache: "registry"},
	})
	kept, err := p.KeptLogs(ctx)
	if err != nil || !slices.Equal(kept, []string{"a", "b"}) {
		t.Fatalf("KeptLogs = %v, %v", kept, err)
	}
	e.readers = []string{"left-reader"}
	if err := p.PruneLogs(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.volumes["swarmlab-logs-a"]; ok || len(e.volumes) != 2 {
		t.Errorf("volumes left %v", e.volumes)
	}
	if !slices.Equal(e.removed, []string{"left-reader"}) {
		t.Errorf("removed %v: the readers hold the volume", e.removed)
	}
	if _, ok := e.listed[0]["label"][common.LabelLogs+"=a"]; !ok {
		t.Errorf("listed readers with %v", e.listed[0])
	}
	if err := p.PruneLogs(ctx, "a"); !errors.Is(err, common.ErrNoLogs) {
		t.Errorf("pruning again: %v", err)
	}
	e.inUse = true
	if err := p.PruneLogs(ctx, "b"); err == nil || !strings.Contains(err.Error(), "swarmlab down --purge b") {
		t.Errorf("pruning the logs of a lab that is up: %v", err)
	}
}
