package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/swarmlab/swarmlab/app/invoices/internal/records"
	"github.com/swarmlab/swarmlab/app/invoices/internal/web"
)

var info = web.Info{Version: "v9", Host: "replica-1"}

// do sends one request to h and decodes the JSON answer into a generic value.
func do(t *testing.T, h http.Handler, method, path, body string) (int, any, http.Header) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var v any
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("%s %s: body %q is not JSON: %v", method, path, rec.Body.String(), err)
	}
	return rec.Code, v, rec.Header()
}

func wantStatus(t *testing.T, what string, got, want int, body any) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: HTTP %d (%v), want %d", what, got, body, want)
	}
}

func TestCustomersRoutesKeepTheSeedShapes(t *testing.T) {
	h := Customers(records.NewMemory(), info)
	code, id, hdr := do(t, h, "PUT", "/Customers", `{"name":"Ada","address":"1 Loop St"}`)
	wantStatus(t, "PUT", code, 200, id)
	if _, ok := id.(string); !ok {
		t.Fatalf("PUT /Customers returned %#v, want the id as a JSON string", id)
	}
	if hdr.Get("X-Version") != "v9" || hdr.Get("X-Served-By") != "replica-1" {
		t.Errorf("headers %v, want X-Version v9 and X-Served-By replica-1", hdr)
	}
	code, got, _ := do(t, h, "GET", "/Customers/"+id.(string), "")
	wantStatus(t, "GET one", code, 200, got)
	want := map[string]any{"id": id, "name": "Ada", "address": "1 Loop St", "version": "v9"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("GET /Customers/{id} = %v, want %v", got, want)
	}
	do(t, h, "PUT", "/Customers", `{"name":"Bob","address":"2 Loop St"}`)
	code, list, _ := do(t, h, "GET", "/Customers", "")
	wantStatus(t, "GET all", code, 200, list)
	if l := list.([]any); len(l) != 2 || l[0].(map[string]any)["name"] != "Bob" {
		t.Errorf("GET /Customers = %v, want both, newest first", list)
	}
	code, nf, hdr := do(t, h, "GET", "/Customers/nope", "")
	wantStatus(t, "GET missing", code, 404, nf)
	if m := nf.(map[string]any); m["status"] != 404.0 || m["error"] != "no such customer" || m["customerId"] != "nope" {
		t.Errorf("404 body %v, want the seed's {status, error, customerId}", nf)
	}
	if hdr.Get("X-Served-By") == "" {
		t.Error("a 404 lacks X-Served-By")
	}
}

func TestEmptyListIsAnEmptyArray(t *testing.T) {
	rec := httptest.NewRecorder()
	Products(records.NewMemory(), info).ServeHTTP(rec, httptest.NewRequest("GET", "/Products", nil))
	if strings.TrimSpace(rec.Body.String()) != "[]" {
		t.Errorf("GET /Products on an empty store = %q, want []", rec.Body.String())
	}
}

