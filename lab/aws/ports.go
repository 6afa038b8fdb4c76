package aws

import (
	"fmt"
	"strings"

	"github.com/swarmlab/swarmlab/lab/stack"
	"github.com/swarmlab/swarmlab/lab/topology"
)

// PublishedPorts lists the ports t's stacks publish, which the security
// group opens to the caller. The stack files are only read: ${VARS} they
// use for images and secrets get placeholders, since nothing is built here.
func PublishedPorts(t *topology.Topology) ([]Port, error) {
	var ports []Port
	for i := range t.Stacks {
		path := t.StackPath(i)
		env := map[string]string{"SWARMLAB_PUBLISH_MODE": "host", "SWARMLAB_LAB": t.Name}
		imgs, err := stack.Images(path)
		if err != nil {
			return nil, err
		}
		for name := range imgs {
			env[stack.ImageEnv(name)] = "swarmlab/" + name
		}
		secrets, err := stack.Secrets(path)
		if err != nil {
			return nil, err
		}
		for name := range secrets {
			env[stack.SecretEnv(name)] = path // any existing file will do
		}
		cfg, err := stack.Load(path, env)
		if err != nil {
			return nil, fmt.Errorf("reading the ports of stack %s: %w", t.Stacks[i].Name, err)
		}
		for _, svc := range cfg.Services {
			for _, p := range svc.Ports {
				if p.Published == 0 {
					continue
				}
				proto := strings.ToLower(p.Protocol)
				if proto == "" {
					proto = "tcp"
				}
				ports = append(ports, Port{Port: p.Published, Protocol: proto})
			}
		}
	}
	return sortPorts(ports), nil
}
