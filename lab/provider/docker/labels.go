package docker

import "github.com/moby/moby/client"

// Every container, network and volume a lab creates carries these labels.
// Every listing and every cleanup goes through them, never through names.
const (
	LabelLab       = "io.swarmlab.lab"       // lab name
	LabelRun       = "io.swarmlab.run"       // id of the bring-up that made it
	LabelComponent = "io.swarmlab.component" // node | registry | network | volume
	LabelNode      = "io.swarmlab.node"      // node name (nodes and their volumes)
	LabelRole      = "io.swarmlab.role"      // manager | worker
	LabelIndex     = "io.swarmlab.index"     // position of the node in the topology
	LabelAddr      = "io.swarmlab.addr"      // node address on the lab network
	LabelTopology  = "io.swarmlab.topology"  // topology file the lab came from
	// LabelCache marks the registry blob cache, which outlives labs on
	// purpose (like the image cache) so that images are pushed once.
	LabelCache = "io.swarmlab.cache"
)

const (
	componentNode     = "node"
	componentRegistry = "registry"
)

func labFilter(name string) client.Filters {
	return make(client.Filters).Add("label", LabelLab+"="+name)
}

func anyLabFilter() client.Filters {
	return make(client.Filters).Add("label", LabelLab)
}