func TestInputIsValidated(t *testing.T) {
	customers := target{Customers(records.NewMemory(), info), "/Customers"}
	products := target{Products(records.NewMemory(), info), "/Products"}
	invoices := target{Invoices(records.NewMemory(), found{}, found{}, info), "/Invoices"}
	huge := `{"name":"` + strings.Repeat("x", web.MaxBody) + `","address":"a"}`
	for _, c := range []struct {
		name   string
		to     target
		body   string
		status int
		field  string
	}{
		{"customer without name", customers, `{"address":"a"}`, 400, "name"},
		{"customer with a blank name", customers, `{"name":"  ","address":"a"}`, 400, "name"},
		{"customer without address", customers, `{"name":"n"}`, 400, "address"},
		{"customer name not a string", customers, `{"name":5,"address":"a"}`, 400, "name"},
		{"customer name too long", customers, `{"name":"` + strings.Repeat("x", 201) + `","address":"a"}`, 400, "name"},
		{"oversized body", customers, huge, 413, ""},
		{"not JSON", customers, `name=x`, 400, ""},
		{"empty body", customers, ``, 400, ""},
		{"two JSON values", customers, `{"name":"a","address":"b"} {}`, 400, ""},
		{"product without name", products, `{}`, 400, "name"},
		{"invoice without customerId", invoices, `{"productId":"p","quantity":1}`, 400, "customerId"},
		{"invoice without productId", invoices, `{"customerId":"c","quantity":1}`, 400, "productId"},
		{"invoice without quantity", invoices, `{"customerId":"c","productId":"p"}`, 400, "quantity"},
		{"invoice with quantity 0", invoices, `{"customerId":"c","productId":"p","quantity":0}`, 400, "quantity"},
		{"invoice with negative quantity", invoices, `{"customerId":"c","productId":"p","quantity":-3}`, 400, "quantity"},
		{"invoice with fractional quantity", invoices, `{"customerId":"c","productId":"p","quantity":1.5}`, 400, "quantity"},
		{"invoice with quantity as text", invoices, `{"customerId":"c","productId":"p","quantity":"2"}`, 400, "quantity"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, body, _ := do(t, c.to.h, "PUT", c.to.path, c.body)
			wantStatus(t, c.name, code, c.status, body)
			m := body.(map[string]any)
			if m["status"] != float64(c.status) || m["error"] == "" {
				t.Errorf("body %v lacks status and error", m)
			}
			if c.field != "" && m["field"] != c.field {
				t.Errorf("body %v, want field %q", m, c.field)
			}
		})
	}
}

type target struct {
	h    http.Handler
	path string
}

// found is a Lookup that knows every id except "missing", or is down.
type found struct{ down error }

func (f found) Exists(_ context.Context, id string) (bool, error) {
	return id != "missing", f.down
}

func TestInvoicesNameTheMissingRecord(t *testing.T) {
	store := records.NewMemory()
	h := Invoices(store, found{}, found{}, info)
	for _, c := range []struct{ body, field, msg string }{
		{`{"customerId":"missing","productId":"p","quantity":1}`, "customerId", "no customer found for id missing"},
		{`{"customerId":"c","productId":"missing","quantity":1}`, "productId", "no product found for id missing"},
	} {
		code, body, _ := do(t, h, "PUT", "/Invoices", c.body)
		wantStatus(t, c.body, code, 400, body)
		if m := body.(map[string]any); m["field"] != c.field || m["error"] != c.msg {
			t.Errorf("%s: body %v, want field %q error %q", c.body, m, c.field, c.msg)
		}
	}
	if l, _ := store.List(t.Context(), ""); len(l) != 0 {
		t.Errorf("invalid invoices were stored: %v", l)
	}
}

func TestInvoicesListByCustomer(t *testing.T) {
	h := Invoices(records.NewMemory(), found{}, found{}, info)
	for _, c := range []string{"c1", "c2", "c1"} {
		code, id, _ := do(t, h, "PUT", "/Invoices", `{"customerId":"`+c+`","productId":"p","quantity":2}`)
		wantStatus(t, "PUT", code, 200, id)
	}
	_, all, _ := do(t, h, "GET", "/Invoices", "")
	_, c1, _ := do(t, h, "GET", "/Invoices?customer-id=c1", "")
	_, none, _ := do(t, h, "GET", "/Invoices?customer-id=nobody", "")
	if len(all.([]any)) != 3 || len(c1.([]any)) != 2 || len(none.([]any)) != 0 {
		t.Fatalf("all %v, c1 %v, nobody %v: want 3, 2, 0", all, c1, none)
	}
	inv := c1.([]any)[0].(map[string]any)
	for _, k := range []string{"id", "productId", "customerId", "quantity", "issuedAt"} {
		if _, ok := inv[k]; !ok {
			t.Errorf("invoice %v lacks %s", inv, k)
		}
	}
	if inv["quantity"] != 2.0 || inv["customerId"] != "c1" {
		t.Errorf("invoice %v, want quantity 2 (a number) for c1", inv)
	}
	code, nf, _ := do(t, h, "GET", "/Invoices/zzz", "")
	wantStatus(t, "missing invoice", code, 404, nf)
	if nf.(map[string]any)["id"] != "zzz" {
		t.Errorf("404 %v, want the seed's id field", nf)
	}
}

