package aws

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/swarmlab/swarmlab/lab/aws/awstest"
	"github.com/swarmlab/swarmlab/lab/topology"
)

// stackEvent is a CloudFormation event of the stack itself.
func stackEvent(name, status, reason string) fakeEvent {
	return fakeEvent{name, "AWS::CloudFormation::Stack", status, reason}
}

type fakeNode struct {
	id, public, private string
	key                 ssh.PublicKey
}

// completeOutputs makes the outputs a finished stack for the plan's nodes
// would have, each node with its own host key.
func completeOutputs(t *testing.T, p *Plan) (map[string]string, map[string]fakeNode) {
	out, nodes := map[string]string{}, map[string]fakeNode{}
	for i, n := range p.Nodes {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		key, err := ssh.NewPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		fn := fakeNode{id: "i-0000000000000000" + string(rune('a'+i)), public: "198.51.100." + string(rune('1'+i)),
			private: "10.42.1." + string(rune('1'+i)), key: key}
		nodes[n.Name] = fn
		data, _ := json.Marshal(map[string]string{n.Name: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))) + ","})
		out[n.ID+"InstanceId"], out[n.ID+"PublicIp"], out[n.ID+"PrivateIp"], out[n.ID+"HostKeys"] = fn.id, fn.public, fn.private, string(data)
	}
	return out, nodes
}

func fastOptions(f *fakeCloudFormation, out *bytes.Buffer) Options {
	return Options{Config: f.config(), Out: out, PollInterval: time.Millisecond, StackTimeout: 10 * time.Second}
}

