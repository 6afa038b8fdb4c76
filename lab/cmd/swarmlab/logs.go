package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/swarmlab/swarmlab/lab"
)

// cmdLogs is `swarmlab logs [NAME] SERVICE|NODE [--since D] [--tail N] [-f] [-t]`
// and `swarmlab logs --prune [NAME]`.
func cmdLogs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("logs", flag.ContinueOnError)
	since := fs.String("since", "", "only lines from then on: a duration back from now (10m), a time (2006-01-02T15:04:05Z) or Unix seconds")
	tail := fs.Int("tail", -1, "only the last N lines (-1: all)")
	follow := fs.Bool("f", false, "then print new lines as they are written, until Ctrl-C")
	fs.BoolVar(follow, "follow", false, "same as -f")
	stamps := fs.Bool("t", false, "print each line's time")
	fs.BoolVar(stamps, "timestamps", false, "same as -t")
	prune := fs.Bool("prune", false, "remove the kept logs of lab NAME, or of every lab that is not up")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if *prune {
		if err := atMost(pos, 1, "at most one lab name"); err != nil {
			return err
		}
		if len(pos) == 1 {
			if err := lab.PruneLogs(ctx, pos[0]); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "Removed the logs of lab %s\n", pos[0])
			return nil
		}
		pruned, err := lab.PruneKeptLogs(ctx)
		if len(pruned) == 0 && err == nil {
			fmt.Fprintln(stdout, "No kept logs to remove (the logs of labs that are up stay: swarmlab down --purge NAME).")
		}
		for _, n := range pruned {
			fmt.Fprintf(stdout, "Removed the logs of lab %s\n", n)
		}
		return err
	}
	var name, target string
	switch len(pos) {
	case 0:
		return usagef("logs needs a SERVICE or NODE")
	case 1:
		target = pos[0]
	case 2:
		name, target = pos[0], pos[1]
	default:
		return usagef("unexpected arguments %s (want [NAME] SERVICE|NODE)", strings.Join(pos[2:], " "))
	}
	if err := checkSince(*since); err != nil {
		return usageError{err}
	}
	o := lab.LogsOptions{Since: *since, Follow: *follow, Timestamps: *stamps}
	switch {
	case *tail > 0:
		o.Tail = *tail
	case *tail == 0 && *since == "":
		o.Since = "0s" // none of the lines there: from now on
	}
	name, err = logsLabName(ctx, name)
	if err != nil {
		return err
	}
	return lab.Logs(ctx, name, target, o, stdout, stderr)
}

// checkSince refuses a --since that swarmlab-logd would not read (it reads
// it against the engine's clock, which wrote the lines).
func checkSince(s string) error {
	if s == "" {
		return nil
	}
	if _, err := time.ParseDuration(s); err == nil {
		return nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02"} {
		if _, err := time.Parse(layout, s); err == nil {
			return nil
		}
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return nil
	}
	return fmt.Errorf("--since %q: want a duration (10m), a time (2006-01-02T15:04:05Z) or Unix seconds", s)
}

// logsLabName picks the lab whose logs a command is about: the one named,
// the one in SWARMLAB_LAB, else the only one that is up or has kept logs
// (after down, its logs remain).
func logsLabName(ctx context.Context, given string) (string, error) {
	if given != "" {
		return given, nil
	}
	if env := os.Getenv(LabEnv); env != "" {
		return env, nil
	}
	names, err := lab.Labs(ctx)
	if err != nil {
		return "", err
	}
	kept, err := lab.KeptLogs(ctx)
	if err != nil {
		return "", err
	}
	for _, k := range kept {
		if !slices.Contains(names, k) {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	switch len(names) {
	case 0:
		return "", errors.New("no lab exists and no lab's logs are kept")
	case 1:
		return names[0], nil
	default:
		return "", fmt.Errorf("several labs are up or have kept logs (%s); name one", strings.Join(names, ", "))
	}
}

// cmdExport is `swarmlab export logs [NAME] DIR`.
func cmdExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 || pos[0] != "logs" {
		return usagef("export knows one thing to export: logs")
	}
	var name, dir string
	switch len(pos) {
	case 2:
		dir = pos[1]
	case 3:
		name, dir = pos[1], pos[2]
	default:
		return usagef("export logs needs [NAME] DIR")
	}
	name, err = logsLabName(ctx, name)
	if err != nil {
		return err
	}
	err = lab.ExportLogs(ctx, name, dir)
	if err != nil && errors.Is(err, lab.ErrNoLogs) && !exists(dir+"/README.txt") {
		return err
	}
	fmt.Fprintf(stdout, "Exported the logs of lab %s to %s (see %s/README.txt)\n", name, dir, dir)
	return err
}
