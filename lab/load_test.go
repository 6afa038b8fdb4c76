package lab

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/swarmlab/swarmlab/lab/provider"
	"github.com/swarmlab/swarmlab/lab/provider/fake"
	"github.com/swarmlab/swarmlab/lab/topology"
)

// loadLab is a lab on the fake provider whose registries are regs (the
// first's address is the nodes' mirror where mirror is set), and whose host
// engine pushes into them.
func loadLab(t *testing.T, mirror bool, regs ...*fake.Registry) (*Lab, *fake.Engine) {
	t.Helper()
	stateHome(t)
	host := fake.NewEngine()
	t.Cleanup(host.Close)
	reg := provider.Registry{Pull: "registry:5000", Mirror: mirror}
	for _, r := range regs {
		host.PushTo(r)
		reg.Push = append(reg.Push, r.Addr())
	}
	cli, err := host.Client()
	if err != nil {
		t.Fatal(err)
	}
	c := fake.NewCluster("ld", "run1")
	c.Reg = reg
	c.Add("m1", topology.RoleManager, "10.0.0.10")
	return &Lab{name: "ld", cluster: c, host: cli, info: Info{Ingress: EdgeProxy}}, host
}

func newRegistry(t *testing.T, targets ...string) *fake.Registry {
	r := fake.NewRegistry(targets...)
	t.Cleanup(r.Close)
	return r
}

// A loaded docker.io name lands where the nodes' mirror serves it
// (myapp:1 as library/myapp:1), so that the stack's plain name resolves;
// loading it again pushes nothing, until the image changes.
func TestLoadPushesOnceUnderTheMirrorsName(t *testing.T) {
	reg := newRegistry(t)
	l, host := loadLab(t, true, reg)
	host.SetImage("myapp:1", "sha256:aaaa")
	ctx := context.Background()

	got, err := l.Stacks().Load(ctx, "myapp:1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Unchanged || got.As != "myapp:1" || got.ID != "sha256:aaaa" {
		t.Errorf("first load = %+v, want pushed, as myapp:1", got)
	}
	if id := reg.Image("library/myapp:1"); id != "sha256:aaaa" {
		t.Errorf("the registry serves library/myapp:1 as %q, want the image sha256:aaaa", id)
	}
	if p := host.Pushes(); !slices.Equal(p, []string{reg.Addr() + "/library/myapp:1"}) {
		t.Errorf("pushes %v", p)
	}

	again, err := l.Stacks().Load(ctx, "myapp:1")
	if err != nil || !again.Unchanged {
		t.Errorf("second load = %+v, %v; want unchanged", again, err)
	}
	if n := len(host.Pushes()); n != 1 {
		t.Errorf("%d pushes after an unchanged load, want 1", n)
	}

	host.SetImage("myapp:1", "sha256:bbbb") // rebuilt
	if re, err := l.Stacks().Load(ctx, "myapp:1"); err != nil || re.Unchanged || reg.Image("library/myapp:1") != "sha256:bbbb" {
		t.Errorf("load of a rebuilt image = %+v, %v; the registry has %q", re, err, reg.Image("library/myapp:1"))
	}

	// What the stack check then finds: myapp:1 is served, nothing missing.
	path := writeFile(t, "services:\n  web: {image: \"myapp:1\"}\n")
	if _, _, err := l.prepareStack(ctx, "web", path, nil, true, 0, nil); err != nil {
		t.Errorf("a stack asking for the loaded myapp:1: %v", err)
	}
}

func TestLoadNames(t *testing.T) {
	mirror := provider.Registry{Pull: "registry:5000", Push: []string{"127.0.0.1:1"}, Mirror: true}
	own := provider.Registry{Pull: "127.0.0.1:5000", Push: []string{"10.0.0.1:5000"}}
	for _, c := range []struct {
		reg               provider.Registry
		image, target, as string
	}{
		{mirror, "myapp:1", "library/myapp:1", "myapp:1"},
		{mirror, "myapp", "library/myapp:latest", "myapp"},
		{mirror, "team/app:2", "team/app:2", "team/app:2"},
		{mirror, "docker.io/library/redis:7", "library/redis:7", "docker.io/library/redis:7"},
		{mirror, "registry:5000/team/app:2", "team/app:2", "registry:5000/team/app:2"},
		{own, "myapp:1", "myapp:1", "127.0.0.1:5000/myapp:1"},
		{own, "team/app:2", "team/app:2", "127.0.0.1:5000/team/app:2"},
		{own, "127.0.0.1:5000/team/app:2", "team/app:2", "127.0.0.1:5000/team/app:2"},
	} {
		target, as, err := loadTarget(c.reg, c.image)
		if err != nil || target != c.target || as != c.as {
			t.Errorf("loadTarget(%s, mirror %v) = %q, %q, %v; want %q, %q", c.image, c.reg.Mirror, target, as, err, c.target, c.as)
		}
	}
	for image, want := range map[string]string{
		"ghcr.io/team/tool:2": "ghcr.io/team/tool:2 is an image of registry ghcr.io, which the nodes pull from directly, not from the lab registry (registry:5000); to run it from the lab registry, give it a docker.io name and load that: docker tag ghcr.io/team/tool:2 team/tool:2 && swarmlab load team/tool:2",
		"myapp@sha256:abcd":   "myapp@sha256:abcd names a digest; load takes a name and tag (myapp:1)",
		"":                    "an empty image name; want a name and tag, such as myapp:1",
	} {
		if _, _, err := loadTarget(mirror, image); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("loadTarget(%q) = %v, want an error saying %q", image, err, want)
		}
	}
}

// An image this machine's engine lacks is named, with how to get it, and
// nothing is pushed.
func TestLoadOfAMissingImage(t *testing.T) {
	reg := newRegistry(t)
	l, host := loadLab(t, true, reg)
	host.Missing("ghost:1")
	_, err := l.Stacks().Load(context.Background(), "ghost:1")
	want := "image ghost:1 is not in this machine's engine (" + host.Addr() + "), which load copies it from; build or pull it there first (docker build -t ghost:1 . or docker pull ghost:1)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("load of a missing image: %v\nwant: %s", err, want)
	}
	if p := host.Pushes(); len(p) != 0 || len(reg.Asked()) != 0 {
		t.Errorf("pushes %v, registry asked %v; want none", p, reg.Asked())
	}
}

// Where each node has its own registry (ssh), the image goes to each one
// that lacks it, under the lab registry's name.
func TestLoadIntoEveryRegistry(t *testing.T) {
	r1, r2 := newRegistry(t), newRegistry(t)
	l, host := loadLab(t, false, r1, r2)
	r1.Serve("myapp:1", fake.DefaultImageID)
	got, err := l.Stacks().Load(context.Background(), "myapp:1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Unchanged || got.As != "registry:5000/myapp:1" {
		t.Errorf("load = %+v, want pushed, as registry:5000/myapp:1", got)
	}
	if p := host.Pushes(); !slices.Equal(p, []string{r2.Addr() + "/myapp:1"}) {
		t.Errorf("pushes %v, want only to the registry that lacked it (%s)", p, r2.Addr())
	}
}
