//go:build integration

//swarmlab:labs (these tests bring up labs: scripts/test runs them apart from other labs)

// Package e2e drives the visualizer in a real browser against a real lab.
package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/swarmlab/swarmlab/lab"
	"github.com/swarmlab/swarmlab/lab/labtest"
	"github.com/swarmlab/swarmlab/lab/provider"
	"github.com/swarmlab/swarmlab/lab/topology"
	"github.com/swarmlab/swarmlab/lab/wait"
)

const (
	labName  = "viz-it"
	chromium = "/usr/bin/chromium"
	// spread is the test's service: 6 replicas, 2 per node.
	spread   = "spread_web"
	replicas = 6
	// Timeouts for what the page must show. A node is marked down ~2.5 s
	// after it dies (dispatcher heartbeat 1s) and its tasks run elsewhere
	// ~8 s after; the page re-reads every 0.5 s after an event. The margins
	// are for a shared 2-core machine.
	pageTimeout       = 2 * time.Minute
	nodeDownTimeout   = time.Minute
	rescheduleTimeout = 2 * time.Minute
)

// column is a node column as the page shows it (read from the DOM).
type column struct {
	Host  string   `json:"host"`
	State string   `json:"state"`
	Role  string   `json:"role"`
	Text  string   `json:"text"`
	Cards []string `json:"cards"` // service:state of each task card
}

// page is what the test reads from the open page.
type page struct {
	Columns []column `json:"columns"`
	Status  string   `json:"status"`
	Updates int      `json:"updates"`
	Marker  string   `json:"marker"`
}

const readPage = `(() => ({
  columns: Array.from(document.querySelectorAll("#nodes .node")).map(n => ({
    host: n.dataset.hostname, state: n.dataset.state, role: n.dataset.role,
    text: n.querySelector("h2").innerText + " " + n.querySelector(".meta").innerText,
    cards: Array.from(n.querySelectorAll(".task")).map(c => c.dataset.service + ":" + c.dataset.state),
  })),
  status: document.getElementById("status").innerText,
  updates: window.vizUpdates || 0,
  marker: window.vizTestMarker || "",
}))()`

func (p page) column(host string) (column, bool) {
	for _, c := range p.Columns {
		if c.Host == host {
			return c, true
		}
	}
	return column{}, false
}

// running counts host's cards of service in state running.
func (c column) running(service string) int {
	n := 0
	for _, card := range c.Cards {
		if card == service+":running" {
			n++
		}
	}
	return n
}

func (p page) String() string {
	var parts []string
	for _, c := range p.Columns {
		parts = append(parts, fmt.Sprintf("%s[%s %s: %d %s running, %d cards]", c.Host, c.Role, c.State, c.running(spread), spread, len(c.Cards)))
	}
	return fmt.Sprintf("%d columns %s; status %q; %d updates", len(p.Columns), strings.Join(parts, " "), p.Status, p.Updates)
}

// TestVisualizerFollowsANodeLoss brings up swarm-3 with the viz stack and a
// 6-replica service, opens the visualizer in headless Chromium, kills w2 and
// watches the same open page mark w2 down and show its tasks on m1 and w1.
func TestVisualizerFollowsANodeLoss(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("%s: %v (scripts/bootstrap installs Debian's chromium)", chromium, err)
	}
	ctx := context.Background()
	l := upLab(t)
	url := visualizerURL(t, l)
	t.Logf("visualizer at %s", url)
	httpOK(t, url+"healthz")

	t.Run("the deployed service answers only its own routes", func(t *testing.T) {
		for _, c := range []struct {
			method, path string
			want         int
		}{
			{"GET", "api/state", 200},
			{"GET", "containers/json", 404},
			{"GET", "v1.41/containers/json", 404},
			{"GET", "v1.41/secrets", 404},
			{"POST", "api/state", 405},
		} {
			code, body := request(t, c.method, url+c.path)
			if code != c.want {
				t.Errorf("%s /%s: HTTP %d, want %d", c.method, c.path, code, c.want)
			}
			if c.path == "api/state" && c.want == 200 {
				for _, leak := range []string{`"Env"`, `"Secrets"`, `"Configs"`, `"Mounts"`, "docker.sock"} {
					if strings.Contains(body, leak) {
						t.Errorf("/api/state contains %s", leak)
					}
				}
			}
		}
	})

	browser := openBrowser(t)
	if err := chromedp.Do(browser, chromedp.EmulateViewport(1400, 900), chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s in chromium: %v", url, err)
	}

	// 1. Three node columns, each with its share of the service's tasks.
	t0 := time.Now()
	before := waitPage(t, browser, "3 node columns, all ready, with the 6 tasks of "+spread+" running 2 per node", pageTimeout, func(p page) bool {
		if len(p.Columns) != 3 {
			return false
		}
		total := 0
		for _, c := range p.Columns {
			if c.State != "ready" || c.running(spread) != 2 {
				return false
			}
			total += c.running(spread)
		}
		return total == replicas && strings.Contains(p.Status, "live via events")
	})
	t.Logf("page before the kill (after %v): %s", time.Since(t0).Round(100*time.Millisecond), before)
	for _, c := range before.Columns {
		if !strings.Contains(c.Text, c.Host) || !strings.Contains(c.Text, c.State) || !strings.Contains(c.Text, c.Role) {
			t.Errorf("column %s shows %q: want its hostname, role and state", c.Host, c.Text)
		}
	}
	if m1, _ := before.column("m1"); !strings.Contains(m1.Text, "leader") || m1.running("viz_viz") != 1 {
		t.Errorf("m1 column %+v: want it marked leader and running the viz task", m1)
	}
	shot(t, browser, "before.png")

	// Mark the page: a reload would lose the marker.
	marker := nonce()
	if _, err := chromedp.Run(browser, chromedp.Evaluate[string](fmt.Sprintf("window.vizTestMarker = %q", marker))); err != nil {
		t.Fatal(err)
	}

	// 2. Kill w2; the same page shows it down, then its tasks elsewhere.
	killed := time.Now()
	if err := l.Do(ctx, "w2", provider.Kill); err != nil {
		t.Fatalf("kill w2: %v", err)
	}
	down := waitPage(t, browser, "w2's column marked down", nodeDownTimeout, func(p page) bool {
		c, ok := p.column("w2")
		return ok && c.State == "down"
	})
	tDown := time.Since(killed)
	t.Logf("w2 down on the page %v after the kill: %s", tDown.Round(100*time.Millisecond), down)

	after := waitPage(t, browser, "the 6 tasks of "+spread+" running on m1 and w1, none left on w2", rescheduleTimeout, func(p page) bool {
		m1, _ := p.column("m1")
		w1, _ := p.column("w1")
		w2, _ := p.column("w2")
		return w2.State == "down" && len(w2.Cards) == 0 && m1.running(spread)+w1.running(spread) == replicas
	})
	tMoved := time.Since(killed)
	t.Logf("w2's tasks on the other nodes on the page %v after the kill: %s", tMoved.Round(100*time.Millisecond), after)
	shot(t, browser, "after.png")

	if after.Marker != marker {
		t.Errorf("the page was reloaded (marker %q, want %q): the update must arrive live", after.Marker, marker)
	}
	if after.Updates <= before.Updates {
		t.Errorf("page received %d updates before and %d after: want pushed updates", before.Updates, after.Updates)
	}
	if !strings.Contains(after.Status, "3 nodes") {
		t.Errorf("status line %q: want it to still count 3 nodes", after.Status)
	}
}

