//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab/wait"
)

// The swarm's data plane heals after its control plane. A node cut off and
// healed is Ready as soon as its agent reaches a manager again (under a
// second), but the overlay networks' gossip (memberlist, port 7946) had
// declared it dead and takes it back only on its own retry, seconds later.
// Until then a task placed on it is unreachable from the other nodes and
// missing from their DNS: an update that moves tasks there at once leaves
// the edge with fewer tasks than it had, and on a Docker 26 engine in a
// container with none for seconds (seen: 687 of 1,358 requests answered
// 503). A node is healed when both planes have taken it back.

// gossipPeersNetwork is the overlay every swarm node is attached to, with or
// without tasks of its own: its peer list is the node's view of the gossip.
const gossipPeersNetwork = "ingress"

// gossipWhole holds when every Ready node lists every other Ready node as a
// peer of the ingress network, each asked on its own engine. It says which
// node lacks which peer.
func (s *system) gossipWhole() wait.Check {
	return s.viaManager(func(ctx context.Context, mgr client.APIClient) wait.Result {
		nodes, err := mgr.NodeList(ctx, client.NodeListOptions{})
		if err != nil {
			return wait.Continue("node list: %v", err)
		}
		addrs := map[string]string{} // hostname → swarm address
		for _, n := range nodes.Items {
			if n.Status.State == swarm.NodeStateReady {
				addrs[n.Description.Hostname] = n.Status.Addr
			}
		}
		var lacks []string
		for host := range addrs {
			peers, err := s.gossipPeers(ctx, host)
			if err != nil {
				lacks = append(lacks, fmt.Sprintf("%s: %v", host, err))
				continue
			}
			for other, a := range addrs {
				if other != host && !peers[a] {
					lacks = append(lacks, fmt.Sprintf("%s lacks %s (%s)", host, other, a))
				}
			}
		}
		if len(lacks) > 0 {
			sort.Strings(lacks)
			return wait.Continue("%s", strings.Join(lacks, "; "))
		}
		return wait.Done(fmt.Sprintf("each of the %d Ready nodes lists the others as %s peers", len(addrs), gossipPeersNetwork))
	})
}

// gossipGaveUp holds when node, cut off, lists none of the other nodes as
// a peer of the ingress network any more: its memberlist has declared every
// one of them dead. It asks node's own engine (the partition cuts only the
// swarm's ports).
//
// Why a partition is held until then: each "dead" verdict of the cut-off
// node is a broadcast it sends at once. Sent into the partition, it is
// lost; sent just after the heal, it reaches the others, and the peers
// accept it about each other: a healthy node is dropped by the rest, its
// tasks go from their DNS and data path, and it takes half a minute to be
// taken back. Seen on the remote engine: w2 marked w1 dead 0.1 s before the
// heal and m1 2 s after it (a suspicion timer started while cut off); m1
// then dropped w1, and w1 dropped m1, while every task of echo ran on w1:
// 1,119 of 2,868 requests through the edge answered 503. A partition that
// the cut-off node has fully given up on no longer has verdicts pending.
func (s *system) gossipGaveUp(node string) wait.Check {
	return s.viaManager(func(ctx context.Context, mgr client.APIClient) wait.Result {
		nodes, err := mgr.NodeList(ctx, client.NodeListOptions{})
		if err != nil {
			return wait.Continue("node list: %v", err)
		}
		peers, err := s.gossipPeers(ctx, node)
		if err != nil {
			return wait.Continue("%s: %v", node, err)
		}
		var still []string
		for _, n := range nodes.Items {
			if n.Description.Hostname != node && peers[n.Status.Addr] {
				still = append(still, fmt.Sprintf("%s (%s)", n.Description.Hostname, n.Status.Addr))
			}
		}
		if len(still) > 0 {
			sort.Strings(still)
			return wait.Continue("%s still lists %s", node, strings.Join(still, ", "))
		}
		return wait.Done(node + " lists no other node as a peer")
	})
}

