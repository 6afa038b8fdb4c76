//go:build integration

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/app/vote/loadgen"
	"github.com/swarmlab/swarmlab/lab"
	"github.com/swarmlab/swarmlab/lab/labtest"
	"github.com/swarmlab/swarmlab/lab/topology"
	"github.com/swarmlab/swarmlab/lab/wait"
)

// TestVote6Stack brings up topologies/vote-6.yaml — which deploys the vote
// stack by itself — and sends 20,000 votes through the edge. Every
// acknowledged vote must be counted exactly once.
func TestVote6Stack(t *testing.T) {
	topo, _, err := topology.LoadFile("../../../topologies/vote-6.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	l := labtest.Up(t, topo, "it-vote")
	urls := endpoints(t, l)
	t.Logf("vote %s, results %s", urls["vote"], urls["results"])

	t.Run("20,000 votes through the edge are counted exactly once", func(t *testing.T) {
		rep, err := loadgen.Run(ctx, loadgen.Config{
			URLs: []string{urls["vote"]}, ResultsURL: urls["results"],
			Votes: 20000, Voters: 12000, Switch: 0.5, Concurrency: 64, Timeout: 2 * time.Minute,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("accepted %d/%d at %.0f votes/s, p50 %.1f ms, p99 %.1f ms, counted %.2fs after the last reply; %d voters checked through the edge's /api/voter, lost %d, unexpected %d",
			rep.Accepted, rep.Sent, rep.VotesPerSec, rep.P50ms, rep.P99ms, rep.CountedAfter, rep.Checked, rep.Lost.Count, rep.Unexpected.Count)
		if err := rep.Verdict(); err != nil {
			t.Error(err)
		}
		if rep.Accepted != rep.Sent {
			t.Errorf("%d of %d votes were not accepted with no fault injected: %v", rep.Sent-rep.Accepted, rep.Sent, rep.Errors)
		}
	})

	t.Run("the edge routes /api/voter to results, which needs the voter_id cookie", func(t *testing.T) {
		c := &http.Client{Timeout: 5 * time.Second}
		voter := strings.TrimSuffix(urls["results"], "/") + "/api/voter"
		if body := get(t, c, voter, 400); !strings.Contains(body, "voter_id") {
			t.Errorf("GET %s without a cookie: %q, want an error naming voter_id", voter, body)
		}
		req, _ := http.NewRequest(http.MethodGet, voter, nil)
		req.AddCookie(&http.Cookie{Name: "voter_id", Value: "never-voted"})
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := strings.TrimSpace(string(b)); resp.StatusCode != 200 || got != `{"voter_id":"never-voted","vote":null}` {
			t.Errorf("GET %s for a voter who never voted: HTTP %d %s", voter, resp.StatusCode, got)
		}
	})

	t.Run("the edge answers /edge/ping itself, and loadgen measures its ceiling", func(t *testing.T) {
		ping := strings.TrimSuffix(urls["vote"], "/") + "/edge/ping"
		if body := get(t, &http.Client{Timeout: 5 * time.Second}, ping, 200); body != "edge\n" {
			t.Errorf("GET %s: %q, want the edge's own answer", ping, body)
		}
		rep, err := loadgen.Ceiling(ctx, ping, 16, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("edge ceiling: %.0f GETs/s over 16 connections, p50 %.2f ms, p99 %.2f ms", rep.PerSec, rep.P50ms, rep.P99ms)
		if rep.OK == 0 || rep.Failed != 0 {
			t.Errorf("ceiling run: %d ok, %d failed: %v", rep.OK, rep.Failed, rep.Errors)
		}
	})

	t.Run("the edge serves HTTPS with the certificate the lab generated", func(t *testing.T) {
		bundle, err := os.ReadFile(l.Secrets().Path("edge_pem"))
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(bundle)
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AddCert(cert)
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		body := get(t, c, urls["vote-tls"], 200)
		if !strings.Contains(body, "Cats") || !strings.Contains(body, "frontend0") {
			t.Errorf("vote page over HTTPS lacks the options or the frontend's name: %.200q", body)
		}
	})

	t.Run("the stats page needs the generated password", func(t *testing.T) {
		stats := strings.Fields(urls["stats"])[0]
		c := &http.Client{Timeout: 5 * time.Second}
		get(t, c, stats, 401)
		pw, err := os.ReadFile(l.Secrets().Path("stats_password"))
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodGet, stats, nil)
		req.SetBasicAuth("admin", strings.TrimSpace(string(pw)))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("stats with the password: HTTP %d, want 200", resp.StatusCode)
		}
	})

	t.Run("the Postgres password is a secret, in no service's environment", func(t *testing.T) {
		pw, err := os.ReadFile(l.Secrets().Path("postgres_password"))
		if err != nil {
			t.Fatal(err)
		}
		mgr, _, err := l.Manager(ctx)
		if err != nil {
			t.Fatal(err)
		}
		svcs, err := mgr.ServiceList(ctx, client.ServiceListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range svcs.Items {
			for _, e := range s.Spec.TaskTemplate.ContainerSpec.Env {
				if strings.Contains(e, strings.TrimSpace(string(pw))) {
					t.Errorf("service %s has the password in its environment", s.Spec.Name)
				}
			}
		}
	})
}

// endpoints names the stack's URLs (vote, vote-tls, results, stats).
func endpoints(t *testing.T, l *lab.Lab) map[string]string {
	t.Helper()
	eps, err := l.Endpoints(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	urls := map[string]string{}
	for _, e := range eps {
		urls[e.Name] = e.URL
	}
	for _, want := range []string{"vote", "vote-tls", "results", "stats"} {
		if urls[want] == "" {
			t.Fatalf("no %s URL among the published endpoints %+v", want, eps)
		}
	}
	return urls
}

// get waits until url answers with the wanted status and returns the body.
func get(t *testing.T, c *http.Client, url string, want int) string {
	t.Helper()
	var body string
	_, err := wait.For(context.Background(), fmt.Sprintf("HTTP %d from %s", want, url), time.Minute, 250*time.Millisecond,
		func(ctx context.Context) wait.Result {
			resp, err := c.Get(url)
			if err != nil {
				return wait.Continue("%v", err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != want {
				return wait.Continue("HTTP %d: %.100s", resp.StatusCode, b)
			}
			body = string(b)
			return wait.Done(resp.Status)
		})
	if err != nil {
		t.Error(err)
	}
	return body
}
