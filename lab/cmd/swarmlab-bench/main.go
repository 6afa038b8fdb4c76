// Command swarmlab-bench measures the figures of the speed issue, each next
// to a baseline measured in the same run, and prints them as one table
// (scripts/bench runs it under the lab lock). These machines are shared and
// noisy: a figure alone says little, its ratio to the baseline of the same
// minute says more. Nothing here is a test; nothing fails on a slow figure.
//
//	swarmlab-bench                       up (swarm-3, vote-6), node kill, votes
//	swarmlab-bench -only up,kill         some of them
//	swarmlab-bench -votes 1000000        the 1 M votes run
//	swarmlab-bench -suites               also the e2e suites and the workshop pages
//	swarmlab-bench -json FILE            the figures as JSON too
//
// The baselines: for a bring-up, the bare swarm of the same topology (its
// nodes, no stacks) brought up just before; for a node kill, the time until
// the manager marked the node down (detection, which the heartbeat sets);
// for votes, the ceiling of the same path (empty GETs of the vote service's
// /healthz through the edge) measured just before; for the suites, the bare
// swarm-3 bring-up of this run.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/app/vote/loadgen"
	"github.com/swarmlab/swarmlab/lab"
	"github.com/swarmlab/swarmlab/lab/images"
	"github.com/swarmlab/swarmlab/lab/provider"
	"github.com/swarmlab/swarmlab/lab/topology"
	"github.com/swarmlab/swarmlab/lab/wait"
)

