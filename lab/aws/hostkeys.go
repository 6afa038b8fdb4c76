package aws

import (
	"encoding/json"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// hostKeyLines turns a node's <ID>HostKeys output into known_hosts lines for
// addr. The output is the Data attribute of the node's wait condition: a
// JSON object from the signal's UniqueId (the node name) to its Data, which
// the boot script sets to the host's public keys, comma-separated. The keys
// reach the caller through CloudFormation over TLS, so the first SSH
// connection already verifies the host.
func hostKeyLines(node, output, addr string) ([]string, error) {
	var byID map[string]string
	if err := json.Unmarshal([]byte(output), &byID); err != nil {
		return nil, fmt.Errorf("node %s: host keys output %q is not the JSON a wait condition returns: %v", node, output, err)
	}
	data, ok := byID[node]
	if !ok {
		return nil, fmt.Errorf("node %s: host keys output %q has no entry for the node", node, output)
	}
	var lines []string
	for _, k := range strings.Split(data, ",") {
		if k = strings.TrimSpace(k); k == "" {
			continue
		}
		key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k))
		if err != nil {
			return nil, fmt.Errorf("node %s: host key %q: %v", node, k, err)
		}
		lines = append(lines, knownhosts.Line([]string{addr}, key))
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("node %s sent no SSH host keys (its boot script reads /etc/ssh/ssh_host_*_key.pub)", node)
	}
	return lines, nil
}
