package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab/images"
	"github.com/swarmlab/swarmlab/lab/provider"
	"github.com/swarmlab/swarmlab/lab/provider/fake"
	"github.com/swarmlab/swarmlab/lab/topology"
)

func loadTopology(t *testing.T, path string) *topology.Topology {
	t.Helper()
	topo, _, err := topology.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// A docker lab needs the node image of its engine, the registry and the
// standard images; an ssh lab no node image. The docker provider runs the
// node image of the topology's engine.
func TestLabImagesFollowTheEngine(t *testing.T) {
	t.Setenv(topology.EngineEnv, "")
	names := func(imgs []images.Image) []string {
		var out []string
		for _, i := range imgs {
			out = append(out, i.Name)
		}
		return out
	}
	std := names(images.Standard())
	topo := loadTopology(t, "../topologies/swarm-3.yaml")
	for engine, node := range map[string]string{"": "node-26", "26": "node-26", "20.10": "node-20.10"} {
		topo.Provider.Engine = engine
		need, err := labImages(topo)
		if err != nil {
			t.Fatal(err)
		}
		if want := append([]string{node, "registry"}, std...); !slices.Equal(names(need), want) {
			t.Errorf("engine %q: images %v, want %v", engine, names(need), want)
		}
	}
	topo.Provider.Engine = "27"
	if _, err := labImages(topo); err == nil || !strings.Contains(err.Error(), `supported: 26, 20.10`) {
		t.Errorf("engine 27: %v", err)
	}
	ssh := *topo
	ssh.Provider = topology.Provider{Type: topology.ProviderSSH}
	if need, err := labImages(&ssh); err != nil || !slices.Equal(names(need), append([]string{"registry"}, std...)) {
		t.Errorf("ssh: %v, %v", names(need), err)
	}

	// SWARMLAB_ENGINE reaches the image choice through the topology loader
	t.Setenv(topology.EngineEnv, "20.10")
	if need, err := labImages(loadTopology(t, "../topologies/swarm-3.yaml")); err != nil || need[0].Name != "node-20.10" {
		t.Errorf("with %s=20.10: %v, %v", topology.EngineEnv, names(need), err)
	}
	if _, err := NewProvider(context.Background(), nil, &topology.Topology{Provider: topology.Provider{Type: "docker", Engine: "27"}}); err == nil {
		t.Error("NewProvider for engine 27: no error")
	}
}

// hostWithout is a host engine that lacks some images, and builds none.
type hostWithout struct {
	client.APIClient
	missing map[string]bool
	builds  []string
}

func (h *hostWithout) ImageInspect(_ context.Context, ref string, _ ...client.ImageInspectOption) (client.ImageInspectResult, error) {
	if h.missing[ref] {
		return client.ImageInspectResult{}, fmt.Errorf("no such image: %s: %w", ref, cerrdefs.ErrNotFound)
	}
	return client.ImageInspectResult{}, nil
}

func (h *hostWithout) Info(context.Context, client.InfoOptions) (client.SystemInfoResult, error) {
	var r client.SystemInfoResult
	r.Info.Architecture = "x86_64"
	return r, nil
}

func (h *hostWithout) ImageTag(context.Context, client.ImageTagOptions) (client.ImageTagResult, error) {
	return client.ImageTagResult{}, nil
}

func (h *hostWithout) ImageBuild(_ context.Context, _ io.Reader, opts client.ImageBuildOptions) (client.ImageBuildResult, error) {
	h.builds = append(h.builds, opts.Tags...)
	return client.ImageBuildResult{}, errors.New("no builds on this engine")
}

// The bring-up builds the images the host lacks, with progress on its
// progress writer, instead of failing with "run scripts/bootstrap"; with
// every image there it only looks.
func TestEnsureImagesBuildsWhatIsMissing(t *testing.T) {
	t.Setenv(topology.EngineEnv, "")
	topo := loadTopology(t, "../topologies/swarm-3.yaml")
	topo.Provider.Engine = "20.10"
	node, _ := images.NodeFor("20.10")
	ctx := context.Background()

	host := &hostWithout{missing: map[string]bool{}}
	var progress bytes.Buffer
	if err := ensureImages(ctx, host, topo, &progress); err != nil || progress.Len() != 0 || len(host.builds) != 0 {
		t.Fatalf("everything there: %v, builds %v, progress %q", err, host.builds, progress.String())
	}

	host.missing[node.Ref()] = true
	err := ensureImages(ctx, host, topo, &progress)
	if err == nil || !strings.Contains(err.Error(), "no builds on this engine") {
		t.Errorf("err = %v", err)
	}
	if !slices.Equal(host.builds, []string{node.Ref()}) {
		t.Errorf("builds %v, want %s only", host.builds, node.Ref())
	}
	for _, want := range []string{"images: building what this lab lacks: node-20.10\n", "images: base        up to date", "images: node-20.10  building    " + node.Ref()} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, progress.String())
		}
	}
}

func TestEngineSummary(t *testing.T) {
	c := fake.NewCluster("unit", "r1")
	c.Add("m1", "manager", "10.0.0.10")
	c.Add("w1", "worker", "10.0.0.11")
	c.Add("w2", "worker", "10.0.0.12")
	nodes := c.Nodes()
	for _, tc := range []struct {
		nodes    []provider.Node
		versions map[string]string
		want     string
	}{
		{nodes, map[string]string{"m1": "26.1.5+dfsg1", "w1": "26.1.5+dfsg1", "w2": "26.1.5+dfsg1"}, "26.1.5+dfsg1 on all 3 nodes"},
		{nodes[:1], map[string]string{"m1": "26.1.5+dfsg1"}, "26.1.5+dfsg1 on m1"},
		{nodes, map[string]string{"m1": "26.1.5+dfsg1", "w1": "20.10.24+dfsg1", "w2": "26.1.5+dfsg1"}, "26.1.5+dfsg1 on m1, w2; 20.10.24+dfsg1 on w1"},
		{nodes, map[string]string{"m1": "26.1.5+dfsg1", "w1": "26.1.5+dfsg1"}, "26.1.5+dfsg1 on m1, w1; unknown on w2"},
		{nil, nil, "on no node"},
	} {
		if got := EngineSummary(tc.nodes, tc.versions); got != tc.want {
			t.Errorf("EngineSummary(%v) = %q, want %q", tc.versions, got, tc.want)
		}
	}
}

// A step can add a note to its line (preflight: the nodes' engines); a
// failed step's line has none.
func TestStepNote(t *testing.T) {
	var out bytes.Buffer
	r := &runner{out: &out, lab: &Lab{}}
	if err := r.step(context.Background(), "Preflight", func(ctx context.Context) error {
		stepNote(ctx, "Docker 26.1.5+dfsg1 on all 3 nodes")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	_ = r.step(context.Background(), "Broken", func(ctx context.Context) error {
		stepNote(ctx, "never shown")
		return errors.New("boom")
	})
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], " ✓ Preflight") || !strings.HasSuffix(lines[0], "s  Docker 26.1.5+dfsg1 on all 3 nodes") || strings.Contains(lines[1], "never") {
		t.Errorf("lines:\n%s", out.String())
	}
}
