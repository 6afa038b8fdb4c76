package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab/images"
	"github.com/swarmlab/swarmlab/lab/internal/engine"
	"github.com/swarmlab/swarmlab/lab/internal/registry"
	"github.com/swarmlab/swarmlab/lab/provider"
	"github.com/swarmlab/swarmlab/lab/provider/common"
	"github.com/swarmlab/swarmlab/lab/stack"
	"github.com/swarmlab/swarmlab/lab/swarm"
	"github.com/swarmlab/swarmlab/lab/topology"
)

// Up brings the topology up as a converged swarm. It is a list of small named
// actions over one context and one upState (see plan), run in order; each
// is reported on opts.Out as it finishes.
//
// The provider is opts.Provider, or the one the topology names (NewProvider)
// on this machine's engine. Cancellation is through ctx only: Up installs
// no signal handler and never exits the process. If an action fails, or
// ctx ends, or an action panics, everything this run made is removed (see
// Options.KeepOnFailure), with a context of its own bounded by
// cleanupTimeout, before Up returns or re-panics. The error of a bring-up
// whose ctx ended wraps ctx.Err(). Up never changes t: the lab gets a copy,
// under opts.Name.
func Up(ctx context.Context, t *topology.Topology, opts Options) (l *Lab, err error) {
	t = named(t, opts.Name)
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	defer func() { err = withCtxErr(ctx, err) }()
	host := opts.Host
	if host == nil {
		c, err := Host(ctx)
		if err != nil {
			return nil, err
		}
		host = c
	}
	p := opts.Provider
	if p == nil {
		if p, err = NewProvider(ctx, host, t); err != nil {
			return nil, err
		}
	}
	l = &Lab{name: t.Name, runID: newRunID(), topo: t, prov: p, host: host}
	// Every lab is found again by name through its record, written when
	// its machines are about to be made.
	s := &upState{lab: l, rec: newRecord(t, l.runID, HostAddr()), d: &deployment{}, registryUp: make(chan struct{}), seq: sequential(), progress: opts.Progress}

	removeOnFailure := func() {
		afterFailure(ctx, opts.KeepOnFailure, out, l.name, func(cctx context.Context) error {
			derr := teardown(cctx, p, l.cluster, l.name, l.runID)
			l.closeCluster()
			switch {
			case l.cluster != nil: // the name was ours: so is its state
				derr = errors.Join(derr, removeState(l.name))
			case s.recorded: // the record is ours, the rest may not be
				derr = errors.Join(derr, removeRecord(l.name))
			}
			return derr
		})
	}
	defer func() {
		if r := recover(); r != nil {
			removeOnFailure()
			panic(r)
		}
		if err != nil {
			removeOnFailure()
		}
	}()

	start := time.Now()
	r := &runner{out: out, lab: l, live: isTerminal(out), start: start}
	actions, err := plan(s)
	if err != nil {
		return l, err
	}
	err = r.run(ctx, s, actions)
	for _, w := range s.d.warnings {
		fmt.Fprintf(out, "warning: %s\n", w)
	}
	if err != nil {
		return l, err
	}
	l.bringUp.Total = time.Since(start)
	if s.d.tracker != nil {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		l.bringUp.Services = l.serviceTimings(pctx, s.d.tracker, start)
		cancel()
	}
	if err := ctx.Err(); err != nil { // cancelled at the very end: still not up
		return l, err
	}
	return l, nil
}

// upState is what the actions of one bring-up share.
type upState struct {
	lab *Lab
	rec *Record
	// recorded is set once this run has written the lab's record.
	recorded bool
	d        *deployment
	// registryUp is closed once the lab registry answers, which the
	// background image job waits for before it pushes.
	registryUp chan struct{}
	seq        bool // SWARMLAB_UP_SEQUENTIAL: see sequential
	// progress gets the lines of image builds (Options.Progress).
	progress io.Writer
}

