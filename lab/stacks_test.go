package lab

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/swarmlab/swarmlab/lab/provider"
	"github.com/swarmlab/swarmlab/lab/provider/fake"
)

// What a stack file is read with: the lab's variables, its built images
// (by name, as nodes pull them), its generated secrets, and the caller's
// variables over all of them.
func TestPrepareStackInterpolatesTheLabsVariables(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	path := filepath.Join(t.TempDir(), "stack.yml")
	os.WriteFile(path, []byte(`services:
  web:
    image: ${SWARMLAB_IMAGE_WEB}
    environment:
      REGISTRY: ${SWARMLAB_REGISTRY}
      MODE: ${SWARMLAB_PUBLISH_MODE}
      LAB: ${SWARMLAB_LAB}
      EXTRA: ${EXTRA}
    secrets: [pg]
secrets:
  pg: {file: "${SWARMLAB_SECRET_PG}"}
x-swarmlab:
  secrets:
    pg: {generate: password}
`), 0o644)
	c := fake.NewCluster("unit", "run1")
	c.Reg = provider.Registry{Pull: "registry:5000"}
	l := &Lab{name: "unit", info: Info{Ingress: EdgeProxy}, cluster: c}
	defer removeState("unit")
	imgs := []*stackImage{{name: "web", local: "swarmlab/web:abc123"}}

	st, cfg, err := l.prepareStack(context.Background(), "shop", path, imgs, true, 0, map[string]string{"EXTRA": "x", "SWARMLAB_LAB": "mine"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Name != "shop" || st.Images["web"] != "registry:5000/swarmlab/web:abc123" || len(st.Images) != 1 {
		t.Errorf("stack %+v, want shop with image web = registry:5000/swarmlab/web:abc123", st)
	}
	svc := cfg.Services[0]
	env := map[string]string{}
	for k, v := range svc.Environment {
		env[k] = *v
	}
	want := map[string]string{"REGISTRY": "registry:5000", "MODE": "host", "LAB": "mine", "EXTRA": "x"}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if svc.Image != st.Images["web"] {
		t.Errorf("image %q, want %q", svc.Image, st.Images["web"])
	}
	secret := cfg.Secrets["pg"].File
	if secret != l.Secrets().Path("pg") || st.Env["SWARMLAB_SECRET_PG"] != secret {
		t.Errorf("secret file %q (env %q), want %q", secret, st.Env["SWARMLAB_SECRET_PG"], l.Secrets().Path("pg"))
	}
	if _, err := os.Stat(secret); err != nil {
		t.Errorf("the secret was not generated: %v", err)
	}
}
