package lab

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab/images"
	"github.com/swarmlab/swarmlab/lab/provider"
	"github.com/swarmlab/swarmlab/lab/provider/common"
	"github.com/swarmlab/swarmlab/lab/provider/docker"
)

// A docker lab keeps its logs as they are written: every node's engine log,
// its events, and the output of every container it runs, tasks by service
// (common.LogsVolume, written by the nodes' swarmlab-logd). They answer for
// tasks that are gone and nodes that were killed, and outlive the lab's down
// until PruneLogs (swarmlab logs --prune, down --purge), or until a new lab
// of the same name replaces them. They are read through the host engine
// only: this machine needs no access to the engine's filesystem.

// ErrNoLogs is returned for a lab whose logs are not kept.
var ErrNoLogs = common.ErrNoLogs

// logKeeper is implemented by the providers that keep a lab's logs (docker).
type logKeeper interface {
	KeptLogs(ctx context.Context) ([]string, error)
	ReadLogs(ctx context.Context, lab string, args []string, stdout, stderr io.Writer) error
	CopyLogs(ctx context.Context, lab string) (io.ReadCloser, error)
	PruneLogs(ctx context.Context, lab string) error
}

// LogsOptions choose what Logs prints.
type LogsOptions struct {
	// Since keeps the lines from then on: a duration back from now ("10m"),
	// a time (RFC 3339) or Unix seconds; "": from the start.
	Since string
	// Tail keeps the last Tail lines only; 0: all. (From now on only:
	// Since "0s".)
	Tail int
	// Follow prints new lines as they are written, until ctx ends.
	Follow bool
	// Timestamps prints each line's time first.
	Timestamps bool
}

func (o LogsOptions) args() []string {
	var a []string
	if o.Since != "" {
		a = append(a, "--since", o.Since)
	}
	if o.Tail > 0 {
		a = append(a, "--tail", strconv.Itoa(o.Tail))
	}
	if o.Follow {
		a = append(a, "-f")
	}
	if o.Timestamps {
		a = append(a, "-t")
	}
	return a
}

// Logs prints the kept logs of target in lab name: a service's (named with
// or without its stack's prefix: "db" for "vote_db"), its tasks' lines
// merged in time order, each prefixed with its task as docker service logs
// does (stderr lines on stderr); or a node's engine log. The lab may be
// down.
func Logs(ctx context.Context, name, target string, o LogsOptions, stdout, stderr io.Writer) error {
	found, err := find(ctx, name, Options{})
	if err != nil {
		return err
	}
	defer found.host.Close()
	k, ok := found.p.(logKeeper)
	if !ok {
		return fmt.Errorf("lab %s: the %s provider keeps no logs of its own; its engines answer for what they still hold: eval \"$(swarmlab env %s)\"; docker service logs SERVICE", name, found.p.Name(), name)
	}
	err = k.ReadLogs(ctx, name, append(o.args(), target), stdout, stderr)
	if errors.Is(err, ErrNoLogs) {
		if kept, _ := k.KeptLogs(ctx); len(kept) > 0 {
			return fmt.Errorf("%w; the labs whose logs are kept: %s", err, strings.Join(kept, ", "))
		}
	}
	return err
}

// hostKeeper is the keeper of the logs on the host engine.
func hostKeeper(ctx context.Context) (logKeeper, func(), error) {
	host, err := Host(ctx)
	if err != nil {
		return nil, nil, err
	}
	// Its readers run swarmlab-logd from a node image: any has it.
	node, err := images.NodeFor(images.DefaultEngine)
	if err != nil {
		host.Close()
		return nil, nil, err
	}
	return docker.New(host, node.Ref(), images.Registry().Ref()), func() { host.Close() }, nil
}