// An action is one named part of a bring-up.
type action interface {
	Name() string
	Run(ctx context.Context, s *upState) error
}

// step is an action the bring-up waits for, reported as one line.
type step struct {
	name string
	run  func(ctx context.Context, s *upState) error
}

func (a step) Name() string                              { return a.name }
func (a step) Run(ctx context.Context, s *upState) error { return a.run(ctx, s) }

// alongside is an action that starts a job running beside the steps that
// follow, and returns at once; the job is reported by the joinJob of the
// same name, which waits for it.
type alongside step

func (a alongside) Name() string                              { return a.name }
func (a alongside) Run(ctx context.Context, s *upState) error { return a.run(ctx, s) }

// joinJob waits for the alongside job of its name and reports it; then
// runs after, if the job succeeded.
type joinJob step

func (a joinJob) Name() string                              { return a.name }
func (a joinJob) Run(ctx context.Context, s *upState) error { return a.run(ctx, s) }

// plan lists the actions that bring s's topology up, in order. The stacks'
// images are built on the host while the nodes start and the swarm forms
// (they need neither), and pushed as soon as the registry answers; the
// deploy step then only waits for them.
func plan(s *upState) ([]action, error) {
	l, t, d := s.lab, s.lab.topo, s.d
	var acts []action
	for i := range t.Stacks {
		specs, err := stackImageSpecs(t.StackPath(i))
		if err != nil {
			return nil, err
		}
		var imgs []*stackImage
		for j := range specs {
			imgs = append(imgs, &specs[j])
		}
		d.images = append(d.images, imgs)
	}
	imagesJob := ""
	if n := d.imageCount(); n > 0 && !s.seq {
		imagesJob = fmt.Sprintf("Building and pushing %d images", n)
		acts = append(acts, alongside{imagesJob, func(ctx context.Context, s *upState) error {
			if err := l.buildImages(ctx, d.allImages(), 0); err != nil {
				return err
			}
			select {
			case <-s.registryUp:
			case <-ctx.Done():
				return ctx.Err()
			}
			return l.pushImages(ctx, d.allImages())
		}})
	}
	acts = append(acts,
		step{"Checking images", func(ctx context.Context, s *upState) error {
			return ensureImages(ctx, s.lab.host, s.lab.topo, s.progress)
		}},
		step{fmt.Sprintf("Starting %d nodes and the registry", len(t.Nodes)), createMachines},
		step{"Preflight and registry push", func(ctx context.Context, s *upState) error { return s.lab.preflightAndPush(ctx) }},
		step{"Forming the swarm", func(ctx context.Context, s *upState) error { return s.lab.formSwarm(ctx) }},
		step{"Waiting for the swarm to converge", func(ctx context.Context, s *upState) error {
			ms, err := s.lab.Members()
			if err != nil {
				return err
			}
			mgr, _, err := s.lab.Manager(ctx)
			if err != nil {
				return err
			}
			return swarm.WaitConverged(ctx, mgr, ms, swarm.ConvergeTimeout)
		}},
	)
	if imagesJob != "" {
		acts = append(acts, joinJob{imagesJob, func(context.Context, *upState) error { d.built = true; return nil }})
	}
	if len(t.Stacks) > 0 {
		acts = append(acts, step{fmt.Sprintf("Deploying %d stacks", len(t.Stacks)), func(ctx context.Context, s *upState) error {
			return s.lab.deployStacks(ctx, s.d, s.seq)
		}})
	}
	return acts, nil
}

// createMachines records the lab, then has its provider make its machines
// and the registry.
func createMachines(ctx context.Context, s *upState) error {
	if err := writeRecord(s.rec); err != nil {
		return err
	}
	s.recorded = true
	l := s.lab
	c, err := l.prov.Create(ctx, l.topo, provider.CreateOptions{RunID: l.runID})
	l.cluster = c
	if err == nil {
		close(s.registryUp)
	}
	return err
}