func sshSpec(t *testing.T, name string) SSHSpec {
	dir := t.TempDir()
	key := filepath.Join(dir, "lab-key.pem")
	if err := os.WriteFile(key, []byte("not read by these tests\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return SSHSpec{IdentityFile: key, Out: filepath.Join(dir, "out", name+"-aws.yaml")}
}

func TestUpWaitsForTheStackAndWritesAnSSHTopology(t *testing.T) {
	topo := loadTopology(t, "vote-6")
	p := plan(t, "vote-6", baseSpec)
	f := newFakeCloudFormation(t)
	f.createScript = []fakeStep{
		{"CREATE_IN_PROGRESS", []fakeEvent{stackEvent(p.StackName, "CREATE_IN_PROGRESS", "User Initiated")}},
		{"CREATE_IN_PROGRESS", []fakeEvent{{"InstanceManager", "AWS::EC2::Instance", "CREATE_IN_PROGRESS", ""}}},
		{"CREATE_IN_PROGRESS", []fakeEvent{{"DockerReadyManager", "AWS::CloudFormation::WaitCondition", "CREATE_COMPLETE", ""}}},
		{"CREATE_COMPLETE", []fakeEvent{stackEvent(p.StackName, "CREATE_COMPLETE", "")}},
	}
	var nodes map[string]fakeNode
	f.outputs, nodes = completeOutputs(t, p)
	var progress bytes.Buffer
	ssh := sshSpec(t, "vote-6")

	res, err := Up(context.Background(), topo, baseSpec, ssh, fastOptions(f, &progress))
	if err != nil {
		t.Fatalf("Up: %v\nprogress:\n%s", err, progress.String())
	}

	// It created the stack it planned, tagged with the lab, and waited
	// through CREATE_IN_PROGRESS until CREATE_COMPLETE.
	if len(f.created) != 1 || f.created[0] != string(p.Template) {
		t.Errorf("CreateStack did not receive the planned template (got %d creates)", len(f.created))
	}
	if f.tags[TagLab] != "vote-6" {
		t.Errorf("stack tags = %v, want %s=vote-6", f.tags, TagLab)
	}
	if describes := count(f.actions(), "DescribeStacks"); describes < 3 {
		t.Errorf("DescribeStacks called %d times; want it polled through the in-progress states", describes)
	}
	for _, want := range []string{"InstanceManager CREATE_IN_PROGRESS", "DockerReadyManager CREATE_COMPLETE", p.StackName + " CREATE_COMPLETE"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress lacks event %q:\n%s", want, progress.String())
		}
	}

	// The written topology has the same nodes, labels and stacks, on the
	// instances, through ssh.
	// The ssh provider reads it as it is: loaded, defaulted and validated.
	if top, _, err := topology.LoadFile(res.Topology); err != nil {
		t.Errorf("the written topology does not load: %v", err)
	} else if top.Provider.Type != topology.ProviderSSH || len(top.Nodes) != 6 || top.Nodes[0].SSH == nil || top.Nodes[0].SSH.Address == "" {
		t.Errorf("the written topology loads as provider %q with %d nodes, first ssh %+v", top.Provider.Type, len(top.Nodes), top.Nodes[0].SSH)
	}
	var got struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Name       string `yaml:"name"`
		Provider   struct {
			Type string `yaml:"type"`
			SSH  struct {
				User         string `yaml:"user"`
				IdentityFile string `yaml:"identityFile"`
				KnownHosts   string `yaml:"knownHosts"`
			} `yaml:"ssh"`
		} `yaml:"provider"`
		Swarm struct {
			DispatcherHeartbeat string `yaml:"dispatcherHeartbeat"`
		} `yaml:"swarm"`
		Nodes []struct {
			Name         string            `yaml:"name"`
			Role         string            `yaml:"role"`
			Availability string            `yaml:"availability"`
			Labels       map[string]string `yaml:"labels"`
			SSH          struct {
				Address       string `yaml:"address"`
				AdvertiseAddr string `yaml:"advertiseAddr"`
			} `yaml:"ssh"`
		} `yaml:"nodes"`
		Stacks []struct {
			Name string `yaml:"name"`
			File string `yaml:"file"`
		} `yaml:"stacks"`
	}
	data, err := os.ReadFile(ssh.Out)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("written topology: %v\n%s", err, data)
	}
	if got.APIVersion != "swarmlab.dev/v1alpha1" || got.Kind != "Topology" || got.Name != "vote-6" {
		t.Errorf("header = %s %s %s", got.APIVersion, got.Kind, got.Name)
	}
	if got.Provider.Type != "ssh" || got.Provider.SSH.User != "admin" || got.Provider.SSH.IdentityFile != ssh.IdentityFile {
		t.Errorf("provider = %+v", got.Provider)
	}
	if got.Swarm.DispatcherHeartbeat != "1s" {
		t.Errorf("dispatcherHeartbeat = %q, want the input's 1s", got.Swarm.DispatcherHeartbeat)
	}
	if len(got.Nodes) != len(topo.Nodes) {
		t.Fatalf("%d nodes written, want %d", len(got.Nodes), len(topo.Nodes))
	}
	for i, n := range topo.Nodes {
		g, want := got.Nodes[i], nodes[n.Name]
		if g.Name != n.Name || g.Role != n.Role || g.Availability != n.Availability || !maps.Equal(g.Labels, n.Labels) {
			t.Errorf("node %d = %s %s %v, want %s %s %v", i, g.Name, g.Role, g.Labels, n.Name, n.Role, n.Labels)
		}
		if g.SSH.Address != want.public || g.SSH.AdvertiseAddr != want.private {
			t.Errorf("node %s ssh = %+v, want address %s advertiseAddr %s", n.Name, g.SSH, want.public, want.private)
		}
	}
	stackFile := ""
	if len(got.Stacks) == 1 {
		stackFile = got.Stacks[0].File
		if !filepath.IsAbs(stackFile) {
			stackFile = filepath.Join(filepath.Dir(ssh.Out), stackFile)
		}
	}
	if len(got.Stacks) != 1 || got.Stacks[0].Name != topo.Stacks[0].Name || stackFile != topo.StackPath(0) {
		t.Errorf("stacks = %+v; want %s resolving to %s", got.Stacks, topo.Stacks[0].Name, topo.StackPath(0))
	}

	// known_hosts accepts each node's own key at its public address, and
	// no other node's.
	if got.Provider.SSH.KnownHosts != res.KnownHosts {
		t.Errorf("knownHosts = %s, want %s", got.Provider.SSH.KnownHosts, res.KnownHosts)
	}
	check, err := knownhosts.New(res.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	for name, n := range nodes {
		addr := &net.TCPAddr{IP: net.ParseIP(n.public), Port: 22}
		if err := check(n.public+":22", addr, n.key); err != nil {
			t.Errorf("known_hosts rejects node %s's own key: %v", name, err)
		}
		other := nodes["manager"]
		if name != "manager" {
			if err := check(n.public+":22", addr, other.key); err == nil {
				t.Errorf("known_hosts accepts the manager's key for node %s", name)
			}
		}
	}

	// Run again: the complete stack is reused, not created twice.
	if _, err := Up(context.Background(), topo, baseSpec, ssh, fastOptions(f, &progress)); err != nil {
		t.Fatalf("second Up: %v", err)
	}
	if len(f.created) != 1 || !strings.Contains(progress.String(), "already exists (CREATE_COMPLETE); using it") {
		t.Errorf("second Up created %d stacks; progress:\n%s", len(f.created), progress.String())
	}
}

