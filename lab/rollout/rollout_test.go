package rollout

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// simulate lays out the tasks of an update of n replicas from v1 to v2 the
// way swarm's updater runs one: slots in batches of parallelism; in each,
// the new tasks are created together and run after start; start-first
// stops the old ones oldStop after their replacements run, stop-first
// stops them first and creates the new ones once they have stopped. The
// next batch begins delay after the batch's new tasks run.
func simulate(n, parallelism int, startFirst bool, start, oldStop, delay time.Duration) []Task {
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	var tasks []Task
	at := t0
	for first := 1; first <= n; first += parallelism {
		var batchRunning time.Time
		for s := first; s < first+parallelism && s <= n; s++ {
			old := Task{ID: fmt.Sprintf("old%d", s), Slot: s, Version: "v1", Created: t0.Add(-time.Hour), Running: t0.Add(-time.Hour)}
			nt := Task{ID: fmt.Sprintf("new%d", s), Slot: s, Version: "v2"}
			if startFirst {
				nt.Created = at
				nt.Running = at.Add(start)
				old.Stopped = nt.Running.Add(oldStop)
			} else {
				old.Stopped = at.Add(oldStop)
				nt.Created = old.Stopped
				nt.Running = nt.Created.Add(start)
			}
			batchRunning = nt.Running
			tasks = append(tasks, old, nt)
		}
		at = batchRunning.Add(delay)
	}
	return tasks
}

func TestOneAtATimeStartFirst(t *testing.T) {
	const n = 3
	for _, tc := range []struct {
		name  string
		tasks []Task
		bad   string // part of the error; empty when the check must pass
	}{
		{"start-first, one at a time (the e2e stack's update_config)",
			simulate(n, 1, true, 2*time.Second, 2200*time.Millisecond, time.Second), ""},
		{"start-first, one at a time, an old task slow to stop (still one replacement at a time)",
			simulate(n, 1, true, 1500*time.Millisecond, 5*time.Second, time.Second), ""},
		{"start-first, two at a time (parallelism 2)",
			simulate(n, 2, true, 2*time.Second, 2200*time.Millisecond, time.Second), "not one at a time"},
		{"start-first, all at once (parallelism 0)",
			simulate(n, n, true, 2*time.Second, 2200*time.Millisecond, time.Second), "not one at a time"},
		{"stop-first, one at a time",
			simulate(n, 1, false, 2*time.Second, 2200*time.Millisecond, time.Second), "not start-first"},
		{"stop-first, two at a time",
			simulate(n, 2, false, 2*time.Second, 2200*time.Millisecond, time.Second), "only 1 of 3 tasks running"},
		{"a slot not replaced",
			simulate(n, 1, true, 2*time.Second, 2200*time.Millisecond, time.Second)[:5], "was not replaced"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := OneAtATimeStartFirst(tc.tasks, "v1", "v2", n)
			t.Logf("%s; err: %v", rep, err)
			switch {
			case tc.bad == "" && err != nil:
				t.Fatalf("a good update failed the check: %v", err)
			case tc.bad != "" && err == nil:
				t.Fatalf("a bad update passed the check (%s)", rep)
			case tc.bad != "" && !strings.Contains(err.Error(), tc.bad):
				t.Fatalf("want an error saying %q, got %v", tc.bad, err)
			}
		})
	}
}

func TestOneAtATimeStartFirstMeasures(t *testing.T) {
	tasks := simulate(3, 1, true, 2*time.Second, 2200*time.Millisecond, time.Second)
	rep, err := OneAtATimeStartFirst(tasks, "v1", "v2", 3)
	if err != nil {
		t.Fatal(err)
	}
	if rep.MinRunning != 3 || rep.MaxRunning != 4 {
		t.Errorf("want 3 to 4 tasks running, got %d to %d", rep.MinRunning, rep.MaxRunning)
	}
	for s := 1; s <= 3; s++ {
		if rep.Overlap[s] != 2200*time.Millisecond {
			t.Errorf("slot %d: old and new ran together %s, want 2.2s", s, rep.Overlap[s])
		}
	}
}

func TestOneAtATimeStartFirstOldTaskStillRunning(t *testing.T) {
	tasks := simulate(3, 1, true, 2*time.Second, 2200*time.Millisecond, time.Second)
	tasks[4].Stopped = time.Time{} // old3 never stopped
	if _, err := OneAtATimeStartFirst(tasks, "v1", "v2", 3); err == nil || !strings.Contains(err.Error(), "has not stopped") {
		t.Fatalf("an old task still running: want an error, got %v", err)
	}
}
