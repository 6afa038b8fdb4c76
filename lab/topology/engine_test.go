package topology

import (
	"path/filepath"
	"strings"
	"testing"
)

const engineHead = "apiVersion: swarmlab.dev/v1alpha1\nkind: Topology\n"
const engineNodes = "nodes:\n  - {name: m1, role: manager}\n"

func loadEngine(t *testing.T, yaml string) (*Topology, []string, error, string) {
	t.Helper()
	dir := labDir(t)
	path := filepath.Join(dir, "lab.yaml")
	key := filepath.Join(dir, "id_key")
	writeFile(t, key, "not a key\n")
	writeFile(t, path, strings.ReplaceAll(yaml, "KEYFILE", key))
	top, warnings, err := LoadFile(path)
	return top, warnings, err, path
}

func TestEngineDefaultsAndPins(t *testing.T) {
	t.Setenv(EngineEnv, "")
	cases := map[string]struct{ yaml, want string }{
		"left out":           {engineHead + engineNodes, DefaultEngine},
		"no provider at all": {engineHead + "provider: {}\n" + engineNodes, DefaultEngine},
		"26":                 {engineHead + "provider:\n  type: docker\n  engine: \"26\"\n" + engineNodes, "26"},
		"20.10":              {engineHead + "provider:\n  type: docker\n  engine: \"20.10\"\n" + engineNodes, "20.10"},
		// unquoted, YAML would read 20.10 as the number 20.1: the field keeps what is written
		"20.10 unquoted": {engineHead + "provider:\n  engine: 20.10\n" + engineNodes, "20.10"},
		"26 unquoted":    {engineHead + "provider:\n  engine: 26\n" + engineNodes, "26"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			top, _, err, _ := loadEngine(t, c.yaml)
			if err != nil {
				t.Fatal(err)
			}
			if top.Provider.Engine != c.want || top.Engine() != c.want {
				t.Errorf("engine %q (Engine() %q), want %q", top.Provider.Engine, top.Engine(), c.want)
			}
		})
	}
	if !strings.HasPrefix(Engines[0], DefaultEngine) || len(Engines) != 2 {
		t.Errorf("Engines = %v, default %s", Engines, DefaultEngine)
	}
}

func TestEngineErrors(t *testing.T) {
	t.Setenv(EngineEnv, "")
	cases := map[string]struct {
		yaml string
		want []want
	}{
		"unknown": {engineHead + "provider:\n  type: docker\n  engine: \"27\"\n" + engineNodes,
			[]want{{5, "provider.engine", `"27" is not a supported Docker engine version (supported: "26", "20.10")`}}},
		"a full version": {engineHead + "provider:\n  engine: \"26.1.5\"\n" + engineNodes,
			[]want{{4, "provider.engine", `"26.1.5" is not a supported Docker engine version (supported: "26", "20.10"); the lab pins the major version: "26"`}}},
		"a full old version": {engineHead + "provider:\n  engine: \"20.10.24\"\n" + engineNodes,
			[]want{{4, "provider.engine", `the lab pins the major version: "20.10"`}}},
		"empty": {engineHead + "provider:\n  engine: \"\"\n" + engineNodes,
			[]want{{4, "provider.engine", `empty (expected one of "26", "20.10"; leave it out for 26)`}}},
		"not a string": {engineHead + "provider:\n  engine: [26]\n" + engineNodes,
			[]want{{4, "provider.engine", "expected a string"}}},
		"ssh": {engineHead + "provider:\n  type: ssh\n  engine: \"26\"\n" +
			"nodes:\n  - name: m1\n    role: manager\n    ssh: {address: 10.0.0.5, user: u, identityFile: KEYFILE, insecureIgnoreHostKey: true}\n",
			[]want{{5, "provider.engine", "only allowed with provider type docker (the hosts of a ssh topology run the engine they have)"}}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, err, path := loadEngine(t, c.yaml)
			if err == nil {
				t.Fatal("no error")
			}
			assertIssues(t, err, path, c.want)
		})
	}
}

// SWARMLAB_ENGINE overrides what a docker topology's file says; an error
// names it; an ssh topology ignores it with a warning.
func TestEngineEnv(t *testing.T) {
	pinned := engineHead + "provider:\n  type: docker\n  engine: \"26\"\n" + engineNodes
	t.Run("overrides the file", func(t *testing.T) {
		t.Setenv(EngineEnv, "20.10")
		for _, yaml := range []string{pinned, engineHead + engineNodes} {
			top, _, err, _ := loadEngine(t, yaml)
			if err != nil {
				t.Fatal(err)
			}
			if top.Engine() != "20.10" {
				t.Errorf("engine %q, want 20.10 from %s", top.Engine(), EngineEnv)
			}
		}
		// Parse and Load read the file as written
		top, err := Parse([]byte(pinned), "lab.yaml")
		if err != nil || top.Provider.Engine != "26" {
			t.Errorf("Parse: %q, %v", top.Provider.Engine, err)
		}
	})
	t.Run("an unknown value", func(t *testing.T) {
		t.Setenv(EngineEnv, "19.03")
		_, _, err, path := loadEngine(t, pinned)
		if err == nil {
			t.Fatal("no error")
		}
		assertIssues(t, err, path, []want{{5, "provider.engine", `"19.03" (set by SWARMLAB_ENGINE) is not a supported Docker engine version (supported: "26", "20.10")`}})
	})
	t.Run("ssh ignores it", func(t *testing.T) {
		t.Setenv(EngineEnv, "20.10")
		top, warnings, err, _ := loadEngine(t, engineHead+"provider:\n  type: ssh\n"+
			"nodes:\n  - name: m1\n    role: manager\n    ssh: {address: 10.0.0.5, user: u, identityFile: KEYFILE, insecureIgnoreHostKey: true}\n")
		if err != nil {
			t.Fatal(err)
		}
		if top.Provider.Engine != "" || top.Engine() != "" {
			t.Errorf("ssh topology got engine %q", top.Provider.Engine)
		}
		found := false
		for _, w := range warnings {
			found = found || strings.Contains(w, "SWARMLAB_ENGINE=20.10 ignored: a ssh topology's hosts run the engine they have")
		}
		if !found {
			t.Errorf("no warning about SWARMLAB_ENGINE: %q", warnings)
		}
	})
}
