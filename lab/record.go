package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/swarmlab/swarmlab/lab/provider"
	"github.com/swarmlab/swarmlab/lab/topology"
)

// Every lab, whatever its provider, is found again by name through a record
// in its state directory, written at up: its topology, its provider, the
// run that made it, and how this machine reaches it. Down removes it with
// the state directory. A docker lab made before labs had records is found
// by its containers' labels instead (see Open).

// StateDir holds what the lab keeps on this machine for one lab: its
// record, and the secrets it generated for its stacks. Down removes it.
func StateDir(name string) string {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "swarmlab", "labs", name)
}

// State is what a lab keeps on this machine, in its state directory: its
// record, and its secrets (see Secrets). Down removes it.
type State struct{ name string }

// State returns the lab's state on this machine.
func (l *Lab) State() State { return State{l.name} }

// Dir is the lab's state directory (StateDir).
func (s State) Dir() string { return StateDir(s.name) }

// Record reads the lab's record; nil for a docker lab made before labs had
// records.
func (s State) Record() (*Record, error) { return readRecord(s.name) }

// removeState deletes the lab's host-side state.
func removeState(name string) error {
	return os.RemoveAll(StateDir(name))
}

// recordFile is the record, as JSON.
const recordFile = "lab.json"

// The record of an ssh lab made before every lab had one: a copy of its
// topology file, and a file naming the original path and the lab.
const (
	legacyRecordFile   = "topology.yaml"
	legacyRecordSource = "source"
)

// Record is what a lab keeps of itself on this machine, and what its
// provider opens it from (provider.Record).
type Record = provider.Record

// Access is how this machine reaches a lab (provider.Access).
type Access = provider.Access

// storedRecord is a Record as its file holds it.
type storedRecord struct {
	Name string `json:"name"`
	// Provider is the topology's provider type ("docker", "ssh").
	Provider string `json:"provider"`
	// RunID is the bring-up that made the lab.
	RunID string `json:"run"`
	// Topology is the topology the lab was made from, under the lab's name.
	Topology recordedTopology `json:"topology"`
	// Access is how this machine reaches the lab.
	Access Access `json:"access"`
	// Created is when the record was written, at the start of the
	// bring-up; records written before it existed lack it, and their
	// file's modification time stands for it.
	Created time.Time `json:"created,omitzero"`
}

// recordedTopology is the topology the lab was made from, as YAML, and the
// path of its file, so that messages about it name the file the user wrote
// and its stacks' files resolve as they did.
type recordedTopology struct {
	Path    string `json:"path,omitempty"`
	Content string `json:"content"`
}

// newRecord describes lab t (named as the lab) made by run through the
// engine at hostAddr.
func newRecord(t *topology.Topology, run, hostAddr string) *Record {
	rec := &Record{Name: t.Name, Provider: t.Provider.Type, RunID: run, Topology: t, Access: Access{Engine: hostAddr}, Created: time.Now().UTC()}
	if rec.Provider == "" {
		rec.Provider = topology.ProviderDocker
	}
	return rec
}

// stored is rec as its file holds it: the topology as Up has it (a caller
// may have changed it since it was read), under the path it was read from,
// so that its stacks' files resolve as they did.
func stored(rec *Record) (*storedRecord, error) {
	s := &storedRecord{Name: rec.Name, Provider: rec.Provider, RunID: rec.RunID, Access: rec.Access, Created: rec.Created}
	data, err := yaml.Marshal(rec.Topology)
	if err != nil {
		return nil, fmt.Errorf("recording lab %s: %w", rec.Name, err)
	}
	s.Topology.Content = string(data)
	if src := rec.Topology.Source(); src != "" {
		s.Topology.Path, _ = filepath.Abs(src)
	}
	return s, nil
}

