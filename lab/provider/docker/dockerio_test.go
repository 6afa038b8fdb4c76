package docker

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/swarmlab/swarmlab/lab/provider"
)

func TestDockerIOUpstreamFromTheEnvironment(t *testing.T) {
	unset := func(string) (string, bool) { return "", false }
	if got, err := dockerIOUpstream(unset); err != nil || got != DefaultUpstream {
		t.Errorf("unset: %q, %v; want %s", got, err, DefaultUpstream)
	}
	for v, want := range map[string]string{
		"":                             "",
		"off":                          "",
		" off ":                        "",
		"http://10.0.0.5:5000":         "http://10.0.0.5:5000",
		"http://stand-in:5000/":        "http://stand-in:5000",
		"https://mirror.example":       "https://mirror.example",
		"https://registry-1.docker.io": DefaultUpstream,
	} {
		got, err := dockerIOUpstream(func(string) (string, bool) { return v, true })
		if err != nil || got != want {
			t.Errorf("%s=%q: %q, %v; want %q", UpstreamEnv, v, got, err, want)
		}
	}
	for _, v := range []string{"stand-in:5000", "ftp://x", "http://", "http://x/v2", "http://u:p@x", "http://x?a=b", "on"} {
		_, err := dockerIOUpstream(func(string) (string, bool) { return v, true })
		if err == nil || !strings.Contains(err.Error(), UpstreamEnv) {
			t.Errorf("%s=%q: error %v, want one naming %s", UpstreamEnv, v, err, UpstreamEnv)
		}
	}
}

// Where the lab is reached through its relay, this process asks the
// registry and the docker.io cache at the relay's listeners, not at the
// engine host's loopback.
func TestRegistryAddressesAreReachedAsTheLabIs(t *testing.T) {
	relayed := func(target string) (string, error) { return "127.0.0.1:9" + target[len(target)-3:], nil }
	c := &cluster{reach: relayed, registry: provider.Registry{
		Push: []string{"127.0.0.1:40500"}, Pull: "registry:5000", Mirror: true,
		DockerIO: provider.DockerIOCache{Pull: "dockerio:5000", Query: "127.0.0.1:40501", Upstream: DefaultUpstream},
	}}
	r := c.Registry()
	if len(r.Query) != 1 || r.Query[0] != "127.0.0.1:9500" || r.DockerIO.Query != "127.0.0.1:9501" {
		t.Errorf("Registry() = %+v; want the registry at 127.0.0.1:9500 and the cache at 127.0.0.1:9501, the relay's", r)
	}
	if r.Push[0] != "127.0.0.1:40500" || c.registry.DockerIO.Query != "127.0.0.1:40501" {
		t.Errorf("Registry() changed what the engine pushes to, or the cluster's own record: %+v, %+v", r, c.registry)
	}
	direct := &cluster{reach: func(t string) (string, error) { return t, nil }, registry: c.registry}
	if got := direct.Registry().DockerIO.Query; got != "127.0.0.1:40501" {
		t.Errorf("reached directly, the cache is asked at %s, want 127.0.0.1:40501", got)
	}
}

// The cache's command runs the registry again when it ends (its upstream
// did not answer as it started), a little later each time, and says so in
// a line that cacheFailureIn finds, with the registry's reason.
func TestTheCacheStartsAgainUntilItsUpstreamAnswers(t *testing.T) {
	dir := t.TempDir()
	count := filepath.Join(dir, "count")
	// A registry that fails its first three starts, then serves (here:
	// ends well, which ends the loop); a sleep that only records.
	os.WriteFile(filepath.Join(dir, "docker-registry"), []byte(`#!/bin/sh
echo x >>"`+count+`"
[ "$(wc -l <"`+count+`")" -gt 3 ] && exit 0
echo 'panic: Get "http://up:5000/v2/": dial tcp: lookup up: no such host' >&2
exit 2
`), 0o755)
	os.WriteFile(filepath.Join(dir, "sleep"), []byte("#!/bin/sh\necho \"slept $1\" >&2\n"), 0o755)
	cmd := exec.Command("sh", "-c", cacheScript)
	cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if n := strings.Count(string(out), cacheRetryMark); n != 3 {
		t.Errorf("the retry line %d times, want 3:\n%s", n, out)
	}
	for _, s := range []string{"slept 1", "slept 2", "slept 4"} {
		if !strings.Contains(string(out), s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
	if got := cacheFailureIn(string(out)); got != `Get "http://up:5000/v2/": dial tcp: lookup up: no such host` {
		t.Errorf("cacheFailureIn = %q", got)
	}
	if got := cacheFailureIn("level=info msg=\"listening on [::]:5000\"\n"); got != "" {
		t.Errorf("cacheFailureIn of a running registry's log = %q, want \"\"", got)
	}
}
