package topology

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Default fills in every field the file may leave out. It only sets fields
// that are empty, so it is safe to call more than once.
func (t *Topology) Default() {
	if t.Name == "" && t.source != "" {
		base := filepath.Base(t.source)
		t.Name = strings.TrimSuffix(base, filepath.Ext(base))
		t.markDefaulted("name")
	}
	if t.Provider.Type == "" {
		t.Provider.Type = ProviderDocker
		t.markDefaulted("provider.type")
	}
	// An explicit "0s" is left for Validate to reject rather than silently
	// replaced.
	if t.Swarm.DispatcherHeartbeat.Duration == 0 && !t.written("swarm.dispatcherHeartbeat") {
		t.Swarm.DispatcherHeartbeat.Duration = DefaultHeartbeat
		t.markDefaulted("swarm.dispatcherHeartbeat")
	}
	for i := range t.Nodes {
		if t.Nodes[i].Availability == "" {
			t.Nodes[i].Availability = AvailabilityActive
			t.markDefaulted(fmt.Sprintf("nodes[%d].availability", i))
		}
	}
	for i := range t.Stacks {
		if t.Stacks[i].Name == "" && t.Stacks[i].File != "" {
			t.Stacks[i].Name = filepath.Base(filepath.Dir(t.StackPath(i)))
			t.markDefaulted(fmt.Sprintf("stacks[%d].name", i))
		}
	}
}

func (t *Topology) markDefaulted(path string) {
	if t.defaulted == nil {
		t.defaulted = map[string]bool{}
	}
	t.defaulted[path] = true
}

// written reports whether path was present in the source file.
func (t *Topology) written(path string) bool {
	_, ok := t.lines[path]
	return ok
}