// run runs the actions in order, each as a step, a job alongside, or the
// wait for one; it stops at the first that fails, and returns only once
// every job it started has ended (cancelled if need be).
func (r *runner) run(ctx context.Context, s *upState, actions []action) error {
	jobs := map[string]*job{}
	jctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		for _, j := range jobs {
			j.wait()
		}
	}()
	for _, a := range actions {
		var err error
		switch a := a.(type) {
		case alongside:
			jobs[a.name] = r.background(jctx, a.name, func(ctx context.Context) error { return a.Run(ctx, s) })
		case joinJob:
			j, ok := jobs[a.name]
			if !ok {
				return fmt.Errorf("bring-up: no job %q to wait for", a.name)
			}
			if err = r.join(ctx, j); err == nil {
				err = a.Run(ctx, s)
			}
		default:
			err = r.step(ctx, a.Name(), func(ctx context.Context) error { return a.Run(ctx, s) })
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// named returns a copy of t under name (none: t's own), so that Up never
// changes its caller's topology.
func named(t *topology.Topology, name string) *topology.Topology {
	c := *t
	c.Nodes = slices.Clone(t.Nodes)
	c.Stacks = slices.Clone(t.Stacks)
	if name != "" {
		c.Name = name
	}
	return &c
}

// cleanupTimeout bounds the removal of what a failed or cancelled bring-up
// made.
const cleanupTimeout = 2 * time.Minute

// afterFailure removes what a bring-up that failed, panicked or was
// cancelled made, by calling remove, unless keep asks to leave a failed lab
// for inspection. A bring-up whose ctx was cancelled (Ctrl-C in the CLI, an
// interrupted test run) is removed even with keep: its caller asked it to
// stop, not to fail; one whose ctx ran out of time failed like any other.
// remove gets a context that ctx's end does not reach, bounded by
// cleanupTimeout, so that the removal itself is not cut short.
func afterFailure(ctx context.Context, keep bool, out io.Writer, name string, remove func(context.Context) error) {
	cancelled := errors.Is(ctx.Err(), context.Canceled)
	if keep && !cancelled {
		fmt.Fprintf(out, "lab %s kept for inspection (--keep-on-failure); remove it with: swarmlab down %s\n", name, name)
		return
	}
	if cancelled {
		fmt.Fprintf(out, "bring-up of lab %s cancelled (%v): removing what it made\n", name, context.Cause(ctx))
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := remove(cctx); err != nil {
		fmt.Fprintf(out, "cleaning up lab %s: %v\n", name, err)
	}
}

// withCtxErr makes the error of a bring-up whose ctx has ended say so, for
// errors.Is(err, context.Canceled) and the like: a step cut short may fail
// with an error of its own (a wait that gave up, a lost connection).
func withCtxErr(ctx context.Context, err error) error {
	cerr := ctx.Err()
	if err == nil || cerr == nil || errors.Is(err, cerr) {
		return err
	}
	return fmt.Errorf("%w (%w)", err, cerr)
}

// sequential tells whether SWARMLAB_UP_SEQUENTIAL=1 asks for the bring-up
// of before the profile (session 4): each stack's images built one at a
// time in the deploy step, then pushed, then the stack deployed, one stack
// after the other. It is there to measure what the overlap saves.
func sequential() bool { return os.Getenv("SWARMLAB_UP_SEQUENTIAL") == "1" }

// runner runs named steps, reporting each with its elapsed time. On a
// terminal (live) the running step is shown with a clock that ticks; in a
// log each step is one line, written when it ends.
type runner struct {
	out  io.Writer
	lab  *Lab
	live bool
	// tick is how often the live line is redrawn (default liveTick).
	tick time.Duration
	// start is the start of the bring-up, which step times are offsets from.
	start time.Time
}

const liveTick = 100 * time.Millisecond

func (r *runner) step(ctx context.Context, name string, fn func(context.Context) error) error {
	start := time.Now()
	stopClock := func() {}
	if r.live {
		stopClock = r.clock(name, start)
	}
	prof := &profile{}
	err := fn(withProfile(ctx, prof))
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	d := time.Since(start)
	stopClock()
	note := ""
	if n := prof.stepNote(); n != "" && err == nil {
		note = "  " + n
	}
	return r.record(StepTiming{Name: name, Duration: d, Start: r.offset(start), Sub: prof.steps(r.base())}, err, note)
}

func (r *runner) base() time.Time {
	if r.start.IsZero() {
		r.start = time.Now()
	}
	return r.start
}

func (r *runner) offset(t time.Time) time.Duration {
	if d := t.Sub(r.base()); d > 0 {
		return d
	}
	return 0
}

// record appends a step's timing and writes its line.
func (r *runner) record(st StepTiming, err error, note string) error {
	r.lab.bringUp.Steps = append(r.lab.bringUp.Steps, st)
	mark := "✓"
	if err != nil {
		mark = "✗"
	}
	if r.live {
		fmt.Fprint(r.out, "\r\033[K")
	}
	fmt.Fprintf(r.out, " %s %-40s %6.2fs%s\n", mark, st.Name, st.Duration.Seconds(), note)
	if err != nil {
		return fmt.Errorf("%s: %w", strings.ToLower(st.Name[:1])+st.Name[1:], err)
	}
	return nil
}

// job is a step that runs alongside the others (background), reported
// when the bring-up needs its result (join).
type job struct {
	name  string
	start time.Time
	dur   time.Duration
	prof  *profile
	err   error
	done  chan struct{}
}

func (r *runner) background(ctx context.Context, name string, fn func(context.Context) error) *job {
	j := &job{name: name, start: time.Now(), prof: &profile{}, done: make(chan struct{})}
	r.base()
	go func() {
		defer close(j.done)
		j.err = fn(withProfile(ctx, j.prof))
		j.dur = time.Since(j.start)
	}()
	return j
}

func (j *job) wait() { <-j.done }

// join waits for a background job and reports it as a step, with its own
// duration and when it began; the wait itself is what the bring-up lost.
func (r *runner) join(ctx context.Context, j *job) error {
	waitStart := time.Now()
	stopClock := func() {}
	if r.live {
		stopClock = r.clock(j.name, j.start)
	}
	var err error
	select {
	case <-j.done:
		err = j.err
	case <-ctx.Done():
		err = ctx.Err()
	}
	stopClock()
	st := StepTiming{Name: j.name, Duration: j.dur, Start: r.offset(j.start)}
	if err == nil || j.dur > 0 {
		st.Sub = j.prof.steps(r.base())
	}
	if st.Duration == 0 {
		st.Duration = time.Since(j.start)
	}
	note := fmt.Sprintf("  (alongside, from %.1fs; waited %.2fs)", st.Start.Seconds(), time.Since(waitStart).Seconds())
	return r.record(st, err, note)
}

// profile collects the timed parts of one step (subStep), from any
// goroutine.
type profile struct {
	mu   sync.Mutex
	note string // what the step's line adds after its time (stepNote)
	subs []struct {
		name  string
		start time.Time
		d     time.Duration
	}
}

type profileKey struct{}

func withProfile(ctx context.Context, p *profile) context.Context {
	return context.WithValue(ctx, profileKey{}, p)
}

// stepNote sets what the line of the step running in ctx says after its
// time (the last call wins).
func stepNote(ctx context.Context, note string) {
	if p, ok := ctx.Value(profileKey{}).(*profile); ok {
		p.mu.Lock()
		p.note = note
		p.mu.Unlock()
	}
}

func (p *profile) stepNote() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.note
}

// subStep runs fn and records it as a part of the step running in ctx.
func subStep(ctx context.Context, name string, fn func() error) error {
	start := time.Now()
	err := fn()
	if p, ok := ctx.Value(profileKey{}).(*profile); ok {
		p.mu.Lock()
		p.subs = append(p.subs, struct {
			name  string
			start time.Time
			d     time.Duration
		}{name, start, time.Since(start)})
		p.mu.Unlock()
	}
	return err
}

// steps returns the parts in the order they began, offsets from base.
func (p *profile) steps(base time.Time) []StepTiming {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]StepTiming, 0, len(p.subs))
	for _, s := range p.subs {
		off := s.start.Sub(base)
		if off < 0 {
			off = 0
		}
		out = append(out, StepTiming{Name: s.name, Duration: s.d, Start: off})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start < out[j].Start })
	if len(out) == 0 {
		return nil
	}
	return out
}

