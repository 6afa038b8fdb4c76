package common

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
)

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"iptables":     "iptables",
		"a b":          "'a b'",
		"it's":         `'it'\''s'`,
		"":             "''",
		"$(rm -rf /)":  "'$(rm -rf /)'",
		"10.0.0.5:22":  "10.0.0.5:22",
		"-n":           "-n",
		"x;y":          "'x;y'",
		"/var/log/a b": "'/var/log/a b'",
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestPartitionScriptStartsHealedAndLimitsPorts(t *testing.T) {
	s := PartitionScript(Cut{Hooks: []string{"INPUT", "OUTPUT"}, Peers: []string{"10.0.0.6", "host name"}, TCPPorts: "2377,7946", UDPPorts: "4789"})
	if !strings.HasPrefix(s, HealScript) {
		t.Error("the partition script does not begin by healing: partitioning twice would leave two sets of rules")
	}
	for _, want := range []string{
		"$SUDO iptables -N SWARMLAB-PARTITION\n",
		"-A SWARMLAB-PARTITION -s 10.0.0.6 -p tcp -m multiport --dports 2377,7946 -j DROP\n",
		"-A SWARMLAB-PARTITION -d 10.0.0.6 -p udp -m multiport --dports 4789 -j DROP\n",
		"-A SWARMLAB-PARTITION -s 'host name' -p tcp",
		"-I INPUT 1 -m comment --comment swarmlab-partition -j SWARMLAB-PARTITION\n",
		"-I OUTPUT 1 -m comment --comment swarmlab-partition -j SWARMLAB-PARTITION\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("partition script lacks %q:\n%s", want, s)
		}
	}
	body := strings.TrimPrefix(s, HealScript)
	if strings.Contains(body, "FORWARD") || strings.Contains(body, "RETURN") {
		t.Errorf("partition script hooks or keeps what it was not asked to:\n%s", body)
	}
	if strings.Contains(body, "-j DROP\n$SUDO iptables -A SWARMLAB-PARTITION -s 10.0.0.6 -j DROP") {
		t.Errorf("a port-limited cut drops all traffic:\n%s", body)
	}
}

func TestHealScriptRemovesOnlyTheLabsRules(t *testing.T) {
	for _, c := range []string{"INPUT", "OUTPUT", "FORWARD"} {
		if !strings.Contains(HealScript, c) {
			t.Errorf("heal does not look in %s", c)
		}
	}
	for _, line := range strings.Split(HealScript, "\n") {
		if strings.Contains(line, "iptables") && !strings.Contains(line, PartitionChain) {
			t.Errorf("heal runs an iptables command that is not about %s: %q", PartitionChain, line)
		}
	}
	if !strings.HasPrefix(HealScript, AsRoot) || !strings.HasPrefix(PartitionedScript, AsRoot) {
		t.Error("a script does not set $SUDO first")
	}
}

func TestPreferPrivileged(t *testing.T) {
	asked := 0
	cgroup := func(v string) func() string { return func() string { asked++; return v } }
	for _, c := range []struct {
		env, cgroup string
		want        bool
	}{
		{"", "2", true},
		{"", "1", false},
		{"", "", false},
		{"privileged", "1", true},
		{"caps", "2", false},
	} {
		t.Setenv(SecurityEnv, c.env)
		asked = 0
		if got := PreferPrivileged(cgroup(c.cgroup)); got != c.want {
			t.Errorf("%s=%q on cgroup %q: privileged %v, want %v", SecurityEnv, c.env, c.cgroup, got, c.want)
		}
		if c.env != "" && asked != 0 {
			t.Errorf("%s=%q: the host engine was asked anyway", SecurityEnv, c.env)
		}
	}
}

func TestNodeHostConfig(t *testing.T) {
	var priv, caps container.HostConfig
	NodeHostConfig(&priv, true, "v1")
	NodeHostConfig(&caps, false, "v2")
	if !priv.Privileged || priv.CgroupnsMode != container.CgroupnsModePrivate || len(priv.CapAdd) != 0 {
		t.Errorf("privileged: %+v", priv)
	}
	if caps.Privileged || len(caps.CapAdd) != 1 || caps.CapAdd[0] != "ALL" || caps.CapDrop[0] != "SYS_RESOURCE" || len(caps.Binds) != 1 {
		t.Errorf("capabilities: %+v", caps)
	}
	for _, hc := range []container.HostConfig{priv, caps} {
		if len(hc.Mounts) != 1 || hc.Mounts[0].Target != "/var/lib/docker" {
			t.Errorf("no /var/lib/docker volume: %+v", hc.Mounts)
		}
		if _, ok := hc.Tmpfs["/run"]; !ok {
			t.Error("no tmpfs /run: a stale pid file would stop a restarted dockerd")
		}
	}
}

func TestMustSucceed(t *testing.T) {
	if err := (ExecResult{Stdout: "x"}).MustSucceed("ls"); err != nil {
		t.Errorf("exit 0: %v", err)
	}
	err := ExecResult{ExitCode: 2, Stdout: "out", Stderr: " no such file \n"}.MustSucceed("ls /x")
	if err == nil || err.Error() != "ls /x: exit code 2: no such file" {
		t.Errorf("exit 2 with stderr: %v", err)
	}
	err = ExecResult{ExitCode: 1, Stdout: "only stdout"}.MustSucceed("f")
	if err == nil || !strings.HasSuffix(err.Error(), ": only stdout") {
		t.Errorf("exit 1 without stderr: %v", err)
	}
}

func TestCommandLine(t *testing.T) {
	if got := CommandLine([]string{"sh", "-c", "echo $HOME; ls"}); got != `sh -c 'echo $HOME; ls'` {
		t.Errorf("CommandLine = %s", got)
	}
	if RegistryName("vote") != "swarmlab-vote-registry" {
		t.Errorf("RegistryName = %s", RegistryName("vote"))
	}
}
