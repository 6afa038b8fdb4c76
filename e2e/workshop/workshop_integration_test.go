//go:build integration

package workshop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/swarmlab/swarmlab/lab/topology"
)

const (
	// labPrefix names the labs the runner brings up: ws-<group>.
	labPrefix = "ws-"
	// upTimeout bounds one bring-up (nodes, registry, image builds, stacks).
	upTimeout = 10 * time.Minute
	// stepTimeout bounds one step; the waits inside a page have their own,
	// shorter timeouts and say what they last saw.
	stepTimeout = 10 * time.Minute
)

// workshopStacks are the stacks the workshop expects on a topology, each
// from app/<name>/stack.yml; the topology is completed with the ones it
// lacks but the checkout has (until the lead wires them into it).
var workshopStacks = map[string][]string{"swarm-3": {"invoices", "viz"}}

// TestWorkshop runs every page of docs/workshop as a reader would: one fresh
// lab per group of pages (brought up with scripts/swarmlab, as the README
// says), the lab's env from `scripts/swarmlab env`, each ```sh step with
// bash, each ```expect block checked against the step's output.
//
// SWARMLAB_WORKSHOP_LAB=NAME runs the pages on an existing lab instead of a
// fresh one (for page authors; the lab is kept). SWARMLAB_KEEP=1 keeps the
// labs the runner brings up. SWARMLAB_WORKSHOP_PARALLEL=1 runs the groups
// one after another.
func TestWorkshop(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	pages, err := Load(filepath.Join(root, "docs", "workshop"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var order []string
	groups := map[string][]Page{}
	for _, p := range pages {
		if _, ok := groups[p.Group]; !ok {
			order = append(order, p.Group)
		}
		groups[p.Group] = append(groups[p.Group], p)
	}
	// The groups run side by side, each on its own lab: most of a page's
	// time is the swarm's own waits (a scale's monitor period, a node's
	// heartbeat, a Raft election), not CPU.
	// The CLI once, before the groups call scripts/swarmlab at the same time.
	build := exec.Command("go", "build", "-o", filepath.Join(root, ".cache", "bin", "swarmlab"), "./lab/cmd/swarmlab")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the CLI: %v\n%s", err, out)
	}
	// t.Run from goroutines rather than t.Parallel, which go test bounds
	// by -parallel (GOMAXPROCS: 2 here).
	slots := make(chan struct{}, parallelGroups())
	var wg sync.WaitGroup
	for _, g := range order {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			t.Run(g, func(t *testing.T) { runGroup(t, root, g, groups[g]) })
		})
	}
	wg.Wait()
	t.Logf("workshop: %d pages in %d groups, at most %d at once, %.0fs in all", len(pages), len(order), parallelGroups(), time.Since(start).Seconds())
}

// parallelGroups is how many groups run at once: SWARMLAB_WORKSHOP_PARALLEL,
// 3 by default (every group of the shipped pages: 11 nodes, about 3 GB).
func parallelGroups() int {
	if os.Getenv("SWARMLAB_WORKSHOP_LAB") != "" {
		return 1 // an author's one lab runs the groups in turn
	}
	if n, err := strconv.Atoi(os.Getenv("SWARMLAB_WORKSHOP_PARALLEL")); err == nil && n > 0 {
		return n
	}
	return 3
}

func runGroup(t *testing.T, root, group string, pages []Page) {
	topo := pages[0].Topology
	existing := os.Getenv("SWARMLAB_WORKSHOP_LAB")
	var topoPath string
	var stacks []string
	if existing == "" {
		var err error
		if topoPath, stacks, err = groupTopology(t, root, topo); err != nil {
			t.Fatal(err)
		}
	}
	missing := map[string]string{} // page path -> why it cannot run
	for _, p := range pages {
		if existing != "" {
			break // the author's lab has what it has
		}
		if why := p.NotRun(stacks); why != "" {
			missing[p.Path] = why
		}
	}
	if len(missing) == len(pages) {
		for _, p := range pages {
			t.Run(pageName(p), func(t *testing.T) { t.Skip(missing[p.Path]) })
		}
		return
	}

	name := labPrefix + group
	if existing != "" {
		name = existing
		t.Logf("running group %s on the existing lab %s (SWARMLAB_WORKSHOP_LAB)", group, name)
	} else {
		bringUp(t, root, name, topoPath)
	}
	env, err := swarmlab(context.Background(), root, "env", name)
	if err != nil {
		t.Fatalf("swarmlab env %s: %v\n%s", name, err, env)
	}

	for _, p := range pages {
		t.Run(pageName(p), func(t *testing.T) {
			if why, ok := missing[p.Path]; ok {
				t.Skip(why)
			}
			for _, s := range p.Setup {
				t.Logf("%s:%d: setup block not run: the runner brought up lab %s from %s itself", rel(root, p.Path), s.Line, name, topo)
			}
			pageStart := time.Now()
			for _, s := range p.Steps {
				runStep(t, root, rel(root, p.Path), env, s)
			}
			t.Logf("%s: %d steps passed in %.1fs", rel(root, p.Path), len(p.Steps), time.Since(pageStart).Seconds())
		})
	}
}

