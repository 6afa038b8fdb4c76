//go:build integration

package invoices_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmlab/swarmlab/app/internal/testenv"
	"github.com/swarmlab/swarmlab/lab/wait"
)

// The services run as real processes built from ./cmd, each against a real
// Redis from the lab's redis image.

func TestMain(m *testing.M) {
	testenv.Sweep()
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// bin builds the programs once per test binary and returns one's path.
func bin(t *testing.T, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "invoices-bin-")
		if buildErr != nil {
			return
		}
		for _, args := range [][]string{
			{"build", "-o", binDir + "/", "./cmd/customers", "./cmd/products", "./cmd/invoices", "./cmd/webapp"},
			{"build", "-ldflags", "-X main.version=v2", "-o", filepath.Join(binDir, "customers-v2"), "./cmd/customers"},
		} {
			if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, name)
}

// proc is one running service process.
type proc struct {
	URL  string
	name string
	cmd  *exec.Cmd
	out  *bytes.Buffer
}

// start runs a service on a free loopback port and waits for its /healthz.
func start(t *testing.T, name string, env ...string) *proc {
	t.Helper()
	p := startNoWait(t, name, env...)
	p.waitHealthy(t)
	return p
}

func startNoWait(t *testing.T, name string, env ...string) *proc {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort())
	p := &proc{URL: "http://" + addr, name: name, out: &bytes.Buffer{}}
	p.cmd = exec.Command(bin(t, name))
	p.cmd.Env = append(os.Environ(), append([]string{"LISTEN_ADDR=" + addr}, env...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.kill)
	return p
}

func (p *proc) waitHealthy(t *testing.T) {
	t.Helper()
	_, err := wait.For(context.Background(), p.name+" healthy on "+p.URL, 30*time.Second, 50*time.Millisecond,
		func(ctx context.Context) wait.Result {
			resp, err := http.Get(p.URL + "/healthz")
			if err != nil {
				return wait.Continue("%v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return wait.Continue("HTTP %d", resp.StatusCode)
			}
			return wait.Done("HTTP 200")
		})
	if err != nil {
		t.Fatalf("%v\n--- %s output ---\n%s", err, p.name, p.out)
	}
}

// kill ends the process abruptly, as a crash or a killed container would.
func (p *proc) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}
}

// call sends a request and decodes the JSON answer into out (if not nil).
func call(t *testing.T, method, url string, body any, out any) (int, http.Header) {
	t.Helper()
	var rd io.Reader
	if s, ok := body.(string); ok {
		rd = strings.NewReader(s)
	} else if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: HTTP %d, body %.200q: %v", method, url, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode, resp.Header
}

type system struct {
	customers, products, invoices       *proc
	customersDB, productsDB, invoicesDB *testenv.Redis
}

func startSystem(t *testing.T) *system {
	s := &system{customersDB: testenv.StartRedis(t), productsDB: testenv.StartRedis(t), invoicesDB: testenv.StartRedis(t)}
	s.customers = start(t, "customers", "REDIS_ADDR="+s.customersDB.Addr)
	s.products = start(t, "products", "REDIS_ADDR="+s.productsDB.Addr)
	s.invoices = start(t, "invoices", "REDIS_ADDR="+s.invoicesDB.Addr, "CUSTOMERS_URL="+s.customers.URL, "PRODUCTS_URL="+s.products.URL)
	return s
}

type product struct{ ID, Name string }