// givesUpWhenCutOff tells whether a node running Docker version v, cut off
// by the lab's partition (its sends to the peers refused locally), suspects
// and then declares them dead. Docker 26's gossip does (5.5-10.4 s after
// the cut, measured); 20.10's does not: its memberlist (v0.2) drops a probe
// whose UDP send fails without suspecting anyone (seen: 25 s of "Failed to
// send ping ... operation not permitted" and nothing else), so the cut-off
// node keeps listing its peers and has no verdicts to send. Engines between
// the two are taken to behave like 26; an unknown version, too.
func givesUpWhenCutOff(v string) bool {
	major, _, _ := strings.Cut(v, ".")
	n, err := strconv.Atoi(major)
	return err != nil || n > 20
}

// gossipDrain is how long a dead verdict's broadcast takes to be spent:
// memberlist sends each at most 4 times (RetransmitMult 4 × log10 of 3
// nodes, rounded up), to the 2 others in each 200 ms gossip round: 400 ms.
const gossipDrain = time.Second

// gossipPeers is the set of peer addresses node's engine lists for the
// ingress network.
func (s *system) gossipPeers(ctx context.Context, node string) (map[string]bool, error) {
	n, err := s.networkVerbose(ctx, node, gossipPeersNetwork)
	if err != nil {
		return nil, err
	}
	peers := map[string]bool{}
	for _, p := range n.Peers {
		peers[p.IP] = true
	}
	return peers, nil
}

// verboseNetwork is what `docker network inspect -v` says of an overlay's
// gossip, with addresses kept as the engine wrote them: Docker 20.10 lists
// the node itself with the IP "<nil>", which the client's typed decoding
// refuses outright.
type verboseNetwork struct {
	Peers []struct{ Name, IP string }
	// Services: name → the tasks this node knows of, as its DNS and data
	// path know them.
	Services map[string]struct {
		Tasks []struct {
			Name, EndpointIP string
			Info             map[string]string
		}
	}
}

// networkVerbose asks node's engine for network with verbose=true, over the
// engine client's own connection (direct or through the lab's relay).
func (s *system) networkVerbose(ctx context.Context, node, network string) (verboseNetwork, error) {
	var n verboseNetwork
	cli, err := s.lab.Client(node)
	if err != nil {
		return n, err
	}
	hc := engineHTTP(cli)
	path := "/networks/" + url.PathEscape(network) + "?verbose=true"
	if v := cli.ClientVersion(); v != "" {
		path = "/v" + v + path
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://engine"+path, nil)
	if err != nil {
		return n, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return n, fmt.Errorf("inspect %s: %v", network, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return n, fmt.Errorf("inspect %s: %s %s %v", network, resp.Status, strings.TrimSpace(string(body)), err)
	}
	if err := json.Unmarshal(body, &n); err != nil {
		return n, fmt.Errorf("inspect %s: %v", network, err)
	}
	return n, nil
}

// engineHTTPs keeps one HTTP client per engine client (a node started again
// gets a new engine client, and so a new one here) for networkVerbose: the waits
// poll every 100 ms, and a new connection each time costs a docker exec
// through a relayed lab's relay (73 ms, docs/benchmarks.md); kept alive, it
// is dialled once.
var (
	engineHTTPMu sync.Mutex
	engineHTTPs  = map[*client.Client]*http.Client{}
)

// engineHTTP is a kept-alive HTTP client over cli's own dialer.
func engineHTTP(cli *client.Client) *http.Client {
	engineHTTPMu.Lock()
	defer engineHTTPMu.Unlock()
	if hc, ok := engineHTTPs[cli]; ok {
		return hc
	}
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return cli.Dialer()(ctx) },
	}}
	engineHTTPs[cli] = hc
	return hc
}

// overlayView says what node's engine knows of network's service tasks
// (name → endpoint IP @ host) and peers: what the edge's DNS and data path
// can reach from there. For the report.
func (s *system) overlayView(ctx context.Context, node, network string) string {
	n, err := s.networkVerbose(ctx, node, network)
	if err != nil {
		return fmt.Sprintf("%s's view of %s: %v", node, network, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s's view of %s: peers", node, network)
	for _, p := range n.Peers {
		fmt.Fprintf(&b, " %s=%s", p.Name, p.IP)
	}
	for name, svc := range n.Services {
		fmt.Fprintf(&b, "; service %s:", name)
		for _, t := range svc.Tasks {
			fmt.Fprintf(&b, " %s=%s@%s", t.Name, t.EndpointIP, t.Info["Host IP"])
		}
	}
	return b.String()
}