func TestUpQuotesTheResourceThatFailed(t *testing.T) {
	topo := loadTopology(t, "swarm-3")
	const why = "WaitCondition received failed message: 'node w1: installing or starting docker.io failed, see /var/log/cloud-init-output.log' for uniqueId: w1"
	f := newFakeCloudFormation(t)
	f.createScript = []fakeStep{
		{"CREATE_IN_PROGRESS", []fakeEvent{stackEvent("swarmlab-swarm-3", "CREATE_IN_PROGRESS", "User Initiated")}},
		{"ROLLBACK_IN_PROGRESS", []fakeEvent{
			{"DockerReadyW1", "AWS::CloudFormation::WaitCondition", "CREATE_FAILED", why},
			{"DockerReadyM1", "AWS::CloudFormation::WaitCondition", "CREATE_FAILED", "Resource creation cancelled"},
			stackEvent("swarmlab-swarm-3", "ROLLBACK_IN_PROGRESS", "The following resource(s) failed to create: [DockerReadyW1, DockerReadyM1]. Rollback requested by user."),
		}},
		{"ROLLBACK_COMPLETE", []fakeEvent{stackEvent("swarmlab-swarm-3", "ROLLBACK_COMPLETE", "")}},
	}
	var progress bytes.Buffer
	ssh := sshSpec(t, "swarm-3")
	_, err := Up(context.Background(), topo, baseSpec, ssh, fastOptions(f, &progress))
	if err == nil {
		t.Fatal("Up succeeded on a stack that rolled back")
	}
	for _, want := range []string{"ROLLBACK_COMPLETE", "DockerReadyW1", why, "swarmlab aws down swarm-3"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "Resource creation cancelled") {
		t.Errorf("error quotes a consequence instead of the cause: %v", err)
	}
	if _, statErr := os.Stat(ssh.Out); !errors.Is(statErr, os.ErrNotExist) {
		t.Errorf("a failed Up wrote %s (stat: %v)", ssh.Out, statErr)
	}
}

