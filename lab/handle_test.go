package lab

import (
	"context"
	"errors"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/swarmlab/swarmlab/lab/provider"
	"github.com/swarmlab/swarmlab/lab/provider/fake"
	"github.com/swarmlab/swarmlab/lab/topology"
)

// These tests drive the lab through provider/fake: the lab sees only the
// provider.Cluster and provider.Node interfaces, never a provider's types.

func fakeLab() (*Lab, *fake.Cluster, *fake.Node, *fake.Node) {
	c := fake.NewCluster("unit", "r1")
	m1 := c.Add("m1", "manager", "10.0.0.10")
	w1 := c.Add("w1", "worker", "10.0.0.11")
	return &Lab{name: "unit", runID: "r1", cluster: c, prov: fake.New()}, c, m1, w1
}

func TestDoAppliesTheActionToTheNodeHandle(t *testing.T) {
	l, _, m1, w1 := fakeLab()
	ctx := context.Background()
	if err := l.Do(ctx, "w1", provider.Pause); err != nil {
		t.Fatal(err)
	}
	if got := w1.Applied(); !slices.Equal(got, []provider.Action{provider.Pause}) || len(m1.Applied()) != 0 {
		t.Errorf("applied: w1 %v, m1 %v; want w1 [pause] only", got, m1.Applied())
	}
	n, err := l.Node("w1")
	if err != nil {
		t.Fatal(err)
	}
	if n.State() != provider.Paused || n.State().Running() {
		t.Errorf("w1 is %q after pause", n.State())
	}
	if err := l.Do(ctx, "w1", provider.Partition); err != nil || !n.Partitioned() {
		t.Errorf("partition: %v, partitioned %v", err, n.Partitioned())
	}
	if err := l.Do(ctx, "w9", provider.Kill); err == nil || !strings.Contains(err.Error(), `lab unit has no node "w9" (nodes: [m1 w1])`) {
		t.Errorf("unknown node: %v", err)
	}
}

func TestManagerSkipsManagersThatAreNotRunning(t *testing.T) {
	l, _, m1, _ := fakeLab()
	m1.SetState(provider.Exited, false)
	// A running manager's engine would be asked (the fake has none, so
	// that would fail with another message): this one must not be.
	_, _, err := l.Manager(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no manager node is running") {
		t.Errorf("Manager with its only manager exited: %v", err)
	}
	m1.SetState(provider.Running, false)
	if _, _, err := l.Manager(context.Background()); err == nil || !strings.Contains(err.Error(), "has no engine") {
		t.Errorf("Manager with a running manager did not ask for its engine: %v", err)
	}
}

func TestDockerHostIsTheFirstManagers(t *testing.T) {
	l, _, _, _ := fakeLab()
	if got := l.DockerHost(); got != "fake://m1" {
		t.Errorf("DockerHost = %q", got)
	}
}

// remapped publishes every node's ports on this machine's loopback, 10000
// higher: as a provider whose nodes are not on this host's network would.
type remapped struct{ *fake.Cluster }

func (r remapped) PublishedAddr(node string, port uint16) (string, error) {
	if _, err := provider.Find(r, node); err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)+10000)), nil
}

func TestURLsAskTheProviderWhereAPortAnswers(t *testing.T) {
	l, c, _, _ := fakeLab()
	direct := map[string]string{
		"http://{addr}/":                          "http://10.0.0.11/",
		"https://{addr}/":                         "https://10.0.0.11/",
		"http://{addr}:8081/":                     "http://10.0.0.11:8081/",
		"http://{addr}:8404/ (user admin)":        "http://10.0.0.11:8404/ (user admin)",
		"redis://{addr}:6379":                     "redis://10.0.0.11:6379",
		"no address here":                         "no address here",
		"http://{addr}/ and again http://{addr}/": "http://10.0.0.11/ and again http://10.0.0.11/",
	}
	for tmpl, want := range direct {
		if got, err := fillURL(tmpl, "w1", l.cluster.PublishedAddr); err != nil || got != want {
			t.Errorf("fillURL(%q) = %q, %v; want %q", tmpl, got, err, want)
		}
	}
	l.cluster = remapped{c}
	for tmpl, want := range map[string]string{
		"http://{addr}/":      "http://127.0.0.1:10080/",
		"https://{addr}/":     "https://127.0.0.1:10443/",
		"http://{addr}:8081/": "http://127.0.0.1:18081/",
	} {
		if got, err := fillURL(tmpl, "w1", l.cluster.PublishedAddr); err != nil || got != want {
			t.Errorf("remapped: fillURL(%q) = %q, %v; want %q", tmpl, got, err, want)
		}
	}
	if _, err := fillURL("http://{addr}/", "w9", l.cluster.PublishedAddr); err == nil {
		t.Error("fillURL on an unknown node did not fail")
	}
}

