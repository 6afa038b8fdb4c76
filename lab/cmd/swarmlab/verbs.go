package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/swarmlab/swarmlab/lab"
	"github.com/swarmlab/swarmlab/lab/topology"
)

// list, load and deploy: the verbs a kind or k3d user reaches for.

func cmdList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("list", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := atMost(pos, 0, "no arguments"); err != nil {
		return err
	}
	labs, err := lab.List(ctx, labOptions(lab.Options{}))
	if err != nil {
		return err
	}
	if *asJSON {
		if labs == nil {
			labs = []lab.Summary{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(labs)
	}
	if len(labs) == 0 {
		fmt.Fprintln(stderr, "No labs; start one with: scripts/swarmlab up")
		return nil
	}
	printList(stdout, labs, time.Now())
	for _, s := range labs {
		if s.Error != "" {
			fmt.Fprintf(stderr, "note: lab %s: %s\n", s.Name, s.Error)
		}
	}
	return nil
}

// printList writes one line per lab, as `kind get clusters` and `k3d
// cluster list` do.
func printList(w io.Writer, labs []lab.Summary, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPROVIDER\tNODES\tENGINE\tAGE")
	for _, s := range labs {
		engine := s.Engine
		if engine == "" {
			engine = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", s.Name, s.Provider, s.Nodes, engine, age(s.Created, now))
	}
	tw.Flush()
}

// age is how long ago t was, as docker ps says it shortly: 45s, 12m, 5h,
// 3d; "-" when t is unknown.
func age(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := max(now.Sub(t), 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}

func cmdLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	name := fs.String("name", "", "lab name (default: the only lab)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("load needs at least one image (myapp:1)")
	}
	var imgs []string
	for _, img := range pos {
		if !slices.Contains(imgs, img) {
			imgs = append(imgs, img)
		}
	}
	labN, err := labName(ctx, *name)
	if err != nil {
		return err
	}
	l, err := lab.OpenWith(ctx, labN, labOptions(lab.Options{}))
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Fprintf(stdout, "Loading %s from this machine's engine into lab %s's registry\n", plural(len(imgs), "image"), l.Name())
	width := 0
	for _, img := range imgs {
		width = max(width, len(img))
	}
	var errs []error
	var failed []string
	for _, img := range imgs {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			failed = append(failed, img)
			continue
		}
		start := time.Now()
		res, err := l.Stacks().Load(ctx, img)
		took := time.Since(start).Seconds()
		if err != nil {
			fmt.Fprintf(stdout, " ✗ %-*s  %-9s  %6.2fs\n", width, img, "failed", took)
			errs = append(errs, err)
			failed = append(failed, img)
			continue
		}
		what := "pushed"
		if res.Unchanged {
			what = "unchanged"
		}
		fmt.Fprintf(stdout, " ✓ %-*s  %-9s  %6.2fs  nodes pull it as %s\n", width, img, what, took, res.As)
	}
	if len(failed) == 0 {
		return nil
	}
	loaded := len(imgs) - len(failed)
	summary := fmt.Sprintf("%s of %d not loaded (%s)", plural(len(failed), "image"), len(imgs), strings.Join(failed, ", "))
	switch {
	case loaded == 1:
		summary += "; the other one was"
	case loaded > 1:
		summary += fmt.Sprintf("; the other %d were", loaded)
	}
	return errors.Join(append(errs, errors.New(summary))...)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// genericStackFiles are stack file names that say nothing of the stack:
// deploy names the stack after their directory instead, as topologies do.
var genericStackFiles = []string{"stack", "compose", "docker-compose"}

// defaultStackName is the name deploy gives the stack in file path: the
// file's name without its extension (web.yml: web), or for a generic name
// (stack.yml, compose.yaml, docker-compose.yml) its directory's.
func defaultStackName(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	base := strings.TrimSuffix(filepath.Base(abs), filepath.Ext(abs))
	if slices.Contains(genericStackFiles, base) {
		base = filepath.Base(filepath.Dir(abs))
	}
	return base
}

func cmdDeploy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("deploy", flag.ContinueOnError)
	name := fs.String("name", "", "lab name (default: the only lab)")
	stackName := fs.String("stack", "", "stack name (default: the file's name, or its directory's for stack.yml, compose.yml, docker-compose.yml)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("deploy needs one stack file (STACK.yml), got %d arguments", len(pos))
	}
	path := pos[0]
	if fi, err := os.Stat(path); err != nil {
		return fmt.Errorf("stack file %s: %w; want the path of a compose file to deploy", path, err)
	} else if fi.IsDir() {
		return fmt.Errorf("stack file %s is a directory; want the path of a compose file in it (%s)", path, filepath.Join(path, "stack.yml"))
	}
	sname := *stackName
	if sname == "" {
		sname = defaultStackName(path)
		if err := topology.CheckStackName(sname); err != nil {
			return fmt.Errorf("%w (named after %s); name it with --stack", err, path)
		}
	} else if err := topology.CheckStackName(sname); err != nil {
		return fmt.Errorf("--stack: %w", err)
	}
	labN, err := labName(ctx, *name)
	if err != nil {
		return err
	}
	l, err := lab.OpenWith(ctx, labN, labOptions(lab.Options{}))
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Fprintf(stdout, "Deploying stack %s from %s on lab %s\n", sname, path, l.Name())
	start := time.Now()
	st, err := l.Stacks().Deploy(ctx, sname, path, lab.StackOptions{})
	if st != nil {
		for _, w := range st.Warnings {
			fmt.Fprintf(stderr, "warning: %s\n", w)
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nStack %s runs all its tasks on lab %s (%.1fs).\n\n", sname, l.Name(), time.Since(start).Seconds())
	printPublished(ctx, stdout, l)
	if dir := l.Secrets().Dir(); exists(dir) {
		fmt.Fprintf(stdout, "Secrets:  %s (generated for the stacks)\n", dir)
	}
	return nil
}
