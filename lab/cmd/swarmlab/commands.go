package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/swarmlab/swarmlab/lab"
	"github.com/swarmlab/swarmlab/lab/provider"
	"github.com/swarmlab/swarmlab/lab/swarm"
	"github.com/swarmlab/swarmlab/lab/topology"
)

// topologyPath turns "vote-6" into topologies/vote-6.yaml; a path is kept.
func topologyPath(arg string) string {
	if arg == "" {
		if def := os.Getenv("SWARMLAB_DEFAULT_TOPOLOGY"); def != "" {
			return def
		}
		arg = "swarm-3"
	}
	if strings.ContainsAny(arg, "/\\") || strings.HasSuffix(arg, ".yaml") || strings.HasSuffix(arg, ".yml") {
		return arg
	}
	dir := os.Getenv("SWARMLAB_TOPOLOGIES")
	if dir == "" {
		dir = "topologies"
	}
	return filepath.Join(dir, arg+".yaml")
}

func loadTopology(path string, stderr io.Writer) (*topology.Topology, error) {
	t, warnings, err := topology.LoadFile(path)
	for _, w := range warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	return t, err
}

// labOptions completes the options of every command that brings up, opens
// or lists labs: tests give them a fake provider and host engine there.
var labOptions = func(o lab.Options) lab.Options { return o }

func cmdUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	name := fs.String("name", "", "lab name (default: the topology's name)")
	keep := fs.Bool("keep-on-failure", false, "keep a lab that failed to come up")
	prof := fs.Bool("profile", false, "print where the bring-up spent its time: the parts of each step, and per service and task when it was scheduled, pulled, started and healthy")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := atMost(pos, 1, "one topology"); err != nil {
		return err
	}
	path := topologyPath(first(pos))
	t, err := loadTopology(path, stderr)
	if err != nil {
		return err
	}
	if *name != "" {
		t.Name = *name
	}
	fmt.Fprintf(stdout, "Creating lab %s from %s\n", t.Name, path)
	l, err := lab.Up(ctx, t, labOptions(lab.Options{KeepOnFailure: *keep, Out: stdout}))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nLab %s is up in %.1fs.\n\n", l.Name(), l.BringUp().Total.Seconds())
	if *prof {
		printProfile(stdout, l.BringUp())
		fmt.Fprintln(stdout)
	}
	if l.Forwarded() {
		// A relayed lab's listeners are this process's, and end with it;
		// a bridged lab's URLs are to be on 127.0.0.1 too. Hand the lab to
		// a forwarder that lives as long as the lab, and print its
		// addresses.
		if err := startForwarder(ctx, l); err != nil {
			if l.Relayed() {
				fmt.Fprintf(stderr, "warning: %v; the addresses below work only while this command runs\n", err)
			} else {
				fmt.Fprintf(stderr, "warning: %v; the URLs below are the nodes' addresses on the lab network, which only this machine reaches\n", err)
			}
		}
	}
	return printUp(ctx, stdout, stderr, l)
}

// printUp is the end of up's report on the lab l: its nodes, ingress, API
// versions, registry, what it publishes, and how to drive it; it writes the
// lab's docker context (a warning if it cannot).
func printUp(ctx context.Context, stdout, stderr io.Writer, l *lab.Lab) error {
	st, err := l.Status(ctx)
	if err != nil {
		return err
	}
	printNodes(stdout, l.Cluster(), st, l.Info().NodeEngine)
	fmt.Fprintf(stdout, "\nIngress:  %s (%s)\n", l.Info().Ingress, l.Info().IngressWhy)
	fmt.Fprintf(stdout, "API:      host %s, nodes %s\n", l.Info().HostAPI, apiSummary(l.Info().NodeAPI))
	if reg := l.Cluster().Registry(); reg.Mirror {
		from := strings.Join(reg.QueryAddrs(), ", ") + " from this host"
		if len(reg.Query) > 0 {
			from += " (" + strings.Join(reg.Push, ", ") + " on the engine's host)"
		}
		fmt.Fprintf(stdout, "Registry: %s for nodes (docker.io mirror), %s\n", reg.Pull, from)
		if c := reg.DockerIO; c.On() {
			state := ""
			if !answers(ctx, "http://"+c.Query+"/v2/") {
				state = " (not serving: it starts once its upstream answers from the engine's host)"
			}
			fmt.Fprintf(stdout, "          %s for nodes (their second docker.io mirror): a pull-through cache of %s%s\n", c.Pull, c.Upstream, state)
		}
	} else {
		fmt.Fprintf(stdout, "Registry: %s on each node, %s from this host (over SSH); docker.io names are pulled by the nodes\n",
			reg.Pull, strings.Join(reg.Push, ", "))
	}
	printPublished(ctx, stdout, l)
	if dir := l.Secrets().Dir(); exists(dir) {
		fmt.Fprintf(stdout, "Secrets:  %s (generated for the stacks)\n", dir)
	}
	host, what := managerHost(ctx, l)
	fmt.Fprintf(stdout, "\nDrive it with the docker CLI:\n  export DOCKER_HOST=%s\n  # or: eval \"$(scripts/swarmlab env %s)\"\n", host, l.Name())
	if name, err := writeContext(l.Name(), host, what); err != nil {
		fmt.Fprintf(stderr, "warning: docker context %s not written (%v); DOCKER_HOST above drives the lab all the same\n", name, err)
	} else {
		fmt.Fprintf(stdout, "  # or: docker --context %s node ls\n", name)
	}
	fmt.Fprintf(stdout, "Tear it down:\n  scripts/swarmlab down %s\n", l.Name())
	return nil
}

