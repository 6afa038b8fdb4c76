package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseAcceptsFlagsAnywhere(t *testing.T) {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	name := fs.String("name", "", "")
	pos, err := parse(fs, []string{"kill", "w2", "--name", "lab1"})
	if err != nil || *name != "lab1" || strings.Join(pos, " ") != "kill w2" {
		t.Fatalf("parse = %v, %v, name %q", pos, err, *name)
	}
}

func TestTopologyPath(t *testing.T) {
	t.Setenv("SWARMLAB_TOPOLOGIES", "/x/topologies")
	for in, want := range map[string]string{
		"":              "/x/topologies/swarm-3.yaml",
		"vote-6":        "/x/topologies/vote-6.yaml",
		"my.yaml":       "my.yaml",
		"dir/topo.yaml": "dir/topo.yaml",
	} {
		if got := topologyPath(in); got != want {
			t.Errorf("topologyPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValidateReportsFileLineAndField(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(path, []byte("apiVersion: swarmlab.dev/v1alpha1\nkind: Topology\nnodes:\n  - name: m1\n    role: boss\n"), 0o644)
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"validate", path}, &out, &errb)
	if code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	want := path + ":5: nodes[0].role"
	if !strings.Contains(errb.String(), want) {
		t.Errorf("stderr %q lacks %q", errb.String(), want)
	}
}

func TestValidateShippedTopologies(t *testing.T) {
	files, _ := filepath.Glob("../../../topologies/*.yaml")
	if len(files) < 3 {
		t.Fatalf("found %d topologies", len(files))
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), append([]string{"validate"}, files...), &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"frobnicate"}, {"node", "explode", "w1"}, {"up", "a", "b"}, {}} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", args, code, errb.String())
		}
	}
}

func TestLabNameComesFromSwarmlabLab(t *testing.T) {
	t.Setenv(LabEnv, "ws-basics")
	got, err := labName(context.Background(), "")
	if err != nil || got != "ws-basics" {
		t.Fatalf("labName(\"\") = %q, %v; want ws-basics from %s", got, err, LabEnv)
	}
	if got, _ := labName(context.Background(), "other"); got != "other" {
		t.Errorf("a named lab must win over %s: got %q", LabEnv, got)
	}
}

func TestEnvScriptPinsTheLabAndTheEngine(t *testing.T) {
	t.Setenv("SWARMLAB_DOCKER_HOST", "unix:///var/run/docker.sock")
	got := envScript("ws-basics", "node w1", "tcp://127.0.0.1:40001")
	for _, want := range []string{
		"# lab ws-basics: the docker CLI now drives node w1\n",
		`export SWARMLAB_DOCKER_HOST="unix:///var/run/docker.sock"` + "\n",
		"export SWARMLAB_LAB=ws-basics\n",
		"export DOCKER_HOST=tcp://127.0.0.1:40001\n",
		"unset DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("env script lacks %q:\n%s", want, got)
		}
	}
}
