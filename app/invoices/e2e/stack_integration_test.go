//go:build integration

//swarmlab:labs (these tests bring up labs: scripts/test runs them apart from other labs)

// Package e2e brings the invoices app up on a real three-node lab and uses
// it through its gateway, as a workshop attendee would.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab/labtest"
	"github.com/swarmlab/swarmlab/lab/topology"
	"github.com/swarmlab/swarmlab/lab/wait"
)

const labName = "inv-e2e"

// TestInvoicesStackOnSwarm3 brings up swarm-3 with the invoices stack and,
// through the gateway: finds the catalogue, creates a customer and an
// invoice, sees two customers replicas answer, and upgrades customers to v2
// by the :latest name the exercises use.
func TestInvoicesStackOnSwarm3(t *testing.T) {
	topo, _, err := topology.LoadFile("testdata/swarm-3-invoices.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	start := time.Now()
	l := labtest.Up(t, topo, labName)
	eps, err := l.Endpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	app := ""
	for _, e := range eps {
		if e.Name == "app" {
			app = strings.TrimRight(e.URL, "/")
		}
	}
	if app == "" {
		t.Fatalf("no app URL among the published endpoints %+v", eps)
	}
	c := &http.Client{Timeout: 5 * time.Second}

	var products []struct{ ID, Name string }
	untilJSON(t, c, "GET", app+"/Products", nil, 200, &products, func() string {
		if len(products) != 6 {
			return fmt.Sprintf("%d products", len(products))
		}
		return ""
	})
	t.Logf("lab up in %s; the app answered through the gateway %s after start (catalogue %v)", l.BringUp().Total, time.Since(start).Round(100*time.Millisecond), products)

	t.Run("the gateway serves the web app at /", func(t *testing.T) {
		resp, err := c.Get(app + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), "Customers and invoices") {
			t.Errorf("GET /: HTTP %d %.200q, want the web app's page", resp.StatusCode, b)
		}
	})

	var customerID string
	t.Run("a customer and an invoice created through the gateway can be read back", func(t *testing.T) {
		untilJSON(t, c, "PUT", app+"/Customers", map[string]string{"name": "Ada", "address": "1 Loop St"}, 200, &customerID, nil)
		var cust map[string]string
		untilJSON(t, c, "GET", app+"/Customers/"+customerID, nil, 200, &cust, nil)
		if cust["name"] != "Ada" || cust["version"] != "v1" {
			t.Errorf("customer %v, want Ada served by v1", cust)
		}
		var invoiceID string
		untilJSON(t, c, "PUT", app+"/Invoices", map[string]any{"customerId": customerID, "productId": products[0].ID, "quantity": 3}, 200, &invoiceID, nil)
		var invs []map[string]any
		untilJSON(t, c, "GET", app+"/Invoices?customer-id="+customerID, nil, 200, &invs, nil)
		if len(invs) != 1 || invs[0]["id"] != invoiceID || invs[0]["quantity"] != 3.0 || invs[0]["productId"] != products[0].ID {
			t.Errorf("invoices of the customer %v, want the one just made (%s)", invs, invoiceID)
		}
		var bad map[string]any
		untilJSON(t, c, "PUT", app+"/Invoices", map[string]any{"customerId": "nobody", "productId": products[0].ID, "quantity": 1}, 400, &bad, nil)
		if bad["field"] != "customerId" {
			t.Errorf("invoice for a missing customer: %v, want a 400 naming customerId", bad)
		}
	})

	t.Run("requests are balanced over both customers replicas", func(t *testing.T) {
		seen := map[string]int{}
		_, err := wait.For(ctx, "answers from 2 customers replicas through the gateway", time.Minute, 100*time.Millisecond,
			func(ctx context.Context) wait.Result {
				resp, err := c.Get(app + "/Customers")
				if err != nil {
					return wait.Continue("%v", err)
				}
				resp.Body.Close()
				seen[resp.Header.Get("X-Served-By")]++
				if len(seen) >= 2 {
					return wait.Done(fmt.Sprintf("served by %v", seen))
				}
				return wait.Continue("served by %v", seen)
			})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("X-Served-By: %v", seen)
	})

	t.Run("customers upgrades to v2 by its :latest name, keeping its data", func(t *testing.T) {
		mgr, _, err := l.Manager(ctx)
		if err != nil {
			t.Fatal(err)
		}
		svc, err := mgr.ServiceInspect(ctx, "invoices_customers", client.ServiceInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		spec := svc.Service.Spec
		spec.TaskTemplate.ContainerSpec.Image = l.Cluster().Registry().Pull + "/swarmlab/customers-v2:latest"
		if _, err := mgr.ServiceUpdate(ctx, svc.Service.ID, client.ServiceUpdateOptions{Version: svc.Service.Version, Spec: spec}); err != nil {
			t.Fatal(err)
		}
		streak := 0
		_, err = wait.For(ctx, "10 answers in a row from customers v2", 3*time.Minute, 200*time.Millisecond,
			func(ctx context.Context) wait.Result {
				resp, err := c.Get(app + "/Customers/" + customerID)
				if err != nil {
					streak = 0
					return wait.Continue("%v", err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				v := resp.Header.Get("X-Version")
				if resp.StatusCode != 200 || v != "v2" || !strings.Contains(string(b), `"version":"v2"`) {
					streak = 0
					return wait.Continue("HTTP %d %s from %s: %.100s", resp.StatusCode, v, resp.Header.Get("X-Served-By"), b)
				}
				if streak++; streak < 10 {
					return wait.Continue("%d in a row from v2", streak)
				}
				return wait.Done("customer " + customerID + " served by v2")
			})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// untilJSON repeats a request until it answers the wanted status (the
// services may still be starting), decodes the body into out, and, given
// ready, goes on until ready returns "".
func untilJSON(t *testing.T, c *http.Client, method, url string, body any, want int, out any, ready func() string) {
	t.Helper()
	_, err := wait.For(context.Background(), fmt.Sprintf("HTTP %d from %s %s", want, method, url), 2*time.Minute, 250*time.Millisecond,
		func(ctx context.Context) wait.Result {
			var rd io.Reader
			if body != nil {
				b, _ := json.Marshal(body)
				rd = bytes.NewReader(b)
			}
			req, _ := http.NewRequestWithContext(ctx, method, url, rd)
			resp, err := c.Do(req)
			if err != nil {
				return wait.Continue("%v", err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != want {
				return wait.Continue("HTTP %d: %.200s", resp.StatusCode, b)
			}
			if err := json.Unmarshal(b, out); err != nil {
				return wait.Fail(fmt.Errorf("%s %s: %v in %.200q", method, url, err, b))
			}
			if ready != nil {
				if msg := ready(); msg != "" {
					return wait.Continue("%s", msg)
				}
			}
			return wait.Done(resp.Status)
		})
	if err != nil {
		t.Fatal(err)
	}
}