// managerHost is the DOCKER_HOST that drives lab l's manager, the leader
// where one answers (else its first manager), and what it is ("its
// manager m1"), as env prints it.
func managerHost(ctx context.Context, l *lab.Lab) (host, what string) {
	host, what = l.DockerHost(), "its manager"
	if _, mgr, err := l.Manager(ctx); err == nil {
		if n, err := l.Node(mgr); err == nil {
			host, what = n.DockerHost(), "its manager "+mgr
		}
	}
	return host, what
}

func apiSummary(m map[string]string) string {
	seen := map[string]bool{}
	var vs []string
	for _, v := range m {
		if !seen[v] {
			seen[v] = true
			vs = append(vs, v)
		}
	}
	return strings.Join(vs, ", ")
}

// printNodes lists the nodes: VERSION is the Docker engine version the swarm
// reports for the node, else the one measured at bring-up (versions, by
// node name: Info.NodeEngine), else "-".
func printNodes(w io.Writer, c provider.Cluster, st *swarm.Status, versions map[string]string) {
	byName := st.NodesByName()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tROLE\tMACHINE\tSWARM\tAVAILABILITY\tADDRESS\tENGINE\tVERSION\tLABELS")
	for _, node := range c.Nodes() {
		n := provider.Describe(node)
		s, ok := byName[n.Name]
		state, avail := "-", "-"
		if ok {
			state, avail = s.State, s.Availability
			if s.Leader {
				state += " (leader)"
			} else if s.Reachability == "unreachable" {
				state += " (unreachable)"
			}
		}
		machine := string(n.State)
		if n.Partitioned {
			machine += ", partitioned"
		}
		version := s.Engine
		if version == "" {
			version = versions[n.Name]
		}
		if version == "" {
			version = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, n.Role, machine, state, avail, n.Addr, n.Engine, version, labelString(s.Labels))
	}
	tw.Flush()
}

// machines describes the cluster's nodes for `status --json`.
func machines(c provider.Cluster) []provider.NodeInfo {
	nodes := c.Nodes()
	if len(nodes) == 0 {
		return nil
	}
	out := make([]provider.NodeInfo, len(nodes))
	for i, n := range nodes {
		out[i] = provider.Describe(n)
	}
	return out
}

func labelString(m map[string]string) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	if len(parts) == 0 {
		return "-"
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// printPublished lists the lab's URLs as people open them: on 127.0.0.1
// where the lab's forwarder serves them (lab.UserEndpoints).
func printPublished(ctx context.Context, w io.Writer, l *lab.Lab) {
	eps, err := l.UserEndpoints(ctx)
	if err != nil {
		fmt.Fprintf(w, "Published: unknown (%v)\n", err)
		return
	}
	if len(eps) == 0 {
		fmt.Fprintln(w, "Published: nothing yet")
		return
	}
	fmt.Fprintln(w, "Published:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, e := range eps {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", e.Name, e.URL, e.Service)
	}
	tw.Flush()
}