// figure is one row of the table.
type figure struct {
	What     string  `json:"what"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	Baseline string  `json:"baseline"`
	Base     float64 `json:"base"`
	Ratio    float64 `json:"ratio"` // Value / Base
	Target   string  `json:"target"`
	Note     string  `json:"note,omitempty"`
}

type bench struct {
	root    string
	out     io.Writer
	figures []figure
	bare    map[string]float64 // each topology's bare bring-up in this run, seconds
}

func main() {
	only := flag.String("only", "up,kill,votes", "comma-separated: up, kill, votes")
	votes := flag.Int("votes", 200000, "votes to send in the votes figure (1000000 for the 1 M run)")
	suites := flag.Bool("suites", false, "also time the e2e suites (swarm-3, vote-6, swarm-ha) and the workshop pages")
	jsonOut := flag.String("json", "", "also write the figures to this file as JSON")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, err := images.ModuleRoot(".")
	if err != nil {
		fatal(fmt.Errorf("%w: run from the repository", err))
	}
	b := &bench{root: root, out: os.Stderr, bare: map[string]float64{}}
	want := strings.Split(*only, ",")
	start := time.Now()
	if slices.Contains(want, "up") {
		b.up(ctx, "swarm-3", "≤ 12 s and ≤ 2.5 × bare")
		b.up(ctx, "vote-6", "≤ 20 s and ≤ 3 × bare")
	}
	if slices.Contains(want, "kill") {
		b.kill(ctx)
	}
	if slices.Contains(want, "votes") {
		b.votes(ctx, *votes)
	}
	if *suites {
		b.suites(ctx)
	}
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "bench: interrupted; the figures so far:")
	}
	b.print(os.Stdout, time.Since(start))
	if *jsonOut != "" {
		data, _ := json.MarshalIndent(b.figures, "", "  ")
		if err := os.WriteFile(*jsonOut, append(data, '\n'), 0o644); err != nil {
			fatal(err)
		}
	}
}

func fatal(err error) {
	fmt.Fprintf(os.Stderr, "bench: %v\n", err)
	os.Exit(1)
}

func (b *bench) add(f figure) {
	if f.Base > 0 {
		f.Ratio = f.Value / f.Base
	}
	b.figures = append(b.figures, f)
	fmt.Fprintf(b.out, "bench: %s: %.2f %s (baseline %s: %.2f; ratio %.2f)%s\n",
		f.What, f.Value, f.Unit, f.Baseline, f.Base, f.Ratio, suffix(f.Note))
}

func (b *bench) miss(what, why string) {
	b.figures = append(b.figures, figure{What: what, Note: "NOT MEASURED: " + why})
	fmt.Fprintf(b.out, "bench: %s: NOT MEASURED: %s\n", what, why)
}

func suffix(s string) string {
	if s == "" {
		return ""
	}
	return "; " + s
}

func (b *bench) topology(name string) (*topology.Topology, error) {
	t, _, err := topology.LoadFile(filepath.Join(b.root, "topologies", name+".yaml"))
	return t, err
}

// bring brings topo up as lab name, and measures until every URL the lab
// prints answers (any HTTP status below 500).
func (b *bench) bring(ctx context.Context, topo *topology.Topology, name string) (*lab.Lab, time.Duration, error) {
	lab.Down(ctx, name) // one left by an interrupted run
	start := time.Now()
	l, err := lab.Up(ctx, topo, lab.Options{Name: name})
	if err != nil {
		return nil, 0, err
	}
	eps, err := l.Endpoints(ctx)
	if err != nil {
		return l, 0, err
	}
	// The lab's HTTPS endpoints carry the certificate it generated; an
	// answer is what is measured here (app/vote/e2e checks the certificate).
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for _, ep := range eps {
		// A URL may carry a note after it: "http://x:8404/ (user admin, ...)".
		url := strings.Fields(ep.URL)[0]
		if _, err := wait.For(ctx, url+" ("+ep.Service+") to answer", time.Minute, 100*time.Millisecond, func(ctx context.Context) wait.Result {
			resp, err := hc.Get(url)
			if err != nil {
				return wait.Continue("%v", err)
			}
			resp.Body.Close()
			if resp.StatusCode >= 500 {
				return wait.Continue("HTTP %d", resp.StatusCode)
			}
			return wait.Done(resp.Status)
		}); err != nil {
			return l, 0, err
		}
	}
	return l, time.Since(start), nil
}

func down(l *lab.Lab) {
	if l != nil {
		if err := l.Down(context.Background()); err != nil {
			fmt.Fprintf(os.Stderr, "bench: down %s: %v\n", l.Name(), err)
		}
	}
}

// up measures a topology's bring-up with its stacks against its bare swarm.
func (b *bench) up(ctx context.Context, name, target string) {
	what := "up " + name + " with its stacks, until every printed URL answers"
	topo, err := b.topology(name)
	if err != nil {
		b.miss(what, err.Error())
		return
	}
	bare, err := b.bareUp(ctx, topo)
	if err != nil {
		b.miss(what, "bare swarm: "+err.Error())
		return
	}
	l, full, err := b.bring(ctx, topo, "bench-"+name)
	down(l)
	if err != nil {
		b.miss(what, err.Error())
		return
	}
	b.add(figure{What: what, Value: full.Seconds(), Unit: "s", Baseline: "bare " + name, Base: bare, Target: target})
}

// bareUp brings topo up without its stacks (once per topology in a run)
// and returns how long that took, in seconds.
func (b *bench) bareUp(ctx context.Context, topo *topology.Topology) (float64, error) {
	if s, ok := b.bare[topo.Name]; ok {
		return s, nil
	}
	bare := *topo // Up copies it again; only Stacks differs
	bare.Stacks = nil
	l, d, err := b.bring(ctx, &bare, "bench-bare")
	down(l)
	if err != nil {
		return 0, err
	}
	b.bare[topo.Name] = d.Seconds()
	return d.Seconds(), nil
}

// kill kills the worker that runs the most tasks of the e2e stack on a
// swarm-3 lab,
// and measures until the manager marks it down (detection) and until every
// task it ran runs elsewhere (replacement: every service back at its
// replicas with none of them on that node).
func (b *bench) kill(ctx context.Context) {
	const what = "node killed → all of its tasks running elsewhere"
	topo, err := b.topology("swarm-3")
	if err != nil {
		b.miss(what, err.Error())
		return
	}
	// The e2e suite's stack (echo behind an HAProxy edge, restart delay 0,
	// health probes every 500 ms), which its failover spec kills a node of.
	topo.Stacks = nil
	l, _, err := b.bring(ctx, topo, "bench-kill")
	defer down(l)
	if err != nil {
		b.miss(what, err.Error())
		return
	}
	if _, err := l.Stacks().Deploy(ctx, "e2e", filepath.Join(b.root, "e2e", "testdata", "edge", "stack.yml"), lab.StackOptions{}); err != nil {
		b.miss(what, "deploying the e2e stack: "+err.Error())
		return
	}
	mgr, _, err := l.Manager(ctx)
	if err != nil {
		b.miss(what, err.Error())
		return
	}
	victim, id, n, err := busiestWorker(ctx, mgr)
	if err != nil {
		b.miss(what, err.Error())
		return
	}
	start := time.Now()
	if err := l.Do(ctx, victim, provider.Kill); err != nil {
		b.miss(what, err.Error())
		return
	}
	var detected time.Duration
	_, err = wait.For(ctx, "node "+victim+" to be down and its "+fmt.Sprint(n)+" tasks to run elsewhere", time.Minute, 50*time.Millisecond, func(ctx context.Context) wait.Result {
		if detected == 0 {
			res, err := mgr.NodeInspect(ctx, id, client.NodeInspectOptions{})
			if err != nil {
				return wait.Continue("inspecting %s: %v", victim, err)
			}
			if node := res.Node; node.Status.State != swarm.NodeStateDown {
				return wait.Continue("%s is %s", victim, res.Node.Status.State)
			}
			detected = time.Since(start)
		}
		left, err := notReplaced(ctx, mgr, id)
		if err != nil {
			return wait.Continue("%v", err)
		}
		if len(left) > 0 {
			return wait.Continue("not yet running elsewhere: %s", strings.Join(left, ", "))
		}
		return wait.Done("every service at its replicas, none on " + victim)
	})
	replaced := time.Since(start)
	if err != nil {
		b.miss(what, err.Error())
		return
	}
	b.add(figure{What: what, Value: replaced.Seconds(), Unit: "s", Baseline: "node marked down", Base: detected.Seconds(), Target: "≤ 4 s",
		Note: fmt.Sprintf("%s ran %d tasks; swarm-3's dispatcher heartbeat %s", victim, n, topo.Swarm.DispatcherHeartbeat)})
}

// busiestWorker is the worker that runs the most running tasks.
func busiestWorker(ctx context.Context, mgr client.APIClient) (name, id string, count int, err error) {
	nodes, err := mgr.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return "", "", 0, err
	}
	tasks, err := mgr.TaskList(ctx, client.TaskListOptions{Filters: make(client.Filters).Add("desired-state", "running")})
	if err != nil {
		return "", "", 0, err
	}
	per := map[string]int{}
	for _, t := range tasks.Items {
		if t.Status.State == swarm.TaskStateRunning {
			per[t.NodeID]++
		}
	}
	for _, n := range nodes.Items {
		if n.Spec.Role == swarm.NodeRoleWorker && per[n.ID] > count {
			name, id, count = n.Description.Hostname, n.ID, per[n.ID]
		}
	}
	if name == "" {
		return "", "", 0, errors.New("no worker runs a task")
	}
	return name, id, count, nil
}

// notReplaced lists the replicated services that do not yet run all their
// replicas off the node.
func notReplaced(ctx context.Context, mgr client.APIClient, node string) ([]string, error) {
	svcs, err := mgr.ServiceList(ctx, client.ServiceListOptions{})
	if err != nil {
		return nil, err
	}
	tasks, err := mgr.TaskList(ctx, client.TaskListOptions{Filters: make(client.Filters).Add("desired-state", "running")})
	if err != nil {
		return nil, err
	}
	running := map[string]int{}
	for _, t := range tasks.Items {
		if t.Status.State == swarm.TaskStateRunning && t.NodeID != node {
			running[t.ServiceID]++
		}
	}
	var left []string
	for _, s := range svcs.Items {
		if s.Spec.Mode.Replicated == nil || s.Spec.Mode.Replicated.Replicas == nil {
			continue
		}
		if want := int(*s.Spec.Mode.Replicated.Replicas); running[s.ID] < want {
			left = append(left, fmt.Sprintf("%s %d/%d", s.Spec.Name, running[s.ID], want))
		}
	}
	return left, nil
}

// votes measures votes/s through vote-6's edge against the ceiling of the
// same path, then checks every voter back.
func (b *bench) votes(ctx context.Context, n int) {
	what := fmt.Sprintf("votes/s through the edge (%d votes, each voter checked back)", n)
	topo, err := b.topology("vote-6")
	if err != nil {
		b.miss(what, err.Error())
		return
	}
	l, _, err := b.bring(ctx, topo, "bench-votes")
	defer down(l)
	if err != nil {
		b.miss(what, err.Error())
		return
	}
	eps, err := l.Endpoints(ctx)
	if err != nil {
		b.miss(what, err.Error())
		return
	}
	urls := map[string]string{}
	for _, ep := range eps {
		urls[ep.Name] = ep.URL
	}
	if urls["vote"] == "" || urls["results"] == "" {
		b.miss(what, fmt.Sprintf("vote-6 printed no vote and results URLs: %v", urls))
		return
	}
	ceil, err := loadgen.Ceiling(ctx, strings.TrimSuffix(urls["vote"], "/")+"/healthz", 64, 15*time.Second)
	if err != nil {
		b.miss(what, "ceiling: "+err.Error())
		return
	}
	rep, err := loadgen.Run(ctx, loadgen.Config{URLs: []string{urls["vote"]}, ResultsURL: urls["results"], Votes: n, Concurrency: 64, Timeout: 3 * time.Minute})
	if err != nil {
		b.miss(what, err.Error())
		return
	}
	verdict := "every voter counted with its latest vote"
	if err := rep.Verdict(); err != nil {
		verdict = "CHECK FAILED: " + err.Error()
	}
	b.add(figure{What: what, Value: rep.VotesPerSec, Unit: "votes/s", Baseline: "ceiling (/healthz through the edge)", Base: ceil.PerSec,
		Target: "≥ 6,000/s and ≥ 0.8 × ceiling",
		Note:   fmt.Sprintf("%d accepted in %.1f s, counted %.2f s after the last reply; %d voters checked, %d lost, %d unexpected; %s", rep.Accepted, rep.SendSeconds, rep.CountedAfter, rep.Checked, rep.Lost.Count, rep.Unexpected.Count, verdict)})
	if n >= 1000000 {
		total := rep.SendSeconds + max(rep.CountedAfter, 0)
		b.add(figure{What: "1,000,000 votes sent and counted exactly once", Value: total, Unit: "s", Baseline: "1 M votes at the ceiling", Base: float64(n) / ceil.PerSec, Target: "≤ 150 s", Note: verdict})
	}
}

// suites times each e2e suite and the workshop pages as scripts/test runs
// them, against the bare swarm-3 bring-up of this run.
func (b *bench) suites(ctx context.Context) {
	topo, err := b.topology("swarm-3")
	var base float64
	if err == nil {
		base, err = b.bareUp(ctx, topo)
	}
	if err != nil {
		b.miss("e2e suites", "bare swarm-3: "+err.Error())
		return
	}
	run := func(what, target string, env []string, args ...string) {
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = b.root
		cmd.Env = append(os.Environ(), env...)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		d := time.Since(start)
		if err != nil {
			tail := string(out)
			if len(tail) > 2000 {
				tail = tail[len(tail)-2000:]
			}
			b.miss(what, fmt.Sprintf("%v after %.0f s:\n%s", err, d.Seconds(), tail))
			return
		}
		b.add(figure{What: what, Value: d.Seconds(), Unit: "s", Baseline: "bare swarm-3 up", Base: base, Target: target})
	}
	for _, s := range []struct{ topo, target string }{{"swarm-3", "≤ 100 s"}, {"vote-6", "≤ 180 s"}, {"swarm-ha", "≤ 180 s"}} {
		run("e2e suite on "+s.topo, s.target, []string{"SWARMLAB_TOPOLOGY=" + s.topo}, "test", "-count=1", "-timeout", "30m", "-tags", "e2e", "./e2e")
	}
	run("workshop pages", "≤ 240 s", nil, "test", "-count=1", "-timeout", "60m", "-tags", "integration", "./e2e/workshop")
}

func (b *bench) print(w io.Writer, took time.Duration) {
	fmt.Fprintf(w, "\nswarmlab bench, %s (%.0f s in all)\n\n", time.Now().Format("2006-01-02 15:04 MST"), took.Seconds())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tvalue\tbaseline (same run)\tratio\ttarget")
	for _, f := range b.figures {
		if f.Unit == "" {
			fmt.Fprintf(tw, "%s\t%s\t\t\t\n", f.What, f.Note)
			continue
		}
		fmt.Fprintf(tw, "%s\t%.2f %s\t%s: %.2f\t%.2f\t%s\n", f.What, f.Value, f.Unit, f.Baseline, f.Base, f.Ratio, f.Target)
	}
	tw.Flush()
	for _, f := range b.figures {
		if f.Unit != "" && f.Note != "" {
			fmt.Fprintf(w, "  %s: %s\n", f.What, f.Note)
		}
	}
	fmt.Fprintln(w, "\nNot measured here: the first run on a fresh machine (engine install, base image) and the clean-clone scripts/test; .ci/run measures both (docs/benchmarks.md).")
}
