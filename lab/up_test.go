package lab

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// On a terminal the running step shows a clock that moves; in a log each
// step is exactly one line, written when it ends.
func TestStepProgress(t *testing.T) {
	slow := func(context.Context) error { time.Sleep(120 * time.Millisecond); return nil }

	var tty bytes.Buffer
	r := &runner{out: &tty, lab: &Lab{}, live: true, tick: 20 * time.Millisecond}
	if err := r.step(context.Background(), "Forming the swarm", slow); err != nil {
		t.Fatal(err)
	}
	redraws := strings.Count(tty.String(), " • Forming the swarm")
	if redraws < 3 {
		t.Errorf("live output redrew the running step %d times, want several (a ticking clock): %q", redraws, tty.String())
	}
	if !strings.Contains(tty.String(), "0.1s") {
		t.Errorf("live output never showed the elapsed time passing 0.1s: %q", tty.String())
	}
	if !strings.HasSuffix(tty.String(), "s\n") || !strings.Contains(tty.String(), "\r\033[K ✓ Forming the swarm") {
		t.Errorf("live output does not end with the step's final line: %q", tty.String())
	}

	var log bytes.Buffer
	r = &runner{out: &log, lab: &Lab{}}
	if err := r.step(context.Background(), "Forming the swarm", slow); err != nil {
		t.Fatal(err)
	}
	fail := func(context.Context) error { return errors.New("boom") }
	if err := r.step(context.Background(), "Deploying 1 stacks", fail); err == nil || !strings.Contains(err.Error(), "deploying 1 stacks: boom") {
		t.Errorf("a failed step's error = %v, want it to name the step", err)
	}
	lines := strings.Split(strings.TrimSuffix(log.String(), "\n"), "\n")
	if len(lines) != 2 || strings.ContainsAny(log.String(), "\r\033") {
		t.Fatalf("log output should be one plain line per step, got %q", log.String())
	}
	if !strings.HasPrefix(lines[0], " ✓ Forming the swarm") || !strings.HasPrefix(lines[1], " ✗ Deploying 1 stacks") {
		t.Errorf("log lines = %q", lines)
	}
	if n := len(r.lab.bringUp.Steps); n != 2 {
		t.Errorf("%d step timings recorded, want 2", n)
	}
}

// A background job is reported when joined, with its own duration and
// start, and the parts it timed.
func TestBackgroundJobJoin(t *testing.T) {
	var log bytes.Buffer
	r := &runner{out: &log, lab: &Lab{}, start: time.Now()}
	j := r.background(context.Background(), "Building and pushing 2 images", func(ctx context.Context) error {
		subStep(ctx, "build a", func() error { time.Sleep(30 * time.Millisecond); return nil })
		subStep(ctx, "push a", func() error { return nil })
		return nil
	})
	if err := r.step(context.Background(), "Forming the swarm", func(context.Context) error { time.Sleep(60 * time.Millisecond); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := r.join(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	steps := r.lab.bringUp.Steps
	if len(steps) != 2 {
		t.Fatalf("steps %+v", steps)
	}
	job := steps[1]
	if job.Duration < 30*time.Millisecond || job.Duration > steps[0].Duration || job.Start > steps[0].Start+10*time.Millisecond {
		t.Errorf("job timing %+v: want its own duration (30ms..), begun with the swarm step %+v", job, steps[0])
	}
	if len(job.Sub) != 2 || job.Sub[0].Name != "build a" || job.Sub[1].Name != "push a" || job.Sub[0].Duration < 30*time.Millisecond {
		t.Errorf("job parts %+v", job.Sub)
	}
	if !strings.Contains(log.String(), "Building and pushing 2 images") || !strings.Contains(log.String(), "(alongside, from 0.0s; waited ") {
		t.Errorf("job line: %q", log.String())
	}

	failing := r.background(context.Background(), "Building 1 images", func(context.Context) error { return errors.New("boom") })
	if err := r.join(context.Background(), failing); err == nil || !strings.Contains(err.Error(), "building 1 images: boom") {
		t.Errorf("a failed job's error = %v, want it to name the job", err)
	}
}