func cmdDown(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("down", flag.ContinueOnError)
	all := fs.Bool("all", false, "remove every lab, and the blob caches of the registry and of the docker.io cache")
	purge := fs.Bool("purge", false, "remove the lab's kept logs too (with --all: every lab's)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if *all {
		if len(pos) > 0 {
			return usagef("--all takes no lab name")
		}
		names, err := lab.DownAll(ctx)
		if len(names) == 0 && err == nil {
			fmt.Fprintln(stdout, "No labs to remove.")
		}
		for _, n := range names {
			fmt.Fprintf(stdout, "Removed lab %s\n", n)
		}
		if *purge && err == nil {
			var pruned []string
			pruned, err = lab.PruneKeptLogs(ctx)
			for _, n := range pruned {
				fmt.Fprintf(stdout, "Removed the logs of lab %s\n", n)
			}
		}
		if err == nil {
			// Every context swarmlab wrote, also of labs removed before
			// by hand.
			if ctxs, cerr := removeAllContexts(); cerr != nil {
				fmt.Fprintf(stderr, "warning: removing the labs' docker contexts: %v\n", cerr)
			} else if len(ctxs) > 0 {
				fmt.Fprintf(stdout, "Removed docker contexts %s\n", strings.Join(ctxs, ", "))
			}
		}
		return err
	}
	if err := atMost(pos, 1, "one lab name"); err != nil {
		return err
	}
	name, err := labName(ctx, first(pos))
	if err != nil {
		return err
	}
	if err := lab.DownWith(ctx, name, labOptions(lab.Options{})); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Removed lab %s\n", name)
	if removed, err := removeContext(name); err != nil {
		fmt.Fprintf(stderr, "warning: docker context %s not removed: %v; remove it with: docker context rm %s\n", contextName(name), err, contextName(name))
	} else if removed {
		fmt.Fprintf(stdout, "Removed docker context %s\n", contextName(name))
	}
	if *purge {
		if err := lab.PruneLogs(ctx, name); err != nil && !errors.Is(err, lab.ErrNoLogs) {
			return err
		} else if err == nil {
			fmt.Fprintf(stdout, "Removed the logs of lab %s\n", name)
		}
	} else if kept, err := lab.KeptLogs(ctx); err == nil && slices.Contains(kept, name) {
		fmt.Fprintf(stdout, "Its logs are kept: swarmlab logs %s SERVICE|NODE; remove them with: swarmlab logs --prune %s\n", name, name)
	}
	return nil
}

// LabEnv names the variable that holds the lab a command is about when
// none is named: `swarmlab env` exports it, so that after
// eval "$(swarmlab env NAME)" every command drives NAME even while other
// labs exist.
const LabEnv = "SWARMLAB_LAB"

// labName picks the lab a command is about: the one named, the one in
// SWARMLAB_LAB, or the only one.
func labName(ctx context.Context, given string) (string, error) {
	if given != "" {
		return given, nil
	}
	if env := os.Getenv(LabEnv); env != "" {
		return env, nil
	}
	names, err := lab.LabsWith(ctx, labOptions(lab.Options{}))
	if err != nil {
		return "", err
	}
	switch len(names) {
	case 0:
		return "", errors.New("no lab exists; start one with: scripts/swarmlab up")
	case 1:
		return names[0], nil
	default:
		return "", fmt.Errorf("several labs exist (%s); name one", strings.Join(names, ", "))
	}
}

// openLab parses a command that takes an optional lab NAME and opens the
// lab: the one named, or the only one.
func openLab(ctx context.Context, fs *flag.FlagSet, args []string) (*lab.Lab, error) {
	pos, err := parse(fs, args)
	if err != nil {
		return nil, err
	}
	if err := atMost(pos, 1, "one lab name"); err != nil {
		return nil, err
	}
	name, err := labName(ctx, first(pos))
	if err != nil {
		return nil, err
	}
	return lab.OpenWith(ctx, name, labOptions(lab.Options{}))
}

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	l, err := openLab(ctx, fs, args)
	if err != nil {
		return err
	}
	st, swarmErr := l.Status(ctx)
	if *asJSON {
		out := struct {
			Name     string              `json:"name"`
			Run      string              `json:"run"`
			Topology string              `json:"topology"`
			Ingress  string              `json:"ingress,omitempty"`
			Machines []provider.NodeInfo `json:"machines"`
			Swarm    *swarm.Status       `json:"swarm,omitempty"`
			Error    string              `json:"error,omitempty"`
		}{Name: l.Name(), Run: l.Cluster().RunID(), Topology: l.Cluster().Topology(), Ingress: l.Info().Ingress, Machines: machines(l.Cluster()), Swarm: st}
		if swarmErr != nil {
			out.Error = swarmErr.Error()
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
		return swarmErr
	}
	fmt.Fprintf(stdout, "Lab %s (run %s, from %s)\n\n", l.Name(), l.Cluster().RunID(), l.Cluster().Topology())
	printNodes(stdout, l.Cluster(), st, l.Info().NodeEngine)
	if swarmErr != nil {
		return swarmErr
	}
	fmt.Fprintf(stdout, "\nLeader: %s   Ingress: %s\n", st.Leader, l.Info().Ingress)
	printPublished(ctx, stdout, l)
	if len(st.Services) == 0 {
		fmt.Fprintln(stdout, "\nNo services.")
		return nil
	}
	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tMODE\tREPLICAS\tIMAGE\tPORTS")
	for _, s := range st.Services {
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%s\n", s.Name, s.Mode, s.Running, s.Desired, s.Image, strings.Join(s.Ports, ","))
	}
	return tw.Flush()
}