// A dependency that cannot answer is a 503, never a 500, and nothing is stored.
func TestInvoicesAnswer503WhenADependencyIsDown(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		web.Unavailable(w, "storage", errors.New("redis down"))
	}))
	defer failing.Close()
	live := httptest.NewServer(Products(seeded(t), info))
	defer live.Close()

	c := live.Client()
	for _, tc := range []struct {
		name      string
		customers string
	}{
		{"customers refuses connections", deadURL},
		{"customers answers 503 (its Redis is down)", failing.URL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := records.NewMemory()
			h := Invoices(store,
				Remote{Name: "customers", Base: tc.customers, Path: "/Customers", Client: c},
				Remote{Name: "products", Base: live.URL, Path: "/Products", Client: c}, info)
			// id-1 is the first product the seeded store made.
			code, body, _ := do(t, h, "PUT", "/Invoices", `{"customerId":"c","productId":"id-1","quantity":1}`)
			wantStatus(t, "PUT", code, 503, body)
			if !strings.Contains(fmt.Sprint(body), "customers") {
				t.Errorf("503 body %v does not name the customers service", body)
			}
			if l, _ := store.List(t.Context(), ""); len(l) != 0 {
				t.Errorf("an invoice was stored while customers was down: %v", l)
			}
		})
	}
}

func seeded(t *testing.T) *records.Memory {
	m := records.NewMemory()
	for _, r := range CatalogueRecords() {
		m.Create(t.Context(), r)
	}
	return m
}

func TestRemoteLookup(t *testing.T) {
	srv := httptest.NewServer(Customers(records.NewMemory(), info))
	defer srv.Close()
	resp, err := http.DefaultClient.Do(must(http.NewRequest("PUT", srv.URL+"/Customers", strings.NewReader(`{"name":"a","address":"b"}`))))
	if err != nil {
		t.Fatal(err)
	}
	var id string
	json.NewDecoder(resp.Body).Decode(&id)
	resp.Body.Close()
	r := Remote{Name: "customers", Base: srv.URL + "/", Path: "/Customers", Client: srv.Client()}
	for _, c := range []struct {
		id   string
		want bool
	}{{id, true}, {"missing", false}, {"../../etc/passwd?x=1", false}} {
		got, err := r.Exists(t.Context(), c.id)
		if err != nil || got != c.want {
			t.Errorf("Exists(%q) = %v, %v; want %v", c.id, got, err, c.want)
		}
	}
}

func must(r *http.Request, err error) *http.Request {
	if err != nil {
		panic(err)
	}
	return r
}

func TestStorageDownIs503AndUnhealthy(t *testing.T) {
	store := records.NewMemory()
	store.Down = errors.New("connection refused")
	h := Customers(store, info)
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/Customers", ""}, {"GET", "/Customers/x", ""},
		{"PUT", "/Customers", `{"name":"a","address":"b"}`}, {"GET", "/healthz", ""},
	} {
		code, body, _ := do(t, h, c.method, c.path, c.body)
		wantStatus(t, c.method+" "+c.path, code, 503, body)
	}
	store.Down = nil
	code, body, _ := do(t, h, "GET", "/healthz", "")
	wantStatus(t, "healthz", code, 200, body)
}

func TestUnknownRoutesAnswerJSON(t *testing.T) {
	code, body, hdr := do(t, Products(records.NewMemory(), info), "GET", "/nothing", "")
	wantStatus(t, "unknown route", code, 404, body)
	if hdr.Get("X-Version") != "v9" {
		t.Errorf("headers %v lack X-Version", hdr)
	}
	rec := httptest.NewRecorder()
	Products(records.NewMemory(), info).ServeHTTP(rec, httptest.NewRequest("DELETE", "/Products", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE /Products: HTTP %d, want 405", rec.Code)
	}
}
