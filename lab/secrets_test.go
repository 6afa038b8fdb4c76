package lab

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/swarmlab/swarmlab/lab/provider/fake"
)

func TestGenerateStackSecretsOnceAndValid(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	stackFile := filepath.Join(t.TempDir(), "stack.yml")
	os.WriteFile(stackFile, []byte("services: {}\nx-swarmlab:\n  secrets:\n    pg: {generate: password}\n    edge: {generate: tls}\n"), 0o644)
	c := fake.NewCluster("unit", "r1")
	c.Add("interlock", "manager", "10.99.0.11")
	l := &Lab{name: "unit", cluster: c}

	env, err := l.Secrets().Generate(context.Background(), stackFile)
	if err != nil {
		t.Fatal(err)
	}
	pw1, _ := os.ReadFile(env["SWARMLAB_SECRET_PG"])
	if len(pw1) < 20 {
		t.Fatalf("password %q is too short", pw1)
	}
	// A second deploy keeps the secrets: a database keeps its password.
	env2, _ := l.Secrets().Generate(context.Background(), stackFile)
	pw2, _ := os.ReadFile(env2["SWARMLAB_SECRET_PG"])
	if string(pw1) != string(pw2) {
		t.Error("password changed between deploys")
	}

	bundle, _ := os.ReadFile(env["SWARMLAB_SECRET_EDGE"])
	block, rest := pem.Decode(bundle)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("bundle does not start with a certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.VerifyHostname("10.99.0.11"); err != nil {
		t.Errorf("certificate does not cover the node address: %v", err)
	}
	if key, _ := pem.Decode(rest); key == nil || key.Type != "EC PRIVATE KEY" {
		t.Error("bundle lacks the key after the certificate")
	}
	if fi, _ := os.Stat(env["SWARMLAB_SECRET_PG"]); fi.Mode().Perm() != 0o600 {
		t.Errorf("secret file mode %v, want 0600", fi.Mode().Perm())
	}
	if err := removeState("unit"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(env["SWARMLAB_SECRET_PG"]); !os.IsNotExist(err) {
		t.Error("removeState left the secret")
	}
}