func catalogue(t *testing.T, url string) []product {
	t.Helper()
	var ps []product
	_, err := wait.For(context.Background(), "the catalogue from "+url, 10*time.Second, 50*time.Millisecond,
		func(ctx context.Context) wait.Result {
			ps = nil
			if code, _ := call(t, "GET", url+"/Products", nil, &ps); code != 200 || len(ps) < 6 {
				return wait.Continue("HTTP %d, %d products", code, len(ps))
			}
			return wait.Done("6 products")
		})
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func TestRoutesAndShapesAgainstRealRedis(t *testing.T) {
	s := startSystem(t)
	ps := catalogue(t, s.products.URL)
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
	}
	if want := []string{"Apples", "Oranges", "Bananas", "Melons", "Lemons", "Carrots"}; !slices.Equal(names, want) {
		t.Errorf("catalogue %v, want %v", names, want)
	}

	var cid string
	code, hdr := call(t, "PUT", s.customers.URL+"/Customers", map[string]string{"name": "Ada", "address": "1 Loop St"}, &cid)
	if code != 200 || cid == "" {
		t.Fatalf("PUT /Customers: HTTP %d id %q", code, cid)
	}
	host, _ := os.Hostname()
	if hdr.Get("X-Version") != "v1" || hdr.Get("X-Served-By") != host {
		t.Errorf("headers X-Version %q X-Served-By %q, want v1 and %q", hdr.Get("X-Version"), hdr.Get("X-Served-By"), host)
	}
	var cust map[string]string
	call(t, "GET", s.customers.URL+"/Customers/"+cid, nil, &cust)
	if cust["id"] != cid || cust["name"] != "Ada" || cust["address"] != "1 Loop St" || cust["version"] != "v1" {
		t.Errorf("customer %v", cust)
	}
	var all []map[string]string
	call(t, "GET", s.customers.URL+"/Customers", nil, &all)
	if len(all) != 1 || all[0]["id"] != cid {
		t.Errorf("GET /Customers = %v", all)
	}
	var nf map[string]any
	if code, _ := call(t, "GET", s.customers.URL+"/Customers/nope", nil, &nf); code != 404 || nf["customerId"] != "nope" {
		t.Errorf("missing customer: HTTP %d %v", code, nf)
	}

	var iid string
	if code, _ := call(t, "PUT", s.invoices.URL+"/Invoices", map[string]any{"customerId": cid, "productId": ps[2].ID, "quantity": 4}, &iid); code != 200 {
		t.Fatalf("PUT /Invoices: HTTP %d", code)
	}
	var inv map[string]any
	call(t, "GET", s.invoices.URL+"/Invoices/"+iid, nil, &inv)
	if inv["customerId"] != cid || inv["productId"] != ps[2].ID || inv["quantity"] != 4.0 {
		t.Errorf("invoice %v", inv)
	}
	if at, err := time.Parse(time.RFC3339, fmt.Sprint(inv["issuedAt"])); err != nil || time.Since(at) > time.Minute {
		t.Errorf("issuedAt %v: %v", inv["issuedAt"], err)
	}
	var mine, others []map[string]any
	call(t, "GET", s.invoices.URL+"/Invoices?customer-id="+cid, nil, &mine)
	call(t, "GET", s.invoices.URL+"/Invoices?customer-id=someone-else", nil, &others)
	if len(mine) != 1 || len(others) != 0 {
		t.Errorf("invoices of %s: %v; of someone else: %v", cid, mine, others)
	}

	for _, c := range []struct {
		name  string
		body  any
		code  int
		field string
	}{
		{"unknown customer", map[string]any{"customerId": "nobody", "productId": ps[0].ID, "quantity": 1}, 400, "customerId"},
		{"unknown product", map[string]any{"customerId": cid, "productId": "nothing", "quantity": 1}, 400, "productId"},
		{"quantity 0", map[string]any{"customerId": cid, "productId": ps[0].ID, "quantity": 0}, 400, "quantity"},
		{"no quantity", map[string]any{"customerId": cid, "productId": ps[0].ID}, 400, "quantity"},
		{"oversized body", `{"customerId":"` + strings.Repeat("x", 70<<10) + `"}`, 413, ""},
	} {
		var e map[string]any
		code, _ := call(t, "PUT", s.invoices.URL+"/Invoices", c.body, &e)
		if code != c.code || (c.field != "" && e["field"] != c.field) {
			t.Errorf("%s: HTTP %d %v, want %d naming %q", c.name, code, e, c.code, c.field)
		}
	}
	call(t, "GET", s.invoices.URL+"/Invoices", nil, &mine)
	if len(mine) != 1 {
		t.Errorf("rejected invoices were stored: %v", mine)
	}

	t.Run("customers built with -X main.version=v2 says v2", func(t *testing.T) {
		v2 := start(t, "customers-v2", "REDIS_ADDR="+s.customersDB.Addr)
		var c map[string]string
		_, hdr := call(t, "GET", v2.URL+"/Customers/"+cid, nil, &c)
		if hdr.Get("X-Version") != "v2" || c["version"] != "v2" || c["name"] != "Ada" {
			t.Errorf("v2: header %q body %v", hdr.Get("X-Version"), c)
		}
	})
}

