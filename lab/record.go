package lab

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/swarmlab/swarmlab/lab/topology"
)

// A lab whose nodes are not containers on this machine's engine (ssh) can
// only be found again by name through a record in its state directory: a
// copy of its topology file, under the name it was made with. Down removes
// it with the state directory.

const recordFile = "topology.yaml"

// recordSource remembers the original path, so that messages about the
// copy still name the file the user wrote.
const recordSource = "source"

// writeRecord records t for lab t.Name, refusing a name that has a record.
func writeRecord(t *topology.Topology) error {
	dir := StateDir(t.Name)
	if _, err := os.Stat(filepath.Join(dir, recordFile)); err == nil {
		return fmt.Errorf("a lab named %q is already recorded in %s; use another --name, or remove it with: swarmlab down %s", t.Name, dir, t.Name)
	}
	data, err := os.ReadFile(t.Source())
	if err != nil {
		return fmt.Errorf("recording lab %s: %w", t.Name, err)
	}
	src, _ := filepath.Abs(t.Source())
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("recording lab %s: %w", t.Name, err)
	}
	return errors.Join(
		os.WriteFile(filepath.Join(dir, recordFile), data, 0o600),
		os.WriteFile(filepath.Join(dir, recordSource), []byte(src+"\n"+t.Name+"\n"), 0o600),
	)
}

// readRecord returns the recorded topology of lab name, defaulted and named
// name, or nil when the lab has no record (a docker lab).
func readRecord(name string) (*topology.Topology, error) {
	dir := StateDir(name)
	data, err := os.ReadFile(filepath.Join(dir, recordFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the record of lab %s: %w", name, err)
	}
	src := filepath.Join(dir, recordFile)
	if b, err := os.ReadFile(filepath.Join(dir, recordSource)); err == nil {
		if first, _, _ := strings.Cut(string(b), "\n"); first != "" {
			src = first
		}
	}
	t, err := topology.Parse(data, src)
	if err != nil {
		return nil, fmt.Errorf("the record of lab %s (%s): %w", name, filepath.Join(dir, recordFile), err)
	}
	t.Default()
	t.Name = name
	return t, nil
}

// recordedLabs names the labs that have a record.
func recordedLabs() ([]string, error) {
	base := filepath.Dir(StateDir("x"))
	entries, err := os.ReadDir(base)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(base, e.Name(), recordFile)); err == nil {
			names = append(names, e.Name())
		}
	}
	return names, nil
}