// clock redraws " • name  1.2s" until the returned func is called; that
// func returns only once the last redraw is written, so the step's final
// line never interleaves with it.
func (r *runner) clock(name string, start time.Time) (stop func()) {
	tick := r.tick
	if tick <= 0 {
		tick = liveTick
	}
	draw := func() {
		fmt.Fprintf(r.out, "\r\033[K • %-40s %6.1fs", name, time.Since(start).Seconds())
	}
	draw()
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				draw()
			}
		}
	}()
	return func() { close(quit); <-done }
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// labImages are the lab images a bring-up of t needs on this machine's
// engine: the registry and the standard images it pushes, and for a docker
// topology the node image of its engine.
func labImages(t *topology.Topology) ([]images.Image, error) {
	need := []images.Image{images.Registry()}
	if t.Provider.Type == "" || t.Provider.Type == topology.ProviderDocker {
		node, err := images.NodeFor(t.Engine())
		if err != nil {
			return nil, err
		}
		need = append([]images.Image{node}, need...)
	}
	return append(need, images.Standard()...), nil
}

// ensureImages makes sure the images the lab needs are on the host engine:
// those that are missing are built (base and Debian images included, pulled
// or made with debootstrap where missing: see images.EnsureWith), one line
// per image on progress. With every image there it only looks.
func ensureImages(ctx context.Context, host client.APIClient, t *topology.Topology, progress io.Writer) error {
	need, err := labImages(t)
	if err != nil {
		return err
	}
	var missing []string
	for _, img := range need {
		if _, err := images.Resolve(ctx, host, img); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			missing = append(missing, img.Name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if progress == nil {
		progress = os.Stderr
	}
	logf := func(format string, args ...any) { fmt.Fprintf(progress, "images: "+format+"\n", args...) }
	logf("building what this lab lacks: %s", strings.Join(missing, ", "))
	start := time.Now()
	if _, err := images.EnsureWith(ctx, host, images.Options{Logf: logf, Only: missing}); err != nil {
		return err
	}
	logf("ready in %s", time.Since(start).Round(100*time.Millisecond))
	return nil
}

// EngineSummary says which Docker engine versions the nodes run, by node
// name (versions, from Info.NodeEngine): "26.1.5+dfsg1 on all 3 nodes", or
// for a mix, "26.1.5+dfsg1 on m1, w1; 20.10.24+dfsg1 on w2" (versions in
// the order of their first node); "unknown" for a node without one.
func EngineSummary(nodes []provider.Node, versions map[string]string) string {
	var order []string
	on := map[string][]string{}
	for _, n := range nodes {
		v := versions[n.Name()]
		if v == "" {
			v = "unknown"
		}
		if _, ok := on[v]; !ok {
			order = append(order, v)
		}
		on[v] = append(on[v], n.Name())
	}
	switch {
	case len(order) == 0:
		return "on no node"
	case len(order) == 1 && len(nodes) == 1:
		return order[0] + " on " + nodes[0].Name()
	case len(order) == 1:
		return fmt.Sprintf("%s on all %d nodes", order[0], len(nodes))
	}
	parts := make([]string, len(order))
	for i, v := range order {
		parts[i] = v + " on " + strings.Join(on[v], ", ")
	}
	return strings.Join(parts, "; ")
}

// preflightAndPush measures the engines and fills the lab registry, at once:
// the push is the slow part, preflight needs the nodes' engines.
func (l *Lab) preflightAndPush(ctx context.Context) error {
	var wg sync.WaitGroup
	var perr, rerr error
	wg.Add(2)
	go func() { defer wg.Done(); perr = l.preflight(ctx) }()
	go func() { defer wg.Done(); rerr = l.pushStandardImages(ctx) }()
	wg.Wait()
	return errors.Join(perr, rerr)
}

// preflight records the API versions negotiated with the host and each node,
// the cgroup versions, and whether IPVS works, which decides the ingress mode.
func (l *Lab) preflight(ctx context.Context) error {
	info := Info{NodeAPI: map[string]string{}, NodeEngine: map[string]string{}, HostAPI: l.host.ClientVersion()}
	if hi, err := l.host.Info(ctx, client.InfoOptions{}); err == nil {
		info.HostCgroup = hi.Info.CgroupVersion
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	nodes := l.cluster.Nodes()
	errs := make([]error, len(nodes))
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := n.Engine(ctx)
			if err != nil {
				errs[i] = err
				return
			}
			v, err := engine.Ping(ctx, c)
			if err != nil {
				errs[i] = fmt.Errorf("node %s: engine at %s: %w", n.Name(), n.DockerHost(), err)
				return
			}
			ni, err := c.Info(ctx, client.InfoOptions{})
			mu.Lock()
			defer mu.Unlock()
			info.NodeAPI[n.Name()] = v
			if err == nil {
				info.NodeCgroup = ni.Info.CgroupVersion
				info.NodeEngine[n.Name()] = ni.Info.ServerVersion
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	info.Ingress, info.IngressWhy = l.detectIngress(ctx)
	l.info = info
	stepNote(ctx, "Docker "+EngineSummary(nodes, info.NodeEngine))
	return nil
}

// detectIngress decides the ingress mode. SWARMLAB_INGRESS overrides it;
// otherwise the routing mesh is used where the kernel exposes IPVS to the
// nodes (/proc/net/ip_vs), and the edge proxy where it does not.
func (l *Lab) detectIngress(ctx context.Context) (mode, why string) {
	switch v := os.Getenv("SWARMLAB_INGRESS"); v {
	case RoutingMesh, EdgeProxy:
		return v, "set by SWARMLAB_INGRESS"
	}
	first := l.cluster.Nodes()[0]
	node := first.Name()
	if _, err := first.Exec(ctx, "sh", "-c", "test -e /proc/net/ip_vs || { modprobe ip_vs 2>/dev/null; test -e /proc/net/ip_vs; }"); err != nil {
		return EdgeProxy, "the kernel has no IPVS (no /proc/net/ip_vs on node " + node + "), so the routing mesh cannot route"
	}
	return RoutingMesh, "IPVS is available (/proc/net/ip_vs on node " + node + ")"
}

// pushStandardImages puts redis, postgres, haproxy and nginx in the lab
// registry under their public names, so that "image: redis" resolves offline.
func (l *Lab) pushStandardImages(ctx context.Context) error {
	if !l.cluster.Registry().Mirror {
		return nil // the nodes pull docker.io names themselves
	}
	std := images.Standard()
	errs := make([]error, len(std))
	var wg sync.WaitGroup
	for i, img := range std {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local, err := images.Resolve(ctx, l.host, img)
			if err != nil {
				errs[i] = err
				return
			}
			targets := make([]string, len(img.Public))
			for j, pub := range img.Public {
				targets[j] = registry.Name(pub)
			}
			errs[i] = l.Stacks().PushImage(ctx, local, targets...)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// formSwarm initialises the swarm, joins every node, and applies labels and
// availability.
func (l *Lab) formSwarm(ctx context.Context) error {
	ms, err := l.Members()
	if err != nil {
		return err
	}
	// The first manager inits; topology order otherwise.
	for i, m := range ms {
		if m.Role == swarm.Manager {
			ms[0], ms[i] = ms[i], ms[0]
			break
		}
	}
	opts := swarm.Options{
		Heartbeat: l.topo.Swarm.DispatcherHeartbeat.Duration,
		// On the swarm itself, readable by anyone who can reach a manager.
		Labels: map[string]string{common.LabelLab: l.name, common.LabelRun: l.runID, common.LabelIngress: l.info.Ingress},
	}
	if err := swarm.Form(ctx, ms, opts); err != nil {
		return err
	}
	return swarm.Configure(ctx, ms[0].Client, ms)
}

// Env is what a stack file may interpolate: ${SWARMLAB_REGISTRY} (the
// registry nodes pull from), ${SWARMLAB_INGRESS}, ${SWARMLAB_PUBLISH_MODE}
// (the port mode that answers here: ingress with the routing mesh, host
// without), ${SWARMLAB_ENDPOINT_MODE} (vip where the service VIP routes,
// with the mesh; dnsrr without), ${SWARMLAB_LAB}, and for each node label
// ${SWARMLAB_NODES_<KEY>_<VALUE>}, the number of nodes that carry it
// (labelCounts).
func (s Stacks) Env() map[string]string {
	l := s.l
	mode, endpoints := "host", "dnsrr"
	if l.info.Ingress == RoutingMesh {
		mode, endpoints = "ingress", "vip"
	}
	env := map[string]string{
		"SWARMLAB_REGISTRY":      l.cluster.Registry().Pull,
		"SWARMLAB_INGRESS":       l.info.Ingress,
		"SWARMLAB_PUBLISH_MODE":  mode,
		"SWARMLAB_ENDPOINT_MODE": endpoints,
		"SWARMLAB_LAB":           l.name,
	}
	for k, n := range labelCounts(l.topo) {
		env[k] = strconv.Itoa(n)
	}
	return env
}

// labelCounts counts the topology's nodes per label, as
// SWARMLAB_NODES_<KEY>_<VALUE> (upper case, every other character than a
// letter or digit an underscore): a stack sizes what runs one task per such
// node with it (a Galera cluster's GALERA_SIZE), so adding a node to the
// topology is all it takes.
func labelCounts(t *topology.Topology) map[string]int {
	out := map[string]int{}
	if t == nil {
		return out
	}
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			switch {
			case r >= 'a' && r <= 'z':
				return r - 'a' + 'A'
			case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
				return r
			}
			return '_'
		}, s)
	}
	for _, n := range t.Nodes {
		for k, v := range n.Labels {
			out["SWARMLAB_NODES_"+clean(k)+"_"+clean(v)]++
		}
	}
	return out
}

// StackTimeout bounds how long a stack's services may take to run all their
// tasks: images are pulled from the lab registry on first use.
const StackTimeout = 3 * time.Minute

// convergePoll is how often the deploy step looks at the stacks' services
// and tasks: each look is one list call on the manager.
const convergePoll = 200 * time.Millisecond

// deployment is what Up prepares for deployStacks.
type deployment struct {
	images  [][]*stackImage // per stack, in topology order
	built   bool            // images built and pushed already
	tracker *stack.Tracker

	mu       sync.Mutex
	warnings []string // of the image check, for Up to print
}

func (d *deployment) warn(ws []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.warnings = append(d.warnings, ws...)
}

func (d *deployment) imageCount() int { return len(d.allImages()) }

func (d *deployment) allImages() []*stackImage {
	var all []*stackImage
	for _, imgs := range d.images {
		all = append(all, imgs...)
	}
	return all
}

// deployStacks deploys the topology's stacks and waits until every service
// runs all its tasks. With the images ready it deploys every stack at once;
// sequentially (seq) it builds and pushes each stack's images, then deploys
// it, one stack after the other, as bring-up did before session 4.
func (l *Lab) deployStacks(ctx context.Context, d *deployment, seq bool) error {
	mgr, _, err := l.Manager(ctx)
	if err != nil {
		return err
	}
	stacks := l.topo.Stacks
	names := make([]string, len(stacks))
	for i, s := range stacks {
		names[i] = s.Name
	}
	d.tracker = stack.NewTracker()
	tctx, stopTracking := context.WithCancel(ctx)
	tracking := make(chan struct{})
	go func() { defer close(tracking); d.tracker.Poll(tctx, mgr, names, convergePoll) }()
	defer func() { stopTracking(); <-tracking }()

	deploy := func(i int) error {
		limit := 0
		if seq {
			limit = 1
		}
		st, cfg, err := l.prepareStack(ctx, stacks[i].Name, l.topo.StackPath(i), d.images[i], d.built, limit, nil)
		if st != nil {
			d.warn(st.Warnings)
		}
		if err != nil {
			return err
		}
		return l.deployStack(ctx, mgr, stacks[i].Name, cfg)
	}
	if seq {
		for i := range stacks {
			if err := deploy(i); err != nil {
				return err
			}
		}
	} else {
		if err := eachAtOnce(ctx, len(stacks), 0, deploy); err != nil {
			return err
		}
	}
	return eachAtOnce(ctx, len(stacks), 0, func(i int) error { return waitStack(ctx, mgr, stacks[i].Name) })
}

// healthLogMax is how many probes an engine keeps in a container's health log.
const healthLogMax = 5

// serviceTimings turns what the tracker saw into the profile of each
// service, adding from each task's container when it started and when its
// health probes ran.
func (l *Lab) serviceTimings(ctx context.Context, tr *stack.Tracker, base time.Time) []ServiceTiming {
	mgr, _, err := l.Manager(ctx)
	if err != nil {
		return nil
	}
	tr.Observe(nil, nil)
	hostByID := map[string]string{}
	if nodes, err := mgr.NodeList(ctx, client.NodeListOptions{}); err == nil {
		for _, n := range nodes.Items {
			hostByID[n.ID] = n.Description.Hostname
		}
	}
	rel := func(t time.Time) time.Duration {
		if t.IsZero() || t.Before(base) {
			return 0
		}
		return t.Sub(base)
	}
	profiles := tr.Profile(base)
	out := make([]ServiceTiming, len(profiles))
	var wg sync.WaitGroup
	for i, sp := range profiles {
		out[i] = ServiceTiming{Name: sp.Name, Created: sp.Created, Running: sp.Running, Tasks: make([]TaskTiming, len(sp.Tasks))}
		for j, tp := range sp.Tasks {
			tt := &out[i].Tasks[j]
			*tt = TaskTiming{Node: hostByID[tp.NodeID], Assigned: tp.Assigned, Preparing: tp.Preparing, Starting: tp.Starting, Running: tp.Running, Attempt: tp.Attempt}
			if tp.ContainerID == "" || tt.Node == "" {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := l.Client(tt.Node)
				if err != nil {
					return
				}
				res, err := c.ContainerInspect(ctx, tp.ContainerID, client.ContainerInspectOptions{})
				if err != nil || res.Container.State == nil {
					return
				}
				st := res.Container.State
				if t, err := time.Parse(time.RFC3339Nano, st.StartedAt); err == nil {
					tt.Started = rel(t)
				}
				// The engine keeps the last 5 probes: a log that is full
				// and begins with a pass may have lost the first ones.
				if st.Health == nil || len(st.Health.Log) == 0 || (len(st.Health.Log) >= healthLogMax && st.Health.Log[0] != nil && st.Health.Log[0].ExitCode == 0) {
					return
				}
				for k, probe := range st.Health.Log {
					if probe == nil {
						continue
					}
					if k == 0 {
						tt.FirstProbe = rel(probe.Start)
					}
					if probe.ExitCode == 0 {
						tt.Healthy = rel(probe.End)
						break
					}
					tt.FailedProbes++
				}
			}()
		}
	}
	wg.Wait()
	return out
}