// writeRecord writes rec, refusing a name that has a record: that lab
// exists, or its down has not finished.
func writeRecord(rec *Record) error {
	dir := StateDir(rec.Name)
	if hasRecord(rec.Name) {
		return existsErr(rec.Name, dir)
	}
	st, err := stored(rec)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("recording lab %s: %w", rec.Name, err)
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, recordFile), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) { // another up of the same name, just now
		return existsErr(rec.Name, dir)
	}
	if err != nil {
		return fmt.Errorf("recording lab %s: %w", rec.Name, err)
	}
	_, err = f.Write(append(data, '\n'))
	return errors.Join(err, f.Close())
}

func existsErr(name, dir string) error {
	run := "unknown"
	if rec, err := readRecord(name); err == nil && rec != nil && rec.RunID != "" {
		run = rec.RunID
	}
	return fmt.Errorf("%w: a lab named %q is already running (run %s); use another --name, or remove it with: swarmlab down %s (its record: %s)",
		provider.ErrExists, name, run, name, filepath.Join(dir, recordFile))
}

// removeRecord removes the record only, for a bring-up that wrote it but
// made nothing: the rest of the state directory is not its own.
func removeRecord(name string) error {
	err := os.Remove(filepath.Join(StateDir(name), recordFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	os.Remove(StateDir(name)) // if it is empty now
	return err
}

func hasRecord(name string) bool {
	for _, f := range []string{recordFile, legacyRecordFile} {
		if _, err := os.Stat(filepath.Join(StateDir(name), f)); err == nil {
			return true
		}
	}
	return false
}

// readRecord returns the record of lab name, its topology defaulted and
// named name, or nil when the lab has no record (a docker lab made before
// records).
func readRecord(name string) (*Record, error) {
	dir := StateDir(name)
	data, err := os.ReadFile(filepath.Join(dir, recordFile))
	if errors.Is(err, fs.ErrNotExist) {
		return readLegacyRecord(name)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the record of lab %s: %w", name, err)
	}
	st := &storedRecord{}
	if err := json.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("the record of lab %s (%s): %w", name, filepath.Join(dir, recordFile), err)
	}
	src := st.Topology.Path
	if src == "" {
		src = filepath.Join(dir, recordFile)
	}
	t, err := topology.Parse([]byte(st.Topology.Content), src)
	if err != nil {
		return nil, fmt.Errorf("the record of lab %s (%s): %w", name, filepath.Join(dir, recordFile), err)
	}
	t.Default()
	t.Name = name
	created := st.Created
	if created.IsZero() {
		created = modTime(filepath.Join(dir, recordFile))
	}
	return &Record{Name: name, Provider: st.Provider, RunID: st.RunID, Topology: t, Access: st.Access, Created: created}, nil
}

// readLegacyRecord reads the record of an ssh lab made before every lab had
// one.
func readLegacyRecord(name string) (*Record, error) {
	dir := StateDir(name)
	data, err := os.ReadFile(filepath.Join(dir, legacyRecordFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the record of lab %s: %w", name, err)
	}
	src := filepath.Join(dir, legacyRecordFile)
	if b, err := os.ReadFile(filepath.Join(dir, legacyRecordSource)); err == nil {
		if first, _, _ := strings.Cut(string(b), "\n"); first != "" {
			src = first
		}
	}
	t, err := topology.Parse(data, src)
	if err != nil {
		return nil, fmt.Errorf("the record of lab %s (%s): %w", name, filepath.Join(dir, legacyRecordFile), err)
	}
	t.Default()
	t.Name = name
	return &Record{Name: name, Provider: t.Provider.Type, Topology: t, Access: Access{Engine: HostAddr()}, Created: modTime(filepath.Join(dir, legacyRecordFile))}, nil
}

// modTime is when the file at path was last written; zero if unknown. A
// record is written once, at up, so its time is the lab's age.
func modTime(path string) time.Time {
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime().UTC()
}

// unrecorded is the minimal record of a docker lab made before labs had
// records: its name, on the host engine; its provider finds it by its
// containers' labels, which give its run and its topology file.
func unrecorded(name string) *Record {
	return &Record{Name: name, Provider: topology.ProviderDocker, Access: Access{Engine: HostAddr()}}
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
		if hasRecord(e.Name()) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}