func TestUpTimeoutSaysWhatItWaitedForAndLastSaw(t *testing.T) {
	topo := loadTopology(t, "swarm-3")
	f := newFakeCloudFormation(t)
	f.createScript = []fakeStep{
		{"CREATE_IN_PROGRESS", []fakeEvent{{"InstanceW2", "AWS::EC2::Instance", "CREATE_IN_PROGRESS", "Resource creation Initiated"}}},
	}
	var progress bytes.Buffer
	opts := fastOptions(f, &progress)
	opts.StackTimeout = 50 * time.Millisecond
	_, err := Up(context.Background(), topo, baseSpec, sshSpec(t, "swarm-3"), opts)
	if err == nil {
		t.Fatal("Up succeeded on a stack that never completed")
	}
	for _, want := range []string{"CloudFormation stack swarmlab-swarm-3 to be created", "last seen: stack status CREATE_IN_PROGRESS; last event: InstanceW2 CREATE_IN_PROGRESS: Resource creation Initiated"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestDownDeletesTheStackAndWaits(t *testing.T) {
	topo := loadTopology(t, "swarm-3")
	p := plan(t, "swarm-3", baseSpec)
	f := newFakeCloudFormation(t)
	f.createScript = []fakeStep{{"CREATE_IN_PROGRESS", nil}, {"CREATE_COMPLETE", nil}}
	f.outputs, _ = completeOutputs(t, p)
	f.deleteScript = []fakeStep{
		{"DELETE_IN_PROGRESS", []fakeEvent{stackEvent(p.StackName, "DELETE_IN_PROGRESS", "User Initiated")}},
		{"DELETE_IN_PROGRESS", []fakeEvent{{"InstanceM1", "AWS::EC2::Instance", "DELETE_COMPLETE", ""}}},
		{"DELETE_COMPLETE", []fakeEvent{stackEvent(p.StackName, "DELETE_COMPLETE", "")}},
	}
	var progress bytes.Buffer
	if _, err := Up(context.Background(), topo, baseSpec, sshSpec(t, "swarm-3"), fastOptions(f, &progress)); err != nil {
		t.Fatal(err)
	}
	res, err := Down(context.Background(), "swarm-3", fastOptions(f, &progress))
	if err != nil {
		t.Fatalf("Down: %v\n%s", err, progress.String())
	}
	if !res.Existed || count(f.actions(), "DeleteStack") != 1 {
		t.Errorf("Down: existed=%v, DeleteStack calls=%d", res.Existed, count(f.actions(), "DeleteStack"))
	}
	calls := f.actions()
	if last := calls[len(calls)-2:]; last[0] != "DescribeStacks" || !strings.Contains(progress.String(), p.StackName+" DELETE_COMPLETE") {
		t.Errorf("Down returned before it saw DELETE_COMPLETE; calls %v\n%s", calls, progress.String())
	}

	// Again: nothing left to delete, and it says so rather than failing.
	res, err = Down(context.Background(), "swarm-3", fastOptions(f, &progress))
	if err != nil || res.Existed || count(f.actions(), "DeleteStack") != 1 {
		t.Errorf("second Down: %+v, %v, DeleteStack calls=%d", res, err, count(f.actions(), "DeleteStack"))
	}
}

func TestDownQuotesWhyDeletionFailed(t *testing.T) {
	f := newFakeCloudFormation(t)
	p := plan(t, "swarm-3", baseSpec)
	f.createScript = []fakeStep{{"CREATE_COMPLETE", nil}}
	f.outputs, _ = completeOutputs(t, p)
	const why = "resource sg-0123 has a dependent object"
	f.deleteScript = []fakeStep{
		{"DELETE_IN_PROGRESS", nil},
		{"DELETE_FAILED", []fakeEvent{{"SecurityGroup", "AWS::EC2::SecurityGroup", "DELETE_FAILED", why}}},
	}
	var progress bytes.Buffer
	if _, err := Up(context.Background(), loadTopology(t, "swarm-3"), baseSpec, sshSpec(t, "swarm-3"), fastOptions(f, &progress)); err != nil {
		t.Fatal(err)
	}
	_, err := Down(context.Background(), "swarm-3", fastOptions(f, &progress))
	if err == nil || !strings.Contains(err.Error(), "DELETE_FAILED") || !strings.Contains(err.Error(), "SecurityGroup") || !strings.Contains(err.Error(), why) {
		t.Errorf("Down error = %v; want DELETE_FAILED quoting SecurityGroup: %s", err, why)
	}
}

func TestMissingCredentialsIsOneLine(t *testing.T) {
	awstest.NoCredentials(t)
	_, err := Up(context.Background(), loadTopology(t, "swarm-3"), baseSpec, sshSpec(t, "swarm-3"), Options{})
	if !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("Up without credentials: %v, want %v", err, ErrNoCredentials)
	}
	if _, err := Down(context.Background(), "swarm-3", Options{}); !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("Down without credentials: %v", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error spans lines: %q", err)
	}
}

func TestSpecCheckNamesTheFlag(t *testing.T) {
	for _, c := range []struct {
		spec Spec
		want string
	}{
		{Spec{KeyName: "k"}, "--cidr is required"},
		{Spec{CIDR: "0.0.0.0/0", KeyName: "k"}, "whole internet"},
		{Spec{CIDR: "me", KeyName: "k"}, `--cidr "me" is not a CIDR`},
		{Spec{CIDR: "203.0.113.7/32"}, "--key-name is required"},
		{Spec{CIDR: "203.0.113.7/32", KeyName: "k", VPCID: "vpc-0123456789abcdef0"}, "--vpc-id and --subnet-id go together"},
		{Spec{CIDR: "203.0.113.7/32", KeyName: "k", Image: "debian"}, `--ami "debian"`},
	} {
		err := c.spec.Check()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Check(%+v) = %v, want %q", c.spec, err, c.want)
		}
	}
	s := Spec{CIDR: "203.0.113.9/24", KeyName: "k"}
	if err := s.Check(); err != nil || s.CIDR != "203.0.113.0/24" || s.InstanceType != DefaultInstanceType || s.Image != DebianImage {
		t.Errorf("Check defaults: %+v, %v", s, err)
	}
}

