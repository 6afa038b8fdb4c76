package docker

import (
	"strings"
	"testing"
)

func TestChooseAccess(t *testing.T) {
	desktop := func() string { return "Docker Desktop" }
	debian := func() string { return "Debian GNU/Linux 12 (bookworm)" }
	for _, tc := range []struct {
		override, goos, host string
		engineOS             func() string
		want                 string
	}{
		{"", "linux", "unix:///var/run/docker.sock", debian, accessDirect},
		{"", "linux", "unix:///home/u/.docker/desktop/docker.sock", desktop, accessTunnel},
		{"", "darwin", "unix:///var/run/docker.sock", desktop, accessTunnel},
		{"", "linux", "tcp://docker:2375", debian, accessTunnel},
		{"", "linux", "ssh://build-box", debian, accessTunnel},
		{"", "windows", "npipe:////./pipe/docker_engine", desktop, accessTunnel},
		{"tunnel", "linux", "unix:///var/run/docker.sock", debian, accessTunnel},
		{"direct", "linux", "tcp://10.0.0.5:2375", debian, accessDirect},
	} {
		got, err := chooseAccess(tc.override, tc.goos, tc.host, tc.engineOS)
		if err != nil || got != tc.want {
			t.Errorf("chooseAccess(%q, %q, %q) = %q, %v; want %q", tc.override, tc.goos, tc.host, got, err, tc.want)
		}
	}
	if _, err := chooseAccess("vpn", "linux", "unix:///x", debian); err == nil || !strings.Contains(err.Error(), AccessEnv) {
		t.Errorf("a bad override: err = %v, want one naming %s", err, AccessEnv)
	}
}
