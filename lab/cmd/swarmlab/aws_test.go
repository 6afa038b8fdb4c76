package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/swarmlab/swarmlab/lab/aws/awstest"
)

func TestAwsWithoutCredentialsSaysSoInOneLine(t *testing.T) {
	dir := t.TempDir()
	awstest.NoCredentials(t)
	t.Setenv("SWARMLAB_TOPOLOGIES", "../../../topologies")
	for _, args := range [][]string{
		{"aws", "up", "swarm-3", "--cidr", "203.0.113.7/32", "--key-name", "lab-key", "--out", filepath.Join(dir, "out.yaml")},
		{"aws", "down", "swarm-3"},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, &out, &errb)
		want := "swarmlab aws: no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)\n"
		if code != 1 || errb.String() != want {
			t.Errorf("%v: exit %d, stderr %q; want exit 1 and %q", args, code, errb.String(), want)
		}
		if _, err := os.Stat(filepath.Join(dir, "out.yaml")); err == nil {
			t.Errorf("%v wrote a topology without credentials", args)
		}
	}
}

func TestAwsUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"aws"}, {"aws", "sideways"}, {"aws", "up"}, {"aws", "down", "a", "b"}} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", args, code, errb.String())
		}
	}
}

func TestAwsUpNamesMissingFlags(t *testing.T) {
	t.Setenv("SWARMLAB_TOPOLOGIES", "../../../topologies")
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"aws", "up", "swarm-3"}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "--cidr is required") || !strings.Contains(errb.String(), "--key-name is required") {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
}
