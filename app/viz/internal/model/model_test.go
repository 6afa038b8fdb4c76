package model_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"

	"github.com/swarmlab/swarmlab/app/viz/internal/fake"
	"github.com/swarmlab/swarmlab/app/viz/internal/model"
)

// summary is a node as a reader of the page sees it.
type summary struct {
	host, role, state, avail string
	leader                   bool
	tasks                    []string // service.slot:state
}

func summarize(st model.State) []summary {
	var out []summary
	for _, n := range st.Nodes {
		s := summary{host: n.Hostname, role: n.Role, state: n.State, avail: n.Availability, leader: n.Leader}
		for _, t := range n.Tasks {
			s.tasks = append(s.tasks, t.Service+"."+itoa(t.Slot)+":"+t.State)
		}
		out = append(out, s)
	}
	return out
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestBuildOneColumnPerNodeWithTheTasksTheSwarmKeeps(t *testing.T) {
	st := model.Build(fake.Swarm3())
	got := summarize(st)
	want := []summary{
		{"m1", "manager", "ready", "active", true, []string{"shop_db.1:running", "shop_web.1:running"}},
		{"w1", "worker", "ready", "active", false, []string{"shop_web.2:running", "shop_web.3:starting"}},
		// w2 is down: the task it ran was replaced, so no card is left on it.
		{"w2", "worker", "down", "drain", false, nil},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d columns %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.host != w.host || g.role != w.role || g.state != w.state || g.avail != w.avail || g.leader != w.leader ||
			strings.Join(g.tasks, ",") != strings.Join(w.tasks, ",") {
			t.Errorf("column %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
	if len(st.Unassigned) != 1 || st.Unassigned[0].ID != "t-db-2" || st.Unassigned[0].Err != "no suitable node" {
		t.Errorf("unassigned = %+v, want the pending t-db-2 with its error", st.Unassigned)
	}
	if l := st.Nodes[1].Labels; l["role"] != "worker" || l["zone"] != "b" {
		t.Errorf("w1 labels = %v, want role=worker zone=b", l)
	}
	if !st.Nodes[0].Tasks[0].Since.Equal(fake.Since) {
		t.Errorf("task since = %v, want %v", st.Nodes[0].Tasks[0].Since, fake.Since)
	}
}

func TestBuildEmptyListsGiveEmptyArraysNotNull(t *testing.T) {
	b, err := json.Marshal(model.Build(nil, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"nodes":[]`) || !strings.Contains(string(b), `"unassigned":[]`) {
		t.Errorf("JSON %s: want empty arrays, the page iterates them", b)
	}
	b, _ = json.Marshal(model.Build([]swarm.Node{{ID: "0123456789abcdef"}}, nil, nil))
	if !strings.Contains(string(b), `"tasks":[]`) || !strings.Contains(string(b), `"labels":{}`) || !strings.Contains(string(b), `"hostname":"0123456789ab"`) {
		t.Errorf("JSON %s: want empty tasks and labels, and the short ID for a node without hostname", b)
	}
}

func TestBuildShowsNoEnvironmentSecretOrConfig(t *testing.T) {
	b, err := json.Marshal(model.Build(fake.Swarm3()))
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{fake.SecretEnv, fake.SecretName, fake.ConfigName, fake.ServiceLabel, "POSTGRES_PASSWORD", "MODE=prod", "sec-1", "cfg-1"} {
		if strings.Contains(string(b), leak) {
			t.Errorf("the model's JSON contains %q:\n%s", leak, b)
		}
	}
}

func TestImageTag(t *testing.T) {
	for in, want := range map[string]string{
		"nginx":                                   "nginx:latest",
		"nginx:latest@sha256:0123":                "nginx:latest",
		"registry:5000/swarmlab/viz:3f2a":         "viz:3f2a",
		"registry:5000/swarmlab/viz@sha256:abcd":  "viz:latest",
		"registry:5000/library/redis:7@sha256:ab": "redis:7",
		"": "",
	} {
		if got := model.ImageTag(&swarm.ContainerSpec{Image: in}); got != want {
			t.Errorf("ImageTag(%q) = %q, want %q", in, got, want)
		}
	}
	if got := model.ImageTag(nil); got != "" {
		t.Errorf("ImageTag(nil) = %q", got)
	}
}
