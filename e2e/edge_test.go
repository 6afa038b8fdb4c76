//go:build e2e

package e2e

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/client"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/swarmlab/swarmlab/lab/probe"
	"github.com/swarmlab/swarmlab/lab/wait"
)

// The edge is the app's entry point: HAProxy (service e2e_edge) published in
// host mode on the manager that runs it, balancing over echo's tasks found
// through Docker's DNS.

// refreshEdge finds the node running the edge and points edgeURL at it.
func (s *system) refreshEdge(ctx context.Context) {
	GinkgoHelper()
	var node string
	waitFor(ctx, "the edge to run", convergeTimeout, s.tasksCheck(edgeService, func(tasks []placedTask) wait.Result {
		for _, t := range tasks {
			if t.running() {
				node = t.Node
				return wait.Done("on " + node)
			}
		}
		return wait.Continue("%s", describeTasks(tasks))
	}))
	s.edgeURL = "http://" + s.published(node, edgePort) + "/"
	s.statsURL = "http://" + s.published(node, edgeStats) + "/stats;csv"
}

// edgeNode is the node whose address edgeURL names.
func (s *system) edgeNode() string {
	for _, n := range s.lab.Cluster().Nodes() {
		if addr, err := s.lab.Cluster().PublishedAddr(n.Name(), edgePort); err == nil && strings.Contains(s.edgeURL, "//"+addr+"/") {
			return n.Name()
		}
	}
	return ""
}

// Steady traffic: trafficClients clients, each sending a request every
// 20ms after the last answer (about 80 requests/s here).
const trafficClients = 2

// maxFailedInFlight bounds the requests that may fail when something dies
// without warning (a killed replica or node): those in flight to it at that
// moment, one per client, had HAProxy been unable to replay them. Everything
// else must succeed.
const maxFailedInFlight = trafficClients

// startTraffic sends steady requests through the edge until the spec ends.
func (s *system) startTraffic() *probe.Traffic {
	By("sending steady traffic through the edge at " + s.edgeURL)
	t := probe.Start(s.edgeURL, probe.Options{Clients: trafficClients, Interval: 20 * time.Millisecond, Timeout: requestTimeout})
	DeferCleanup(func() { t.Stop() })
	return t
}

// edgeServesAll holds when the edge answers, without failure, from exactly
// the running tasks of echo: every one of them and nothing else.
func (s *system) edgeServesAll() wait.Check {
	return s.viaManager(func(ctx context.Context, mgr client.APIClient) wait.Result {
		tasks, err := liveTasks(ctx, mgr, echoService)
		if err != nil {
			return wait.Continue("task list: %v", err)
		}
		want := map[string]bool{}
		for _, t := range tasks {
			if t.running() {
				want[t.ID] = true
			}
		}
		// Round robin over n servers: 3n+2 requests reach each one 3 times.
		sum := probe.Sequence(ctx, s.edgeURL, 3*len(want)+2, requestTimeout)
		got := map[string]bool{}
		for task := range sum.Tasks {
			got[taskID(task)] = true
		}
		missing, extra := setDiff(want, got), setDiff(got, want)
		if sum.Failed == 0 && len(missing) == 0 && len(extra) == 0 {
			return wait.Done(fmt.Sprintf("%d tasks answer", len(want)))
		}
		return wait.Continue("%s; tasks not answering: %v; answers from tasks not running: %v", sum, missing, extra)
	})
}

// taskID takes the task ID out of a task name "e2e_echo.2.<id>".
func taskID(name string) string {
	return name[strings.LastIndexByte(name, '.')+1:]
}

func setDiff(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, shortID(k))
		}
	}
	sort.Strings(out)
	return out
}

// edgeStatsNow is HAProxy's view of the echo backend.
type edgeStatsNow struct {
	Servers []edgeServer
	// Retries and Redispatches are HAProxy's counters for the backend:
	// requests it replayed so that the client never saw a failure.
	Retries, Redispatches int
}

type edgeServer struct {
	Name, Addr, Status string
}

