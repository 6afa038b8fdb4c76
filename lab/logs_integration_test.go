//go:build integration

package lab_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab"
	"github.com/swarmlab/swarmlab/lab/labtest"
	"github.com/swarmlab/swarmlab/lab/provider"
	"github.com/swarmlab/swarmlab/lab/provider/common"
	"github.com/swarmlab/swarmlab/lab/topology"
	"github.com/swarmlab/swarmlab/lab/wait"
)

const logsTopology = `apiVersion: swarmlab.dev/v1alpha1
kind: Topology
name: it-logs
swarm:
  dispatcherHeartbeat: 1s
nodes:
  - {name: m1, role: manager}
  - {name: w1, role: worker}
`

// readLogs is lab.Logs into strings.
func readLogs(ctx context.Context, name, target string, o lab.LogsOptions) (string, string, error) {
	var out, errb bytes.Buffer
	err := lab.Logs(ctx, name, target, o, &out, &errb)
	return out.String(), errb.String(), err
}

// The logs of a task outlive it: a task on a worker that is killed is read
// afterwards, and after down, through the host engine only, until the
// logs are pruned.
func TestLogsOutliveAKilledNodeAndDown(t *testing.T) {
	topo, err := topology.Parse([]byte(logsTopology), "it-logs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	topo.Default()
	if _, err := topo.Validate(); err != nil {
		t.Fatal(err)
	}
	const name = "it-logs"
	lab.PruneLogs(context.Background(), name) // left by a killed run
	l := labtest.Up(t, topo, name)
	t.Cleanup(func() { lab.PruneLogs(context.Background(), name) })
	ctx := context.Background()

	// A service on w1 whose task says something known: redis's "Ready".
	mgr, _, err := l.Manager(ctx)
	if err != nil {
		t.Fatal(err)
	}
	created, err := mgr.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: "it_kv"},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: "redis"},
			Placement:     &swarm.Placement{Constraints: []string{"node.hostname==w1"}},
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var taskID string
	_, err = wait.For(ctx, "the task of it_kv to run on w1", 2*time.Minute, time.Second, func(ctx context.Context) wait.Result {
		ts, err := mgr.TaskList(ctx, client.TaskListOptions{Filters: make(client.Filters).Add("service", created.ID)})
		if err != nil {
			return wait.Continue("%v", err)
		}
		for _, task := range ts.Items {
			if task.Status.State == swarm.TaskStateRunning {
				taskID = task.ID
				return wait.Done(task.ID)
			}
		}
		return wait.Continue("%d tasks, none running", len(ts.Items))
	})
	if err != nil {
		t.Fatal(err)
	}
	prefix := "it_kv.1." + taskID[:12] + "@w1"
	const ready = "Ready to accept connections"
	// "kv": the service without its stack's prefix.
	_, err = wait.For(ctx, "the task's log to say "+ready, time.Minute, 500*time.Millisecond, func(ctx context.Context) wait.Result {
		out, _, err := readLogs(ctx, name, "kv", lab.LogsOptions{})
		if err != nil {
			return wait.Continue("%v", err)
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, prefix+" | ") && strings.Contains(line, ready) {
				return wait.Done(line)
			}
		}
		return wait.Continue("%q", out)
	})
	if err != nil {
		t.Fatal(err)
	}

	// -f ends with its ctx, and leaves no reader behind.
	fctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	out, _, err := readLogs(fctx, name, "it_kv", lab.LogsOptions{Follow: true, Tail: 1, Timestamps: true})
	cancel()
	if err != nil || strings.Count(out, "\n") < 1 || !strings.Contains(out, prefix) {
		t.Errorf("logs -f --tail 1 -t: %v, %q", err, out)
	}
	noReaders(t, l)

	// Kill w1: its task's log stays.
	if err := l.Do(ctx, "w1", provider.Kill); err != nil {
		t.Fatal(err)
	}
	if out, _, err := readLogs(ctx, name, "kv", lab.LogsOptions{}); err != nil || !strings.Contains(out, ready) {
		t.Errorf("after w1 was killed: %v, %q", err, out)
	}
	if out, _, err := readLogs(ctx, name, "w1", lab.LogsOptions{}); err != nil || !strings.Contains(out, "Starting up") {
		t.Errorf("w1's dockerd log after w1 was killed: %v, %.300q", err, out)
	}
	// Started again, w1's collector takes its log up again.
	if err := l.Do(ctx, "w1", provider.Start); err != nil {
		t.Fatal(err)
	}
	_, err = wait.For(ctx, "w1's dockerd log to show its second start", time.Minute, time.Second, func(ctx context.Context) wait.Result {
		out, _, err := readLogs(ctx, name, "w1", lab.LogsOptions{})
		if n := strings.Count(out, "Starting up"); err != nil || n < 2 {
			return wait.Continue("%v: %d starts", err, n)
		}
		return wait.Done("two starts")
	})
	if err != nil {
		t.Error(err)
	}

	// The bundle, while up.
	dir := filepath.Join(t.TempDir(), "up")
	if err := l.ExportLogs(ctx, dir); err != nil {
		t.Errorf("export while up: %v", err)
	}
	bundleHas(t, dir, "nodes/m1/dockerd.log", "Starting up")
	bundleHas(t, dir, "nodes/m1/events.jsonl", `"Type":"service"`)
	bundleHas(t, dir, "tasks/it_kv/it_kv.1."+taskID+"@w1.log", ready)
	bundleHas(t, dir, "swarm/services.json", `"it_kv"`)
	bundleHas(t, dir, "swarm/nodes.json", `"w1"`)

	// After down: the logs are all that is left, and not a leftover.
	if err := l.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if left, err := lab.Leftovers(ctx, name); err != nil || len(left) > 0 {
		t.Errorf("after down: left %v, %v", left, err)
	}
	if kept, err := lab.KeptLogs(ctx); err != nil || !slices.Contains(kept, name) {
		t.Errorf("after down, kept logs %v, %v", kept, err)
	}
	if out, _, err := readLogs(ctx, name, "kv", lab.LogsOptions{}); err != nil || !strings.Contains(out, prefix+" | ") || !strings.Contains(out, ready) {
		t.Errorf("after down: %v, %q", err, out)
	}
	if _, _, err := readLogs(ctx, name, "nope", lab.LogsOptions{}); err == nil || !strings.Contains(err.Error(), "services: it_kv; nodes: m1, w1") {
		t.Errorf("an unknown service after down: %v", err)
	}
	dir = filepath.Join(t.TempDir(), "down")
	if err := lab.ExportLogs(ctx, name, dir); err != nil {
		t.Errorf("export after down: %v", err)
	}
	bundleHas(t, dir, "tasks/it_kv/it_kv.1."+taskID+"@w1.log", ready)
	bundleHas(t, dir, "README.txt", "lab it-logs (docker provider, down)")
	noReaders(t, l)

	// Pruned: gone.
	if err := lab.PruneLogs(ctx, name); err != nil {
		t.Fatal(err)
	}
	if _, _, err := readLogs(ctx, name, "kv", lab.LogsOptions{}); !errors.Is(err, lab.ErrNoLogs) {
		t.Errorf("after prune: %v", err)
	}
	if _, err := l.Host().VolumeInspect(ctx, common.LogsVolume(name), client.VolumeInspectOptions{}); err == nil {
		t.Errorf("volume %s is still there", common.LogsVolume(name))
	}
}

func bundleHas(t *testing.T, dir, file, want string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Errorf("bundle: %v", err)
		return
	}
	if !strings.Contains(string(b), want) {
		t.Errorf("bundle %s lacks %q: %.500q", file, want, b)
	}
}

// noReaders checks that no container reading the lab's logs is left.
func noReaders(t *testing.T, l *lab.Lab) {
	t.Helper()
	cs, err := l.Host().ContainerList(context.Background(), client.ContainerListOptions{All: true,
		Filters: make(client.Filters).Add("label", common.LabelLogs+"="+l.Name())})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs.Items) > 0 {
		t.Errorf("%d readers of the logs of lab %s are left", len(cs.Items), l.Name())
	}
}