func TestInvoices503WhenADependencyIsDown(t *testing.T) {
	s := startSystem(t)
	ps := catalogue(t, s.products.URL)
	var cid string
	call(t, "PUT", s.customers.URL+"/Customers", map[string]string{"name": "Ada", "address": "here"}, &cid)
	invoice := map[string]any{"customerId": cid, "productId": ps[0].ID, "quantity": 1}
	count := func() int {
		var l []any
		call(t, "GET", s.invoices.URL+"/Invoices", nil, &l)
		return len(l)
	}
	expect := func(what string, want int) {
		t.Helper()
		var body any // the id, or an error object
		code, _ := call(t, "PUT", s.invoices.URL+"/Invoices", invoice, &body)
		if code != want {
			t.Errorf("%s: HTTP %d %v, want %d", what, code, body, want)
		}
	}
	expect("all up", 200)

	s.customers.kill()
	expect("customers process killed", 503)
	if n := count(); n != 1 {
		t.Errorf("%d invoices after an outage, want only the first", n)
	}

	s.customers = start(t, "customers", "REDIS_ADDR="+s.customersDB.Addr)
	s.invoices.kill()
	s.invoices = start(t, "invoices", "REDIS_ADDR="+s.invoicesDB.Addr, "CUSTOMERS_URL="+s.customers.URL, "PRODUCTS_URL="+s.products.URL)
	s.customersDB.Kill()
	expect("customers' Redis killed", 503)
	s.productsDB.Kill()
	expect("products' Redis killed too", 503)
	if n := count(); n != 1 {
		t.Errorf("%d invoices after an outage, want only the first", n)
	}
	if err := s.customersDB.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.productsDB.Start(); err != nil {
		t.Fatal(err)
	}
	expect("both Redis back (the customer survived in the append-only file)", 200)
	if n := count(); n != 2 {
		t.Errorf("%d invoices, want 2", n)
	}
}

func TestCatalogueIsSeededOnce(t *testing.T) {
	db := testenv.StartRedis(t)
	env := "REDIS_ADDR=" + db.Addr
	// Two replicas meet an empty Redis at the same moment.
	a, b := startNoWait(t, "products", env), startNoWait(t, "products", env)
	a.waitHealthy(t)
	b.waitHealthy(t)
	first := catalogue(t, a.URL)
	if got := catalogue(t, b.URL); len(first) != 6 || !slices.Equal(got, first) {
		t.Fatalf("replicas disagree or doubled the catalogue:\n%v\n%v", first, got)
	}
	var added string
	call(t, "PUT", a.URL+"/Products", map[string]string{"name": "Pears"}, &added)
	want := append([]product{{ID: added, Name: "Pears"}}, first...)

	a.kill()
	b.kill()
	c := start(t, "products", env)
	if got := catalogue(t, c.URL); !slices.Equal(got, want) {
		t.Errorf("after a restart of the process: %v, want %v", got, want)
	}
	c.kill()
	db.Kill()
	if err := db.Start(); err != nil {
		t.Fatal(err)
	}
	d := start(t, "products", env)
	if got := catalogue(t, d.URL); !slices.Equal(got, want) {
		t.Errorf("after a restart of Redis: %v, want %v", got, want)
	}
}