// up lists the IP addresses of the servers in rotation.
func (e edgeStatsNow) up() []string {
	var out []string
	for _, sv := range e.Servers {
		if strings.HasPrefix(sv.Status, "UP") {
			ip, _, _ := strings.Cut(sv.Addr, ":")
			out = append(out, ip)
		}
	}
	sort.Strings(out)
	return out
}

// edgeStatsRead reads HAProxy's stats CSV.
func (s *system) edgeStatsRead(ctx context.Context) (edgeStatsNow, error) {
	var st edgeStatsNow
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.statsURL, nil)
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return st, err
	}
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("HAProxy stats at %s: HTTP %d", s.statsURL, resp.StatusCode)
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(string(body), "# ")))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) < 2 {
		return st, fmt.Errorf("HAProxy stats at %s: unreadable CSV (%v)", s.statsURL, err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	get := func(row []string, name string) string {
		if i, ok := col[name]; ok && i < len(row) {
			return row[i]
		}
		return ""
	}
	for _, row := range rows[1:] {
		if get(row, "pxname") != edgeBackend {
			continue
		}
		switch sv := get(row, "svname"); sv {
		case "BACKEND":
			st.Retries, _ = strconv.Atoi(get(row, "wretr"))
			st.Redispatches, _ = strconv.Atoi(get(row, "wredis"))
		case "FRONTEND":
		default:
			st.Servers = append(st.Servers, edgeServer{Name: sv, Addr: get(row, "addr"), Status: get(row, "status")})
		}
	}
	return st, nil
}

// edgeCounters reads HAProxy's retry counters, so a spec can say how many
// requests the edge replayed for it; false when the stats cannot be read.
func (s *system) edgeCounters(ctx context.Context) (edgeStatsNow, bool) {
	st, err := s.edgeStatsRead(ctx)
	if err != nil {
		GinkgoWriter.Printf("  HAProxy stats unreadable: %v\n", err)
	}
	return st, err == nil
}

// expectNoFailures fails the spec unless the edge answered every request.
func expectNoFailures(sum probe.Summary, during string) {
	GinkgoHelper()
	Expect(sum.Requests).To(BeNumerically(">", 0), "no request was made %s", during)
	Expect(sum.Failed).To(BeZero(), "requests failed %s: %s", during, sum)
}

// expectFailedAtMost fails the spec if more than n requests failed, or if
// none succeeded: the promise of an unplanned fault (maxFailedInFlight).
func expectFailedAtMost(sum probe.Summary, n int, during string) {
	GinkgoHelper()
	Expect(sum.Requests-sum.Failed).To(BeNumerically(">", 0), "no request succeeded through the edge %s: %s", during, sum)
	Expect(sum.Failed).To(BeNumerically("<=", n), "more than %d requests failed through the edge %s: %s", n, during, sum)
}

// expectNoFailuresSince takes the traffic from from until now (waiting for
// the requests in flight), notes it, and fails the spec unless every
// request succeeded: what a spec promises once a fault is over.
//
// A window of a few requests proves nothing (a spec that ends right after
// its recovery mark would pass on them): the traffic goes on until the
// window holds at least minRequestsAfter, about half a second of the
// suite's steady traffic, and a window that cannot get them fails.
func expectNoFailuresSince(ctx context.Context, traffic *probe.Traffic, from time.Time, during string) probe.Summary {
	GinkgoHelper()
	waitFor(ctx, fmt.Sprintf("%d requests through the edge %s", minRequestsAfter, during), edgeTimeout, func(context.Context) wait.Result {
		if s := traffic.Since(from); s.Requests < minRequestsAfter {
			return wait.Continue("%s", s)
		}
		return wait.Done("enough")
	})
	sum := traffic.SettledSince(from)
	record().note("%s: %s", during, sum)
	Expect(sum.Requests).To(BeNumerically(">=", minRequestsAfter), "too few requests %s to prove it (want at least %d): %s", during, minRequestsAfter, sum)
	expectNoFailures(sum, during)
	return sum
}

// minRequestsAfter is the least traffic a "0 failed since" window must hold.
const minRequestsAfter = 50
