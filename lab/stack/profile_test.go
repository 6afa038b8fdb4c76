package stack

import (
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

func task(id, svc, node string, slot int, created time.Time, st swarm.TaskState, at time.Time) swarm.Task {
	t := swarm.Task{ID: id, ServiceID: svc, NodeID: node, Slot: slot}
	t.CreatedAt = created
	t.Status.State = st
	t.Status.Timestamp = at
	return t
}

// A task's states are stamped by swarm, seen by repeated looks; the service
// runs when the newest task of every slot runs, and a replaced task counts
// as a second attempt of its slot.
func TestTrackerProfile(t *testing.T) {
	base := time.Date(2026, 12, 1, 21, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return base.Add(time.Duration(s * float64(time.Second))) }
	svc := swarm.Service{ID: "s1"}
	svc.Spec.Name = "vote_db"
	svc.CreatedAt = at(1)

	tr := NewTracker()
	tr.Observe([]swarm.Service{svc}, []swarm.Task{task("t1", "s1", "n1", 1, at(1), swarm.TaskStateAssigned, at(1.1))})
	tr.Observe(nil, []swarm.Task{task("t1", "s1", "n1", 1, at(1), swarm.TaskStatePreparing, at(1.2))})
	tr.Observe(nil, []swarm.Task{task("t1", "s1", "n1", 1, at(1), swarm.TaskStateStarting, at(3))})
	// The first look at a state keeps its stamp.
	tr.Observe(nil, []swarm.Task{task("t1", "s1", "n1", 1, at(1), swarm.TaskStateStarting, at(9))})
	if p := tr.Profile(base); len(p) != 1 || p[0].Running != 0 {
		t.Fatalf("a service whose task is starting has Running %v, want 0: %+v", p[0].Running, p)
	}
	tr.Observe(nil, []swarm.Task{
		task("t1", "s1", "n1", 1, at(1), swarm.TaskStateFailed, at(4)),
		task("t2", "s1", "n2", 1, at(4.5), swarm.TaskStateRunning, at(6.5)),
	})
	p := tr.Profile(base)
	if len(p) != 1 || p[0].Name != "vote_db" || p[0].Created != time.Second {
		t.Fatalf("profile %+v", p)
	}
	if p[0].Running != 6500*time.Millisecond {
		t.Errorf("service running at %v, want 6.5s (its replacement task)", p[0].Running)
	}
	ts := p[0].Tasks
	if len(ts) != 2 || ts[0].TaskID != "t1" || ts[0].Attempt != 1 || ts[1].Attempt != 2 {
		t.Fatalf("tasks %+v, want t1 then its replacement t2 (attempt 2)", ts)
	}
	if ts[0].Assigned != 1100*time.Millisecond || ts[0].Preparing != 1200*time.Millisecond || ts[0].Starting != 3*time.Second || ts[0].Running != 0 {
		t.Errorf("t1 %+v, want assigned 1.1s, preparing 1.2s, starting 3s, never running", ts[0])
	}
	if ts[1].NodeID != "n2" || ts[1].Running != 6500*time.Millisecond || ts[1].Preparing != 0 {
		t.Errorf("t2 %+v, want on n2, running at 6.5s, its pull not seen", ts[1])
	}
}

// Global services fill one slot per node.
func TestTrackerGlobalSlots(t *testing.T) {
	base := time.Now()
	svc := swarm.Service{ID: "g"}
	svc.Spec.Name = "vote_vote"
	tr := NewTracker()
	tr.Observe([]swarm.Service{svc}, []swarm.Task{
		task("a", "g", "n1", 0, base, swarm.TaskStateRunning, base.Add(2*time.Second)),
		task("b", "g", "n2", 0, base, swarm.TaskStateStarting, base.Add(time.Second)),
	})
	p := tr.Profile(base)
	if p[0].Tasks[0].Attempt != 1 || p[0].Tasks[1].Attempt != 1 || p[0].Running != 0 {
		t.Errorf("%+v: want two first attempts, service not running while n2's task starts", p[0])
	}
}