func TestUserDataIsAValidShellScript(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal("no sh to check the boot script with")
	}
	script := userData("swarm-3", PlannedNode{Name: "m1", Role: "manager", ID: "M1"}, "DockerHandleM1", "admin")
	script = strings.ReplaceAll(script, "${DockerHandleM1}", "https://wait-condition.invalid/handle") // what Fn::Sub does
	if strings.Contains(script, "${") {
		t.Errorf("boot script has a ${...} that Fn::Sub would try to resolve:\n%s", script)
	}
	out, err := exec.Command(sh, "-n", "-c", script).CombinedOutput()
	if err != nil {
		t.Errorf("sh -n: %v\n%s\n%s", err, out, script)
	}
}

func count(list []string, s string) int {
	n := 0
	for _, l := range list {
		if l == s {
			n++
		}
	}
	return n
}

func TestStackPathsStayRelativeNextToTheRepo(t *testing.T) {
	for _, c := range []struct{ dir, path, want string }{
		{"/work/repo/topologies", "/work/repo/app/vote/stack.yml", "../app/vote/stack.yml"},
		{"/tmp/x/out", "/work/repo/app/vote/stack.yml", "/work/repo/app/vote/stack.yml"},
	} {
		if got := relativeTo(c.dir, c.path); got != c.want {
			t.Errorf("relativeTo(%s, %s) = %s, want %s", c.dir, c.path, got, c.want)
		}
	}
}

func TestUpWithoutTheIdentityFileCreatesNothing(t *testing.T) {
	f := newFakeCloudFormation(t)
	ssh := sshSpec(t, "swarm-3")
	ssh.IdentityFile += ".missing"
	var progress bytes.Buffer
	_, err := Up(context.Background(), loadTopology(t, "swarm-3"), baseSpec, ssh, fastOptions(f, &progress))
	if err == nil || !strings.Contains(err.Error(), "--identity-file") || len(f.actions()) != 0 {
		t.Errorf("Up = %v after %v calls; want an --identity-file error before any call", err, f.actions())
	}
}
