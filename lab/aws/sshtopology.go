package aws

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/swarmlab/swarmlab/lab/topology"
)

// writeFiles writes the known_hosts file and the ssh topology for res: the
// same nodes, labels and stacks as t, on the instances.
func writeFiles(t *topology.Topology, plan *Plan, spec Spec, ssh SSHSpec, res *UpResult) error {
	out, err := filepath.Abs(ssh.Out)
	if err != nil {
		return err
	}
	known, err := filepath.Abs(ssh.KnownHosts)
	if err != nil {
		return err
	}
	identity, err := filepath.Abs(ssh.IdentityFile)
	if err != nil {
		return err
	}
	var hosts strings.Builder
	for _, in := range res.Nodes {
		fmt.Fprintf(&hosts, "# node %s, instance %s\n", in.Node, in.ID)
		for _, l := range in.HostKeys {
			hosts.WriteString(l + "\n")
		}
	}
	if err := writeFile(known, []byte(hosts.String())); err != nil {
		return fmt.Errorf("writing known hosts: %w", err)
	}

	// The ssh provider's format (lab/topology): the instances' public
	// addresses to connect to, their private ones for swarm.
	st := topology.Topology{
		APIVersion: topology.APIVersion, Kind: topology.Kind, Name: t.Name,
		Provider: topology.Provider{Type: topology.ProviderSSH, SSH: &topology.SSH{User: spec.User, IdentityFile: identity, KnownHosts: known}},
		Swarm:    topology.Swarm{DispatcherHeartbeat: t.Swarm.DispatcherHeartbeat},
	}
	for i, n := range t.Nodes {
		in := res.Nodes[i]
		st.Nodes = append(st.Nodes, topology.Node{Name: n.Name, Role: n.Role, Availability: n.Availability, Labels: n.Labels,
			SSH: &topology.SSH{Address: in.PublicIP, AdvertiseAddr: in.PrivateIP}})
	}
	// Stack files stay where they are: their paths are rewritten relative
	// to the new file's directory.
	for i, s := range t.Stacks {
		st.Stacks = append(st.Stacks, topology.Stack{Name: s.Name, File: filepath.ToSlash(relativeTo(filepath.Dir(out), t.StackPath(i)))})
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# Written by `swarmlab aws up` from %s: the instances of CloudFormation\n", t.Source())
	fmt.Fprintf(&buf, "# stack %s in %s. Delete them with `swarmlab aws down %s`.\n", plan.StackName, res.Region, t.Source())
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(st); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	if err := writeFile(out, buf.Bytes()); err != nil {
		return fmt.Errorf("writing the ssh topology: %w", err)
	}
	return nil
}

// relativeTo writes path relative to dir when they share a directory below
// the root (a topology next to the repo's), and absolute otherwise.
func relativeTo(dir, path string) string {
	rel, err := filepath.Rel(dir, path)
	if err != nil {
		return path
	}
	ups := 0
	for _, e := range strings.Split(filepath.ToSlash(rel), "/") {
		if e == ".." {
			ups++
		}
	}
	if ups >= len(strings.Split(strings.Trim(filepath.ToSlash(dir), "/"), "/")) {
		return path
	}
	return rel
}
