package stack

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// Tracker records when the tasks of some stacks reached each state, from
// repeated looks at the swarm's task list (Observe). Swarm stamps every
// state change (Status.Timestamp); a state that came and went between two
// looks is not seen, so poll often (every 100-250 ms) for a full profile.
type Tracker struct {
	mu       sync.Mutex
	services map[string]*trackedService // by service ID
	tasks    map[string]*TrackedTask    // by task ID
}

type trackedService struct {
	name    string
	created time.Time
}

// TrackedTask is what a Tracker saw of one task.
type TrackedTask struct {
	ID        string
	ServiceID string
	Service   string // service name, once the service was seen
	NodeID    string
	// Slot is the replica slot, or for a global service the node: the
	// place the task fills. Tasks of the same slot replace each other.
	Slot string
	// Created is the task's creation; States the first time it was seen
	// in each state, stamped by swarm.
	Created time.Time
	States  map[swarm.TaskState]time.Time
	// Current is the state it was last seen in; ContainerID its container.
	Current     swarm.TaskState
	ContainerID string
}

// NewTracker returns an empty Tracker.
func NewTracker() *Tracker {
	return &Tracker{services: map[string]*trackedService{}, tasks: map[string]*TrackedTask{}}
}

// Observe records one look at the swarm's services and tasks.
func (t *Tracker) Observe(svcs []swarm.Service, tasks []swarm.Task) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range svcs {
		if _, ok := t.services[s.ID]; !ok {
			t.services[s.ID] = &trackedService{name: s.Spec.Name, created: s.CreatedAt}
		}
	}
	for _, task := range tasks {
		rec, ok := t.tasks[task.ID]
		if !ok {
			slot := fmt.Sprint(task.Slot)
			if task.Slot == 0 {
				slot = "node " + task.NodeID
			}
			rec = &TrackedTask{ID: task.ID, ServiceID: task.ServiceID, Slot: slot, Created: task.CreatedAt, States: map[swarm.TaskState]time.Time{}}
			t.tasks[task.ID] = rec
		}
		if task.NodeID != "" {
			rec.NodeID = task.NodeID
		}
		st := task.Status.State
		if _, seen := rec.States[st]; !seen && st != "" {
			ts := task.Status.Timestamp
			if ts.IsZero() {
				ts = time.Now()
			}
			rec.States[st] = ts
		}
		rec.Current = st
		if cs := task.Status.ContainerStatus; cs != nil && cs.ContainerID != "" {
			rec.ContainerID = cs.ContainerID
		}
	}
}

// TaskProfile is one task as the profile reports it: when it reached each
// state, as offsets from the tracker's base time (0: not seen).
type TaskProfile struct {
	TaskID, NodeID, ContainerID string
	Slot                        string
	Attempt                     int // 1 for the first task of its slot
	Assigned, Preparing         time.Duration
	Starting, Running           time.Duration
	Current                     swarm.TaskState
}

// ServiceProfile is one service: when it was created and when all its
// current tasks were running, and its tasks, oldest first.
type ServiceProfile struct {
	Name    string
	Created time.Duration
	// Running is the latest Running of the tasks that run now; 0 unless
	// every current task of the service runs.
	Running time.Duration
	Tasks   []TaskProfile
}

// Profile returns what the tracker saw, by service name, times relative to
// base. Tasks of a slot are numbered by creation (Attempt).
func (t *Tracker) Profile(base time.Time) []ServiceProfile {
	t.mu.Lock()
	defer t.mu.Unlock()
	rel := func(ts time.Time) time.Duration {
		if ts.IsZero() {
			return 0
		}
		if d := ts.Sub(base); d > 0 {
			return d
		}
		return 0
	}
	bySvc := map[string][]*TrackedTask{}
	for _, task := range t.tasks {
		bySvc[task.ServiceID] = append(bySvc[task.ServiceID], task)
	}
	var out []ServiceProfile
	for id, svc := range t.services {
		tasks := bySvc[id]
		sort.Slice(tasks, func(i, j int) bool {
			if !tasks[i].Created.Equal(tasks[j].Created) {
				return tasks[i].Created.Before(tasks[j].Created)
			}
			return tasks[i].ID < tasks[j].ID
		})
		sp := ServiceProfile{Name: svc.name, Created: rel(svc.created)}
		attempts := map[string]int{}
		// The newest task of each slot is the one that counts for the
		// service running.
		newest := map[string]*TrackedTask{}
		for _, task := range tasks {
			attempts[task.Slot]++
			newest[task.Slot] = task
			sp.Tasks = append(sp.Tasks, TaskProfile{
				TaskID: task.ID, NodeID: task.NodeID, ContainerID: task.ContainerID, Slot: task.Slot,
				Attempt:   attempts[task.Slot],
				Assigned:  rel(task.States[swarm.TaskStateAssigned]),
				Preparing: rel(task.States[swarm.TaskStatePreparing]),
				Starting:  rel(task.States[swarm.TaskStateStarting]),
				Running:   rel(task.States[swarm.TaskStateRunning]),
				Current:   task.Current,
			})
		}
		allRunning := len(newest) > 0
		for _, task := range newest {
			r, ok := task.States[swarm.TaskStateRunning]
			if !ok || task.Current != swarm.TaskStateRunning {
				allRunning = false
				break
			}
			if d := rel(r); d > sp.Running {
				sp.Running = d
			}
		}
		if !allRunning {
			sp.Running = 0
		}
		out = append(out, sp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Poll looks at the services and tasks of the named stacks every interval
// until ctx ends, recording them in t.
func (t *Tracker) Poll(ctx context.Context, mgr client.APIClient, stacks []string, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		for _, name := range stacks {
			f := stackFilter(name)
			svcs, err := mgr.ServiceList(ctx, client.ServiceListOptions{Filters: f})
			if err != nil {
				continue
			}
			if len(svcs.Items) == 0 {
				continue
			}
			tf := make(client.Filters)
			for _, s := range svcs.Items {
				tf.Add("service", s.ID)
			}
			tasks, err := mgr.TaskList(ctx, client.TaskListOptions{Filters: tf})
			if err != nil {
				continue
			}
			t.Observe(svcs.Items, tasks.Items)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
