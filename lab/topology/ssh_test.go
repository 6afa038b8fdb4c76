package topology

import (
	"path/filepath"
	"strings"
	"testing"
)

// sshDir is a lab directory with a key and a known_hosts file, as an ssh
// topology refers to them.
func sshDir(t *testing.T) string {
	t.Helper()
	dir := labDir(t)
	writeFile(t, filepath.Join(dir, "id"), "not really a key\n")
	writeFile(t, filepath.Join(dir, "known_hosts"), "\n")
	return dir
}

func sshYAML(dir, provider, nodes string) string {
	return strings.NewReplacer("DIR", dir).Replace(`apiVersion: swarmlab.dev/v1alpha1
kind: Topology
provider:
` + provider + `
nodes:
` + nodes)
}

const sshProvider = `  type: ssh
  ssh:
    user: admin
    identityFile: DIR/id
    knownHosts: DIR/known_hosts`

func TestSSHDefaults(t *testing.T) {
	dir := sshDir(t)
	path := filepath.Join(dir, "lab.yaml")
	writeFile(t, path, sshYAML(dir, sshProvider+"\n    port: 2222", `  - name: m1
    role: manager
    ssh: {address: 10.0.0.5}
  - name: w1
    role: worker
    ssh: {address: w1.example, advertiseAddr: 10.0.0.6, user: root, port: 22}
`))
	top, warnings, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %v", warnings)
	}
	m1, w1 := top.Nodes[0].SSH, top.Nodes[1].SSH
	want := SSH{Address: "10.0.0.5", User: "admin", Port: 2222, IdentityFile: dir + "/id", KnownHosts: dir + "/known_hosts", AdvertiseAddr: "10.0.0.5"}
	if *m1 != want {
		t.Errorf("m1 ssh = %+v, want the provider's defaults: %+v", *m1, want)
	}
	want = SSH{Address: "w1.example", User: "root", Port: 22, IdentityFile: dir + "/id", KnownHosts: dir + "/known_hosts", AdvertiseAddr: "10.0.0.6"}
	if *w1 != want {
		t.Errorf("w1 ssh = %+v, want its own values over the defaults: %+v", *w1, want)
	}
}

func TestSSHDefaultKnownHostsAndPort(t *testing.T) {
	dir := sshDir(t)
	path := filepath.Join(dir, "lab.yaml")
	writeFile(t, path, sshYAML(dir, "  type: ssh", `  - name: m1
    role: manager
    ssh: {address: 10.0.0.5, user: admin, identityFile: DIR/id, insecureIgnoreHostKey: true}
`))
	top, warnings, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := top.Nodes[0].SSH
	if s.Port != DefaultSSHPort || s.KnownHosts != DefaultSSHKnownHosts || !s.InsecureIgnoreHostKey {
		t.Errorf("ssh = %+v, want port 22, knownHosts %s, host keys ignored", *s, DefaultSSHKnownHosts)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "lab.yaml:8: nodes[0].ssh.insecureIgnoreHostKey: host keys of 10.0.0.5 are not checked") {
		t.Errorf("warnings = %q, want one about unchecked host keys", warnings)
	}
}

