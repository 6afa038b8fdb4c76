package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/docker/cli/cli/context/docker"
	"github.com/docker/cli/cli/context/store"
)

// The contexts live where the docker CLI reads them (DOCKER_CONFIG), as it
// writes them; down removes only swarmlab's, and the docker CLI's current
// context stops naming one that is gone, the rest of its config untouched.
func TestDockerContexts(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	if name, err := writeContext("swarm-3", "tcp://127.0.0.1:40001", "its manager m1"); err != nil || name != "swarmlab-swarm-3" {
		t.Fatalf("writeContext = %q, %v", name, err)
	}
	// As the docker CLI reads it: meta.json under contexts/meta/<digest>/.
	metas, _ := filepath.Glob(filepath.Join(dir, "contexts", "meta", "*", "meta.json"))
	if len(metas) != 1 {
		t.Fatalf("context files %v, want one meta.json under %s", metas, dir)
	}
	data, _ := os.ReadFile(metas[0])
	var md struct {
		Name      string
		Metadata  struct{ Description string }
		Endpoints map[string]struct{ Host string }
	}
	if err := json.Unmarshal(data, &md); err != nil || md.Name != "swarmlab-swarm-3" || md.Metadata.Description != "swarmlab lab swarm-3: its manager m1" ||
		md.Endpoints["docker"].Host != "tcp://127.0.0.1:40001" {
		t.Errorf("meta.json %s (%v)", data, err)
	}
	// Rewritten by a later up of the same name.
	writeContext("swarm-3", "tcp://127.0.0.1:40002", "its manager m1")
	if host, _ := contextHost("swarm-3"); host != "tcp://127.0.0.1:40002" {
		t.Errorf("rewritten context points at %q", host)
	}

	// One made by hand under a lab's context name is not swarmlab's.
	s, _, _ := contextStore()
	if err := s.CreateOrUpdate(store.Metadata{Name: "swarmlab-mine", Metadata: contextMeta{Description: "my own"},
		Endpoints: map[string]any{docker.DockerEndpoint: docker.EndpointMeta{Host: "tcp://10.0.0.1:2375"}}}); err != nil {
		t.Fatal(err)
	}
	if removed, err := removeContext("mine"); removed || err != nil {
		t.Errorf("removeContext of a hand-made context = %v, %v; want it left", removed, err)
	}

	config := `{"auths": {"example.com": {}}, "currentContext": "swarmlab-swarm-3", "psFormat": "table {{.ID}}"}`
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(config), 0o600)
	if removed, err := removeContext("swarm-3"); !removed || err != nil {
		t.Fatalf("removeContext = %v, %v", removed, err)
	}
	var cfg map[string]any
	data, _ = os.ReadFile(filepath.Join(dir, "config.json"))
	if err := json.Unmarshal(data, &cfg); err != nil || cfg["currentContext"] != nil || cfg["psFormat"] != "table {{.ID}}" || cfg["auths"] == nil {
		t.Errorf("config.json after removing the current context: %s (%v)", data, err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "config.json")); fi.Mode().Perm() != 0o600 {
		t.Errorf("config.json mode %v, want 0600 kept", fi.Mode().Perm())
	}
	if removed, err := removeContext("swarm-3"); removed || err != nil {
		t.Errorf("removing it again = %v, %v; want nothing to remove", removed, err)
	}

	// down --all: every context swarmlab wrote, not the hand-made one.
	writeContext("a", "tcp://127.0.0.1:1", "its manager m1")
	writeContext("b", "ssh://admin@10.0.0.6:22", "its manager m1")
	got, err := removeAllContexts()
	slices.Sort(got)
	if err != nil || !slices.Equal(got, []string{"swarmlab-a", "swarmlab-b"}) {
		t.Errorf("removeAllContexts = %v, %v", got, err)
	}
	if names, _ := store.Names(s); !slices.Equal(names, []string{"swarmlab-mine"}) {
		t.Errorf("contexts left: %v, want only the hand-made one", names)
	}
}
