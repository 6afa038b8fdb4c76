//go:build integration

package lab_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab"
	"github.com/swarmlab/swarmlab/lab/images"
)

// TestLoadThenDeployRunsAPlainImageName is `swarmlab load myapp:1` then
// `swarmlab deploy` of a stack that says `image: myapp:1`, on a real lab:
// before the load the deploy is refused naming the image and `swarmlab
// load`, and deploys nothing; after it, every task runs, on every node; a
// second load of the same image pushes nothing.
func TestLoadThenDeployRunsAPlainImageName(t *testing.T) {
	l := upLab(t, "swarm-3", "it-load")
	ctx := context.Background()
	host, err := lab.Host(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	// An image only this machine's engine has, under a name no registry serves.
	redis, err := images.Resolve(ctx, host, mustImage(t, "redis"))
	if err != nil {
		t.Fatal(err)
	}
	// A tag of this run's own: the registry's blob cache outlives labs, so
	// a fixed name would be served already from an earlier run.
	myapp := fmt.Sprintf("swarmlab-it-myapp:%d", time.Now().UnixNano())
	if _, err := host.ImageTag(ctx, client.ImageTagOptions{Source: redis, Target: myapp}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.ImageRemove(context.Background(), myapp, client.ImageRemoveOptions{}) })

	stackFile := filepath.Join(t.TempDir(), "myapp.yml")
	os.WriteFile(stackFile, []byte(`version: "3.8"
services:
  app:
    image: `+myapp+`
    deploy:
      mode: global
`), 0o644)

	_, err = l.Stacks().Deploy(ctx, "myapp", stackFile, lab.StackOptions{})
	if err == nil || !strings.Contains(err.Error(), myapp) || !strings.Contains(err.Error(), "swarmlab load") {
		t.Fatalf("deploy before load: err = %v, want a refusal naming %s and swarmlab load", err, myapp)
	}
	mgr, _, err := l.Manager(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if svcs, err := mgr.ServiceList(ctx, client.ServiceListOptions{}); err != nil || len(svcs.Items) != 0 {
		t.Fatalf("a refused deploy left %d services (%v)", len(svcs.Items), err)
	}

	got, err := l.Stacks().Load(ctx, myapp)
	if err != nil || got.Unchanged {
		t.Fatalf("load %s: %+v, %v; want it pushed", myapp, got, err)
	}
	if _, err := l.Stacks().Deploy(ctx, "myapp", stackFile, lab.StackOptions{}); err != nil {
		t.Fatalf("deploy after load: %v", err)
	}
	running := nodesRunningTasks(t, ctx, mgr)
	if len(running) != len(l.Cluster().Nodes()) {
		t.Errorf("myapp runs on %d nodes, want all %d", len(running), len(l.Cluster().Nodes()))
	}
	again, err := l.Stacks().Load(ctx, myapp)
	if err != nil || !again.Unchanged {
		t.Errorf("second load of the same image: %+v, %v; want unchanged", again, err)
	}
}

func mustImage(t *testing.T, name string) images.Image {
	t.Helper()
	img, ok := images.Get(name)
	if !ok {
		t.Fatalf("no lab image %s", name)
	}
	return img
}

// nodesRunningTasks is the set of node IDs on which some task is running.
func nodesRunningTasks(t *testing.T, ctx context.Context, mgr client.APIClient) map[string]bool {
	t.Helper()
	tasks, err := mgr.TaskList(ctx, client.TaskListOptions{Filters: make(client.Filters).Add("desired-state", "running")})
	if err != nil {
		t.Fatal(err)
	}
	running := map[string]bool{}
	for _, tk := range tasks.Items {
		if tk.Status.State == "running" {
			running[tk.NodeID] = true
		}
	}
	return running
}
