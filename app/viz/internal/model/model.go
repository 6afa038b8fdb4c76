// Package model is what the visualizer shows: the swarm's nodes, each with
// the tasks it runs. It is built from Docker's node, service and task lists
// and holds only fields chosen one by one, so nothing of a service's spec
// (environment, secrets, configs, mounts, commands) can reach the page.
package model

import (
	"cmp"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

// State is the whole picture served at /api/state and pushed on /events.
type State struct {
	// Generated is when the engine was read (or failed to be) for this
	// picture; a re-read that changes nothing publishes nothing.
	Generated time.Time `json:"generated"`
	// Source says how the model is kept fresh: "events" or "polling".
	Source string `json:"source"`
	// Error is the last failure reading the engine, if the model is stale.
	Error string `json:"error,omitempty"`
	Nodes []Node `json:"nodes"`
	// Unassigned are tasks the scheduler has not placed on a node yet.
	Unassigned []Task `json:"unassigned"`
}

// Node is one column of the page.
type Node struct {
	ID       string `json:"id"`
	Hostname string `json:"hostname"`
	Role     string `json:"role"`
	// State is Docker's node state: ready, down, unknown, disconnected.
	State string `json:"state"`
	// Availability is active, pause or drain.
	Availability string `json:"availability"`
	// Reachability is a manager's: reachable or unreachable; empty for workers.
	Reachability string            `json:"reachability,omitempty"`
	Leader       bool              `json:"leader"`
	Addr         string            `json:"addr,omitempty"`
	Labels       map[string]string `json:"labels"`
	Tasks        []Task            `json:"tasks"`
}

// Task is one card: a task the swarm wants running.
type Task struct {
	ID      string `json:"id"`
	Service string `json:"service"`
	// Slot is the replica number (0 for global services).
	Slot int `json:"slot"`
	// Image is the image's last path element and tag, without digest:
	// registry:5000/swarmlab/viz:3f2a@sha256:... → viz:3f2a.
	Image string `json:"image"`
	// State is the task's observed state: new ... running, failed, ...
	State string `json:"state"`
	// Since is when the task entered State; the page shows its age.
	Since time.Time `json:"since"`
	// Message is swarm's short status line ("started", "no suitable node").
	Message string `json:"message,omitempty"`
	// Err is the task's error, for failed or rejected tasks.
	Err string `json:"err,omitempty"`
}

// Build makes the model from the engine's lists. Tasks whose desired state
// is not running (replaced, shut down, or on a node the swarm gave up on)
// are left out: a card stands for a task the swarm keeps.
func Build(nodes []swarm.Node, services []swarm.Service, tasks []swarm.Task) State {
	svcName := make(map[string]string, len(services))
	for _, s := range services {
		svcName[s.ID] = s.Spec.Name
	}
	st := State{Nodes: make([]Node, 0, len(nodes)), Unassigned: []Task{}}
	index := make(map[string]int, len(nodes))
	for _, n := range nodes {
		node := Node{
			ID:           n.ID,
			Hostname:     n.Description.Hostname,
			Role:         string(n.Spec.Role),
			State:        string(n.Status.State),
			Availability: string(n.Spec.Availability),
			Addr:         n.Status.Addr,
			Labels:       map[string]string{},
			Tasks:        []Task{},
		}
		for k, v := range n.Spec.Labels {
			node.Labels[k] = v
		}
		if m := n.ManagerStatus; m != nil {
			node.Leader = m.Leader
			node.Reachability = string(m.Reachability)
		}
		if node.Hostname == "" {
			node.Hostname = shortID(n.ID)
		}
		index[n.ID] = len(st.Nodes)
		st.Nodes = append(st.Nodes, node)
	}
	for _, t := range tasks {
		if t.DesiredState != swarm.TaskStateRunning {
			continue
		}
		card := Task{
			ID:      t.ID,
			Service: cmp.Or(svcName[t.ServiceID], shortID(t.ServiceID)),
			Slot:    t.Slot,
			Image:   ImageTag(t.Spec.ContainerSpec),
			State:   string(t.Status.State),
			Since:   t.Status.Timestamp,
			Message: t.Status.Message,
			Err:     t.Status.Err,
		}
		if i, ok := index[t.NodeID]; ok {
			st.Nodes[i].Tasks = append(st.Nodes[i].Tasks, card)
		} else {
			st.Unassigned = append(st.Unassigned, card)
		}
	}
	slices.SortFunc(st.Nodes, func(a, b Node) int {
		// Managers first (leader leading), then by hostname.
		return cmp.Or(
			cmp.Compare(roleRank(a), roleRank(b)),
			strings.Compare(a.Hostname, b.Hostname),
			strings.Compare(a.ID, b.ID),
		)
	})
	for i := range st.Nodes {
		sortTasks(st.Nodes[i].Tasks)
	}
	sortTasks(st.Unassigned)
	return st
}

func roleRank(n Node) int {
	switch {
	case n.Leader:
		return 0
	case n.Role == string(swarm.NodeRoleManager):
		return 1
	}
	return 2
}

func sortTasks(ts []Task) {
	slices.SortFunc(ts, func(a, b Task) int {
		return cmp.Or(strings.Compare(a.Service, b.Service), cmp.Compare(a.Slot, b.Slot), strings.Compare(a.ID, b.ID))
	})
}

// ImageTag shortens a task's image reference to name:tag.
func ImageTag(c *swarm.ContainerSpec) string {
	if c == nil {
		return ""
	}
	ref, _, _ := strings.Cut(c.Image, "@")
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		ref = ref[i+1:]
	}
	if ref != "" && !strings.Contains(ref, ":") {
		ref += ":latest"
	}
	return ref
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Same reports whether two states show the same thing, ignoring when they
// were generated; the server pushes only changes.
func Same(a, b State) bool {
	a.Generated, b.Generated = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}