func cmdEnv(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("env", flag.ContinueOnError)
	node := fs.String("node", "", "drive this node's own engine instead of the manager")
	l, err := openLab(ctx, fs, args)
	if err != nil {
		return err
	}
	if *node != "" {
		n, err := l.Node(*node)
		if err != nil {
			return err
		}
		fmt.Fprint(stdout, envScript(l.Name(), "node "+n.Name(), n.DockerHost()))
		return nil
	}
	host, _ := managerHost(ctx, l)
	fmt.Fprint(stdout, envScript(l.Name(), "its manager", host))
	return nil
}

// envScript is what `swarmlab env` prints: shell exports that point the
// docker CLI at one engine of the lab (what) and keep the lab's own
// commands on the host engine and on this lab.
func envScript(labName, what, dockerHost string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# lab %s: the docker CLI now drives %s\n", labName, what)
	fmt.Fprintf(&b, "export %s=%q\n", lab.HostEnv, lab.HostAddr())
	fmt.Fprintf(&b, "export %s=%s\n", LabEnv, labName)
	fmt.Fprintf(&b, "export DOCKER_HOST=%s\n", dockerHost)
	fmt.Fprintln(&b, "unset DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH")
	return b.String()
}

func cmdValidate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("validate needs at least one file")
	}
	var errs []error
	for _, path := range pos {
		t, err := loadTopology(path, stderr)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(stdout, "%s: ok (%s: %d managers, %d workers)\n", path, t.Name, len(t.Managers()), len(t.Workers()))
	}
	return errors.Join(errs...)
}

func cmdNode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	name := fs.String("name", "", "lab name (default: the only lab)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("node needs an action and a node name")
	}
	action, err := provider.ParseAction(pos[0])
	if err != nil {
		return usageError{err}
	}
	labN, err := labName(ctx, *name)
	if err != nil {
		return err
	}
	l, err := lab.OpenWith(ctx, labN, labOptions(lab.Options{}))
	if err != nil {
		return err
	}
	start := time.Now()
	if err := l.Do(ctx, pos[1], action); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "node %s: %s done in %.1fs\n", pos[1], action, time.Since(start).Seconds())
	return nil
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// printProfile writes the bring-up profile: every step with its parts, then
// per service and task the times (from the start of up) at which it was
// assigned, pulling, starting, its container started, its first probe ran,
// it was healthy, and it ran.
func printProfile(w io.Writer, b lab.Timings) {
	sec := func(d time.Duration) string {
		if d == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", d.Seconds())
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tFROM\tTOOK")
	for _, st := range b.Steps {
		fmt.Fprintf(tw, "%s\t%s\t%.2f\n", st.Name, sec(st.Start), st.Duration.Seconds())
		for _, sub := range st.Sub {
			fmt.Fprintf(tw, "  %s\t%s\t%.2f\n", sub.Name, sec(sub.Start), sub.Duration.Seconds())
		}
	}
	tw.Flush()
	if len(b.Services) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tNODE\tTRY\tCREATED\tASSIGNED\tPULLING\tSTARTING\tSTARTED\tPROBE1\tHEALTHY\tRUNNING\tFAILED PROBES")
	for _, s := range b.Services {
		for _, t := range s.Tasks {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", s.Name, t.Node, t.Attempt, sec(s.Created),
				sec(t.Assigned), sec(t.Preparing), sec(t.Starting), sec(t.Started), sec(t.FirstProbe), sec(t.Healthy), sec(t.Running), t.FailedProbes)
		}
	}
	tw.Flush()
}

// answers reports whether a GET of url answers 200 within a second.
func answers(ctx context.Context, url string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