// KeptLogs names the labs whose logs the host engine keeps, whether they
// are up or not.
func KeptLogs(ctx context.Context) ([]string, error) {
	k, done, err := hostKeeper(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	return k.KeptLogs(ctx)
}

// PruneLogs removes the kept logs of lab name, which must not be up (down
// it first: down --purge does both).
func PruneLogs(ctx context.Context, name string) error {
	found, err := find(ctx, name, Options{})
	if err != nil {
		return err
	}
	defer found.host.Close()
	k, ok := found.p.(logKeeper)
	if !ok {
		return fmt.Errorf("lab %s: %w (the %s provider keeps none)", name, ErrNoLogs, found.p.Name())
	}
	return k.PruneLogs(ctx, name)
}

// PruneKeptLogs removes the kept logs of every lab that is not up, and
// names them.
func PruneKeptLogs(ctx context.Context) ([]string, error) {
	kept, err := KeptLogs(ctx)
	if err != nil {
		return nil, err
	}
	up, err := Labs(ctx)
	if err != nil {
		return nil, err
	}
	var pruned []string
	var errs []error
	for _, name := range kept {
		if slices.Contains(up, name) {
			continue
		}
		if err := PruneLogs(ctx, name); err != nil {
			errs = append(errs, err)
			continue
		}
		pruned = append(pruned, name)
	}
	return pruned, errors.Join(errs...)
}

// ExportLogs writes into dir what there is to know of lab name, up or down
// (as kind export logs does): its kept logs (every node's dockerd.log and
// events.jsonl, every task's log: see Lab.ExportLogs for the layout) and,
// while the lab is up, its swarm's nodes, services and tasks.
func ExportLogs(ctx context.Context, name, dir string) error {
	if l, err := Open(ctx, name); err == nil {
		defer l.Close()
		return l.ExportLogs(ctx, dir)
	}
	found, err := find(ctx, name, Options{})
	if err != nil {
		return err
	}
	defer found.host.Close()
	return exportLogs(ctx, found.p, nil, name, dir)
}

// ExportLogs writes into dir what explains the lab's state, what a failed
// test keeps:
//
//	README.txt                     what this is, and what could not be had
//	nodes/<node>/dockerd.log       each node engine's log (kept logs; else what its engine holds)
//	nodes/<node>/events.jsonl      each node engine's events (kept logs)
//	nodes/<node>/containers/...    its containers that are not tasks (kept logs)
//	tasks/<service>/<task>.log     each task's output, by service (kept logs; else
//	                               tasks/<service>/service.log from the manager)
//	machines.json                  the nodes as the provider sees them
//	swarm/nodes.json, services.json (with their specs), tasks.json
//	swarm/events.jsonl             without kept logs: the manager's events since the swarm began
//
// The lines of kept logs are "<time> <stdout|stderr> <message>". It keeps
// going past what it cannot get, says what in README.txt, and returns it.
func (l *Lab) ExportLogs(ctx context.Context, dir string) error {
	return exportLogs(ctx, l.prov, l, l.name, dir)
}

func exportLogs(ctx context.Context, p provider.Provider, l *Lab, name, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var problems []error
	kept := false
	if k, ok := p.(logKeeper); ok {
		rc, err := k.CopyLogs(ctx, name)
		if err == nil {
			_, err = untarLogs(rc, dir)
			rc.Close()
			kept = err == nil
		}
		if err != nil {
			problems = append(problems, fmt.Errorf("kept logs: %w", err))
		}
	}
	state := "down"
	if l != nil {
		state = "up"
		problems = append(problems, exportLab(ctx, l, dir, !kept)...)
	}
	problems = slices.DeleteFunc(problems, func(err error) bool { return err == nil })
	var readme strings.Builder
	fmt.Fprintf(&readme, "swarmlab export logs: lab %s (%s provider, %s), %s\n\n", name, p.Name(), state, time.Now().UTC().Format(time.RFC3339))
	if kept {
		fmt.Fprintf(&readme, "nodes/ and tasks/ are the lab's kept logs (volume %s), lines \"<time> <stdout|stderr> <message>\".\n", common.LogsVolume(name))
	} else {
		readme.WriteString("The lab's logs are not kept: nodes/ and tasks/ hold what its engines still have.\n")
	}
	if l != nil {
		readme.WriteString("machines.json and swarm/ are the lab's nodes, services and tasks at the time of the export.\n")
	}
	for _, err := range problems {
		fmt.Fprintf(&readme, "\nnot collected: %v\n", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README.txt"), []byte(readme.String()), 0o644); err != nil {
		problems = append(problems, err)
	}
	return errors.Join(problems...)
}

// exportLab writes what the lab's machines and swarm say; without kept
// logs, also what their engines still hold of the logs.
func exportLab(ctx context.Context, l *Lab, dir string, engineLogs bool) []error {
	var problems []error
	if l.cluster == nil {
		return nil
	}
	l.Refresh(ctx)
	nodes := l.cluster.Nodes()
	var infos []provider.NodeInfo
	for _, n := range nodes {
		infos = append(infos, provider.Describe(n))
	}
	problems = append(problems, writeJSON(filepath.Join(dir, "machines.json"), infos))
	if engineLogs {
		for _, n := range nodes {
			problems = append(problems, writeBundleFile(filepath.Join(dir, "nodes", n.Name(), "dockerd.log"), func(w io.Writer) error {
				return n.Logs(ctx, w)
			}))
		}
	}
	mgr, _, err := l.Manager(ctx)
	if err != nil {
		return append(problems, fmt.Errorf("the swarm's nodes, services and tasks: %w", err))
	}
	if ns, err := mgr.NodeList(ctx, client.NodeListOptions{}); err != nil {
		problems = append(problems, fmt.Errorf("swarm nodes: %w", err))
	} else {
		problems = append(problems, writeJSON(filepath.Join(dir, "swarm", "nodes.json"), ns.Items))
	}
	svcs, err := mgr.ServiceList(ctx, client.ServiceListOptions{Status: true})
	if err != nil {
		problems = append(problems, fmt.Errorf("swarm services: %w", err))
	} else {
		problems = append(problems, writeJSON(filepath.Join(dir, "swarm", "services.json"), svcs.Items))
	}
	if ts, err := mgr.TaskList(ctx, client.TaskListOptions{}); err != nil {
		problems = append(problems, fmt.Errorf("swarm tasks: %w", err))
	} else {
		problems = append(problems, writeJSON(filepath.Join(dir, "swarm", "tasks.json"), ts.Items))
	}
	if !engineLogs {
		return problems
	}
	for _, s := range svcs.Items {
		problems = append(problems, writeBundleFile(filepath.Join(dir, "tasks", s.Spec.Name, "service.log"), func(w io.Writer) error {
			lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			rc, err := mgr.ServiceLogs(lctx, s.ID, client.ServiceLogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: true, Details: true})
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = stdcopy.StdCopy(w, w, rc)
			return err
		}))
	}
	problems = append(problems, writeBundleFile(filepath.Join(dir, "swarm", "events.jsonl"), func(w io.Writer) error {
		sw, err := mgr.SwarmInspect(ctx, client.SwarmInspectOptions{})
		if err != nil {
			return err
		}
		ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		ev := mgr.Events(ectx, client.EventsListOptions{
			Since: strconv.FormatInt(sw.Swarm.CreatedAt.Unix(), 10), Until: strconv.FormatInt(time.Now().Unix()+1, 10),
		})
		enc := json.NewEncoder(w)
		for {
			select {
			case m := <-ev.Messages:
				if err := enc.Encode(m); err != nil {
					return err
				}
			case err := <-ev.Err:
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
		}
	}))
	return problems
}

func writeBundleFile(p string, fill func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := fill(f); err != nil {
		fmt.Fprintf(f, "\n[swarmlab export logs: could not collect this: %v]\n", err)
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

func writeJSON(p string, v any) error {
	return writeBundleFile(p, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	})
}

// untarLogs writes the regular files and directories of a tar stream of a
// logs directory (its entries under one top directory, which is dropped)
// into dir, and counts the files. An entry that would land outside dir is
// an error.
func untarLogs(r io.Reader, dir string) (int, error) {
	tr := tar.NewReader(r)
	n := 0
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		_, rest, ok := strings.Cut(strings.TrimPrefix(hdr.Name, "./"), "/")
		rest = strings.TrimSuffix(rest, "/")
		if !ok || rest == "" {
			continue // the top directory
		}
		clean := path.Clean(rest)
		if path.IsAbs(rest) || clean == ".." || strings.HasPrefix(clean, "../") {
			return n, fmt.Errorf("kept logs: entry %q leaves the directory", hdr.Name)
		}
		target := filepath.Join(dir, filepath.FromSlash(clean))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return n, err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return n, err
			}
			f, err := os.Create(target)
			if err != nil {
				return n, err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return n, err
			}
			n++
		}
	}
}