// groupTopology returns the topology file a group's lab comes from, and
// the stacks it deploys: the shipped topology, or a copy of it completed
// with the workshop stacks it lacks but the checkout has.
func groupTopology(t *testing.T, root, name string) (string, []string, error) {
	path := filepath.Join(root, "topologies", name+".yaml")
	// LoadFile defaults too: a stack's name comes from its directory.
	top, _, err := topology.LoadFile(path)
	if err != nil {
		return "", nil, err
	}
	var have []string
	for _, s := range top.Stacks {
		have = append(have, s.Name)
	}
	var add []string
	for _, s := range workshopStacks[name] {
		f := filepath.Join(root, "app", s, "stack.yml")
		if !slices.Contains(have, s) && exists(f) {
			add = append(add, f)
			have = append(have, s)
		}
	}
	if len(add) == 0 {
		return path, have, nil
	}
	// A copy, with every stack file made absolute.
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", nil, err
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return "", nil, err
	}
	var list []any
	for i := range top.Stacks {
		list = append(list, map[string]any{"name": top.Stacks[i].Name, "file": top.StackPath(i)})
	}
	for _, f := range add {
		list = append(list, map[string]any{"file": f})
	}
	doc["stacks"] = list
	out, err := yaml.Marshal(doc)
	if err != nil {
		return "", nil, err
	}
	cp := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(cp, out, 0o644); err != nil {
		return "", nil, err
	}
	t.Logf("topologies/%s.yaml lacks stacks the workshop uses: running on a copy with %s", name, strings.Join(add, ", "))
	return cp, have, nil
}

// bringUp brings up a fresh lab (removing a stale one of the same name) and
// removes it when the group is done.
func bringUp(t *testing.T, root, name, topoPath string) {
	ctx := context.Background()
	// Whatever an earlier, interrupted run left under this name goes first
	// (down is a no-op when there is no such lab).
	if out, err := swarmlab(ctx, root, "down", name); err != nil {
		t.Fatalf("swarmlab down %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() {
		if os.Getenv("SWARMLAB_KEEP") == "1" {
			t.Logf("SWARMLAB_KEEP=1: lab %s kept; remove it with scripts/swarmlab down %s", name, name)
			return
		}
		if out, err := swarmlab(context.Background(), root, "down", name); err != nil {
			t.Errorf("swarmlab down %s: %v\n%s", name, err, out)
		}
	})
	upCtx, cancel := context.WithTimeout(ctx, upTimeout)
	defer cancel()
	start := time.Now()
	out, err := swarmlab(upCtx, root, "up", topoPath, "--name", name)
	if err != nil {
		t.Fatalf("swarmlab up %s --name %s: %v\n%s", topoPath, name, err, out)
	}
	t.Logf("lab %s up in %.1fs (scripts/swarmlab up; the CLI was built before the groups)", name, time.Since(start).Seconds())
}

// runStep runs one ```sh block with bash in the lab's env and checks its
// expectations; a failure names the page and line, and shows the output.
func runStep(t *testing.T, root, page, env string, s Step) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	// The env first, as a reader's shell has it; then the step, stopping at
	// the first command that fails (a pipe fails if any part does).
	script := env + "\nset -eo pipefail\n" + s.Script
	start := time.Now()
	out, exit, err := bash(ctx, root, script)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("%s:%d: %v after %.1fs\n--- step:\n%s--- output:\n%s", page, s.Line, err, took.Seconds(), s.Script, tail(out))
	}
	if err := s.Expect.Check(page, out, exit); err != nil {
		t.Fatalf("%s:%d: %v (after %.1fs)\n--- step:\n%s--- output:\n%s", page, s.Line, err, took.Seconds(), s.Script, tail(out))
	}
	t.Logf("%s:%d: ok in %.1fs", page, s.Line, took.Seconds())
}

// bash runs a script in the repository root, and returns its combined
// output and exit status; err is set only when it could not run or ran out
// of time.
func bash(ctx context.Context, dir, script string) (string, int, error) {
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = dir
	cmd.Env = baseEnv()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own process group, so a timeout ends the waits and docker
	// commands it started too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		return out.String(), -1, fmt.Errorf("timed out after %s", stepTimeout)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), ee.ExitCode(), nil
	}
	if err != nil {
		return out.String(), -1, err
	}
	return out.String(), 0, nil
}

// swarmlab runs scripts/swarmlab, the command the pages use.
func swarmlab(ctx context.Context, root string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(root, "scripts", "swarmlab"), args...)
	cmd.Dir = root
	cmd.Env = baseEnv()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// baseEnv is the test's environment without anything that would point the
// docker CLI or the lab commands elsewhere than the env script says.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "SWARMLAB_LAB", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "PATH="+os.Getenv("PATH")+":/usr/local/go/bin")
}

// outputLines is how much of a failed step's output is shown: docker's
// progress lines can run to hundreds.
const outputLines = 60

// tail is the end of a step's output, saying how much was left out.
func tail(out string) string {
	lines := strings.SplitAfter(out, "\n")
	if len(lines) <= outputLines {
		return out
	}
	return fmt.Sprintf("[%d lines left out]\n", len(lines)-outputLines) + strings.Join(lines[len(lines)-outputLines:], "")
}

func pageName(p Page) string { return strings.TrimSuffix(filepath.Base(p.Path), ".md") }

func rel(root, path string) string {
	if r, err := filepath.Rel(root, path); err == nil {
		return r
	}
	return path
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
