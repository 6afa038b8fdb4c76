// Package rollout checks, from when each task started and stopped, how a
// rolling update replaced a service's tasks: one at a time, and start-first
// (each new task running before the old task of its slot stopped), so the
// service never ran fewer tasks than it asks for.
//
// It judges timestamps only (the swarm's task history); it knows nothing of
// how they were read.
package rollout

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
)

// Task is one task of the service, as the update saw it.
type Task struct {
	ID      string
	Slot    int
	Version string // what it runs (the image)
	// Created is when the swarm created the task (the updater's decision
	// to start it); Running when it entered the running state (for a task
	// with a health check, once healthy); Stopped when it entered the
	// shutdown or complete state, zero while it runs.
	Created, Running, Stopped time.Time
}

// Report is what the check measured.
type Report struct {
	// MinRunning and MaxRunning are the fewest and most tasks running at
	// once from the first replacement to the last old task's stop.
	MinRunning, MaxRunning int
	// Overlap is, per slot, how long its old and new task ran together.
	Overlap map[int]time.Duration
}

func (r Report) String() string {
	var parts []string
	for _, s := range slices.Sorted(maps.Keys(r.Overlap)) {
		parts = append(parts, fmt.Sprintf("slot %d %.2fs", s, r.Overlap[s].Seconds()))
	}
	return fmt.Sprintf("%d to %d tasks running during the update; old and new ran together: %s", r.MinRunning, r.MaxRunning, strings.Join(parts, ", "))
}

// OneAtATimeStartFirst checks that tasks, the service's old tasks (version
// from, running when the update began) and its new ones (version to),
// show a start-first update of n replicas, one task at a time:
//   - every slot of an old task got exactly one new task, and every old
//     task stopped;
//   - start-first: each new task was running before the old task of its
//     slot stopped;
//   - one at a time: each new task was created only once the one before it
//     was running (the updater waits for a replacement before it begins the
//     next one);
//   - never fewer than n tasks running, from the first new task's creation
//     until the last old task stopped.
//
// It returns every broken rule, and what it measured.
func OneAtATimeStartFirst(tasks []Task, from, to string, n int) (Report, error) {
	old, repl := map[int]Task{}, map[int]Task{}
	var news []Task
	var errs []error
	for _, t := range tasks {
		switch t.Version {
		case from:
			if prev, ok := old[t.Slot]; ok {
				errs = append(errs, fmt.Errorf("slot %d has two old tasks, %s and %s", t.Slot, prev.ID, t.ID))
			}
			old[t.Slot] = t
		case to:
			if prev, ok := repl[t.Slot]; ok {
				errs = append(errs, fmt.Errorf("slot %d has two new tasks, %s and %s: a replacement failed and was replaced", t.Slot, prev.ID, t.ID))
			}
			repl[t.Slot] = t
			news = append(news, t)
		}
	}
	if len(old) != n || len(repl) != n {
		errs = append(errs, fmt.Errorf("want %d old and %d new tasks, got %d old (slots %v) and %d new (slots %v)", n, n, len(old), slices.Sorted(maps.Keys(old)), len(repl), slices.Sorted(maps.Keys(repl))))
	}
	for _, s := range slices.Sorted(maps.Keys(old)) {
		o, ok := old[s], false
		var nt Task
		if nt, ok = repl[s]; !ok {
			errs = append(errs, fmt.Errorf("old task %s (slot %d) was not replaced", o.ID, s))
			continue
		}
		switch {
		case o.Stopped.IsZero():
			errs = append(errs, fmt.Errorf("old task %s (slot %d) has not stopped", o.ID, s))
		case nt.Running.IsZero():
			errs = append(errs, fmt.Errorf("new task %s (slot %d) never ran", nt.ID, s))
		case !nt.Running.Before(o.Stopped):
			errs = append(errs, fmt.Errorf("not start-first: old task %s (slot %d) stopped at %s, before its replacement %s was running at %s",
				o.ID, s, clock(o.Stopped), nt.ID, clock(nt.Running)))
		}
	}
	sort.Slice(news, func(i, j int) bool { return news[i].Created.Before(news[j].Created) })
	for i := 1; i < len(news); i++ {
		prev, t := news[i-1], news[i]
		if prev.Running.IsZero() || t.Created.Before(prev.Running) {
			errs = append(errs, fmt.Errorf("not one at a time: new task %s (slot %d) was created at %s, before new task %s (slot %d) was running (%s)",
				t.ID, t.Slot, clock(t.Created), prev.ID, prev.Slot, clock(prev.Running)))
		}
	}

	rep := Report{Overlap: map[int]time.Duration{}}
	for s, o := range old {
		if nt, ok := repl[s]; ok && !o.Stopped.IsZero() && !nt.Running.IsZero() {
			rep.Overlap[s] = o.Stopped.Sub(nt.Running)
		}
	}
	if len(news) > 0 {
		var end time.Time
		for _, o := range old {
			if o.Stopped.After(end) {
				end = o.Stopped
			}
		}
		rep.MinRunning, rep.MaxRunning = runningRange(old, news, news[0].Created, end)
		if rep.MinRunning < n {
			errs = append(errs, fmt.Errorf("only %d of %d tasks running at one moment of the update", rep.MinRunning, n))
		}
	}
	return rep, errors.Join(errs...)
}

// runningRange is the fewest and most tasks running at once in [from, to]:
// a task runs in [Running, Stopped), Stopped zero meaning still.
func runningRange(old map[int]Task, news []Task, from, to time.Time) (lo, hi int) {
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	count := 0
	add := func(t Task) {
		if t.Running.IsZero() || (!t.Stopped.IsZero() && !t.Stopped.After(from)) {
			return
		}
		if t.Running.After(from) {
			edges = append(edges, edge{t.Running, +1})
		} else {
			count++
		}
		if !t.Stopped.IsZero() {
			edges = append(edges, edge{t.Stopped, -1})
		}
	}
	for _, t := range old {
		add(t)
	}
	for _, t := range news {
		add(t)
	}
	// At one instant, stops come before starts: a stop and a start at the
	// same moment are not counted as both running.
	sort.Slice(edges, func(i, j int) bool {
		if edges[i].at.Equal(edges[j].at) {
			return edges[i].delta < edges[j].delta
		}
		return edges[i].at.Before(edges[j].at)
	})
	lo, hi = count, count
	for _, e := range edges {
		if e.at.After(to) {
			break
		}
		count += e.delta
		lo, hi = min(lo, count), max(hi, count)
	}
	return lo, hi
}

func clock(t time.Time) string { return t.Format("15:04:05.000") }