func TestSSHErrors(t *testing.T) {
	tests := []struct {
		name     string
		provider string
		nodes    string
		want     []want
	}{
		{
			name:     "ssh block required for every node",
			provider: sshProvider,
			nodes:    "  - {name: m1, role: manager}\n",
			want:     []want{{10, "nodes[0].ssh", "missing (a node of an ssh topology needs ssh.address"}},
		},
		{
			name:     "address required",
			provider: sshProvider,
			nodes:    "  - name: m1\n    role: manager\n    ssh: {port: 22}\n",
			want:     []want{{12, "nodes[0].ssh.address", "missing (expected the host name or IP address"}},
		},
		{
			name:     "address is not a host",
			provider: sshProvider,
			nodes:    "  - name: m1\n    role: manager\n    ssh: {address: \"a b\"}\n",
			want:     []want{{12, "nodes[0].ssh.address", `"a b" is not a host name or IP address`}},
		},
		{
			name:     "port out of range",
			provider: sshProvider,
			nodes:    "  - name: m1\n    role: manager\n    ssh:\n      address: 10.0.0.5\n      port: 70000\n",
			want:     []want{{14, "nodes[0].ssh.port", "70000 is not a TCP port (expected 1 to 65535)"}},
		},
		{
			name:     "port zero",
			provider: sshProvider,
			nodes:    "  - name: m1\n    role: manager\n    ssh:\n      address: 10.0.0.5\n      port: 0\n",
			want:     []want{{14, "nodes[0].ssh.port", "0 is not a TCP port"}},
		},
		{
			name:     "provider port out of range",
			provider: sshProvider + "\n    port: -1",
			nodes:    "  - name: m1\n    role: manager\n    ssh: {address: 10.0.0.5}\n",
			want:     []want{{9, "provider.ssh.port", "-1 is not a TCP port"}},
		},
		{
			name:     "port is not a number",
			provider: sshProvider,
			nodes:    "  - name: m1\n    role: manager\n    ssh: {address: 10.0.0.5, port: ssh}\n",
			want:     []want{{12, "nodes[0].ssh.port", `expected a whole number, found the string "ssh"`}},
		},
		{
			name:     "insecureIgnoreHostKey is not a boolean",
			provider: sshProvider + "\n    insecureIgnoreHostKey: maybe",
			nodes:    "  - name: m1\n    role: manager\n    ssh: {address: 10.0.0.5}\n",
			want:     []want{{9, "provider.ssh.insecureIgnoreHostKey", `expected true or false, found the string "maybe"`}},
		},
		{
			name:     "user required",
			provider: "  type: ssh",
			nodes:    "  - name: m1\n    role: manager\n    ssh: {address: 10.0.0.5, identityFile: DIR/id, knownHosts: DIR/known_hosts}\n",
			want:     []want{{8, "nodes[0].ssh.user", "missing (set it here or in provider.ssh.user)"}},
		},
		{
			name:     "identity file required",
			provider: "  type: ssh\n  ssh: {user: admin, knownHosts: DIR/known_hosts}",
			nodes:    "  - name: m1\n    role: manager\n    ssh: {address: 10.0.0.5}\n",
			want:     []want{{9, "nodes[0].ssh.identityFile", "missing (expected a private key file"}},
		},
		{
			name:     "identity file does not exist",
			provider: "  type: ssh\n  ssh: {user: admin, identityFile: DIR/nope, knownHosts: DIR/known_hosts}",
			nodes:    "  - name: m1\n    role: manager\n    ssh: {address: 10.0.0.5}\n",
			want:     []want{{9, "nodes[0].ssh.identityFile", `/nope" does not exist`}},
		},
		{
			name:     "known_hosts must exist unless host keys are ignored",
			provider: "  type: ssh\n  ssh: {user: admin, identityFile: DIR/id, knownHosts: DIR/nope}",
			nodes:    "  - name: m1\n    role: manager\n    ssh: {address: 10.0.0.5}\n",
			want:     []want{{9, "nodes[0].ssh.knownHosts", "or set insecureIgnoreHostKey: true"}},
		},
		{
			name:     "host name needs an advertise address",
			provider: sshProvider,
			nodes:    "  - name: m1\n    role: manager\n    ssh: {address: m1.example}\n",
			want:     []want{{12, "nodes[0].ssh.advertiseAddr", `missing (address "m1.example" is a host name`}},
		},
		{
			name:     "advertise address must be an IP",
			provider: sshProvider,
			nodes:    "  - name: m1\n    role: manager\n    ssh: {address: 10.0.0.5, advertiseAddr: eth0}\n",
			want:     []want{{12, "nodes[0].ssh.advertiseAddr", `"eth0" is not an IP address`}},
		},
		{
			name:     "two nodes on one host",
			provider: sshProvider,
			nodes:    "  - name: m1\n    role: manager\n    ssh: {address: 10.0.0.5}\n  - name: w1\n    role: worker\n    ssh: {address: 10.0.0.5}\n",
			want:     []want{{15, "nodes[1].ssh.address", "10.0.0.5:22 is also the host of nodes[0].ssh (line 12)"}},
		},
		{
			name:     "address is per node",
			provider: sshProvider + "\n    address: 10.0.0.5",
			nodes:    "  - name: m1\n    role: manager\n    ssh: {address: 10.0.0.5}\n",
			want:     []want{{9, "provider.ssh.address", "unknown field (expected one of user, port, identityFile, knownHosts, insecureIgnoreHostKey)"}},
		},
		{
			name:     "unknown ssh field",
			provider: sshProvider,
			nodes:    "  - name: m1\n    role: manager\n    ssh: {address: 10.0.0.5, usr: admin}\n",
			want:     []want{{12, "nodes[0].ssh.usr", `unknown field (did you mean "user"?)`}},
		},
		{
			name:     "no subnet on ssh hosts",
			provider: sshProvider + "\nswarm:\n  subnet: 10.99.7.0/24",
			nodes:    "  - name: m1\n    role: manager\n    ssh: {address: 10.0.0.5}\n",
			want:     []want{{10, "swarm.subnet", "only allowed with provider type docker"}},
		},
		{
			name:     "provider ssh block forbidden for docker",
			provider: "  type: docker\n  ssh: {user: admin}",
			nodes:    "  - {name: m1, role: manager}\n",
			want:     []want{{5, "provider.ssh", "only allowed with provider type ssh (this topology's provider is docker)"}},
		},
		{
			name:     "node ssh block forbidden for docker",
			provider: "  type: docker",
			nodes:    "  - name: m1\n    role: manager\n    ssh: {address: 10.0.0.5}\n",
			want:     []want{{8, "nodes[0].ssh", "only allowed with provider type ssh"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := sshDir(t)
			path := filepath.Join(dir, "lab.yaml")
			writeFile(t, path, sshYAML(dir, tt.provider, tt.nodes))
			top, _, err := LoadFile(path)
			if err == nil {
				t.Fatalf("LoadFile succeeded (%+v), want errors", top)
			}
			assertIssues(t, err, path, tt.want)
		})
	}
}