func TestPushImageNeedsARegistryToPushTo(t *testing.T) {
	l, c, _, _ := fakeLab()
	c.Reg.Push = nil
	err := l.Stacks().PushImage(context.Background(), "swarmlab/x:1", "x:1")
	if err == nil || !strings.Contains(err.Error(), "no registry to push swarmlab/x:1 to") {
		t.Errorf("PushImage without a registry: %v", err)
	}
}

func TestStackEnvNamesTheRegistryNodesPullFrom(t *testing.T) {
	l, c, _, _ := fakeLab()
	c.Reg.Pull = "127.0.0.1:5000"
	l.info.Ingress = RoutingMesh
	env := l.Stacks().Env()
	if env["SWARMLAB_REGISTRY"] != "127.0.0.1:5000" || env["SWARMLAB_PUBLISH_MODE"] != "ingress" || env["SWARMLAB_ENDPOINT_MODE"] != "vip" || env["SWARMLAB_LAB"] != "unit" {
		t.Errorf("Stacks().Env() = %v", env)
	}
}

func TestIngressIsDetectedOnTheFirstNode(t *testing.T) {
	t.Setenv("SWARMLAB_INGRESS", "")
	l, _, m1, w1 := fakeLab()
	m1.ExecFunc = func(cmd []string) (string, error) { return "", errors.New("exit code 1") }
	mode, why := l.detectIngress(context.Background())
	if mode != EdgeProxy || !strings.Contains(why, "no /proc/net/ip_vs on node m1") {
		t.Errorf("detectIngress = %s (%s), want the edge proxy, found on m1", mode, why)
	}
	if len(m1.Execs()) != 1 || len(w1.Execs()) != 0 {
		t.Errorf("commands: m1 %v, w1 %v; want one, on m1", m1.Execs(), w1.Execs())
	}
	m1.ExecFunc = nil
	if mode, _ := l.detectIngress(context.Background()); mode != RoutingMesh {
		t.Errorf("with IPVS: %s", mode)
	}
}

func TestCloseReleasesTheCluster(t *testing.T) {
	l, c, _, _ := fakeLab()
	if err := l.Close(); err != nil || !c.Closed() {
		t.Errorf("Close: %v, closed %v", err, c.Closed())
	}
	if err := (&Lab{}).Close(); err != nil {
		t.Errorf("Close of a lab with no cluster: %v", err)
	}
}

// A stack sizes what runs once per labelled node from the topology: one more
// tier=db node in the topology is one more in SWARMLAB_NODES_TIER_DB.
func TestLabelCountsNameEveryLabelValue(t *testing.T) {
	topo := &topology.Topology{Nodes: []topology.Node{
		{Name: "db01", Labels: map[string]string{"tier": "db"}},
		{Name: "db02", Labels: map[string]string{"tier": "db", "sentinel": "2"}},
		{Name: "edge", Labels: map[string]string{"tier": "edge-proxy"}},
	}}
	got := labelCounts(topo)
	want := map[string]int{"SWARMLAB_NODES_TIER_DB": 2, "SWARMLAB_NODES_SENTINEL_2": 1, "SWARMLAB_NODES_TIER_EDGE_PROXY": 1}
	if !maps.Equal(got, want) {
		t.Errorf("labelCounts = %v, want %v", got, want)
	}
}