// upLab brings up topologies/swarm-3.yaml with only the viz stack and the
// test's spread stack, torn down when the test ends.
func upLab(t *testing.T) *lab.Lab {
	t.Helper()
	topo, _, err := topology.LoadFile("../../../topologies/swarm-3.yaml")
	if err != nil {
		t.Fatal(err)
	}
	vizStack, _ := filepath.Abs("../stack.yml")
	spreadStack, _ := filepath.Abs("testdata/spread/stack.yml")
	topo.Stacks = []topology.Stack{{Name: "viz", File: vizStack}, {Name: "spread", File: spreadStack}}
	if _, err := topo.Validate(); err != nil {
		t.Fatal(err)
	}
	return labtest.Up(t, topo, labName)
}

func visualizerURL(t *testing.T, l *lab.Lab) string {
	t.Helper()
	eps, err := l.Endpoints(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range eps {
		if e.Name == "visualizer" {
			return e.URL
		}
	}
	t.Fatalf("no visualizer URL among the published endpoints %+v", eps)
	return ""
}

// openBrowser starts headless Chromium with a fresh profile, closed when the
// test ends.
func openBrowser(t *testing.T) context.Context {
	t.Helper()
	// Chromium logs much that is harmless here (no D-Bus in a container):
	// its output goes to a file next to the screenshots.
	logPath := filepath.Join(artifactDir(t), "chromium.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logFile.Close() })
	t.Logf("chromium output: %s", logPath)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.CombinedOutput(logFile),
	)
	browser, cancel := chromedp.NewContext(alloc, chromedp.WithErrorf(t.Logf))
	if err := chromedp.Do(browser); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("start %s: %v", chromium, err)
	}
	t.Cleanup(func() { cancel(); cancelAlloc() })
	return browser
}

// waitPage reads the open page until ok holds; on timeout it fails with what
// the page last showed.
func waitPage(t *testing.T, browser context.Context, what string, timeout time.Duration, ok func(page) bool) page {
	t.Helper()
	var last page
	_, err := wait.For(context.Background(), "the visualizer page to show "+what, timeout, 250*time.Millisecond,
		func(ctx context.Context) wait.Result {
			rctx, cancel := context.WithTimeout(browser, 5*time.Second)
			defer cancel()
			p, err := chromedp.Run(rctx, chromedp.Evaluate[page](readPage))
			if err != nil {
				return wait.Continue("reading the page: %v", err)
			}
			last = p
			if ok(p) {
				return wait.Done(p.String())
			}
			return wait.Continue("%s", p)
		})
	if err != nil {
		shot(t, browser, "failed-"+strings.NewReplacer(" ", "-", "'", "").Replace(what[:min(len(what), 40)])+".png")
		t.Fatal(err)
	}
	return last
}

// shot saves a screenshot of the page under .cache/test/artifacts/viz/.
func shot(t *testing.T, browser context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(browser, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(artifactDir(t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// artifactDir is .cache/test/artifacts/viz under the repository root.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(repoRoot(t), ".cache", "test", "artifacts", "viz")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func repoRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			t.Fatalf("no go.mod above %s", dir)
		}
	}
}

// httpOK waits until url answers 200.
func httpOK(t *testing.T, url string) {
	t.Helper()
	if _, err := wait.For(context.Background(), "HTTP 200 from "+url, pageTimeout, 250*time.Millisecond, wait.HTTPOK(url)); err != nil {
		t.Fatal(err)
	}
}

// request sends one request and returns the status and body.
func request(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func nonce() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
