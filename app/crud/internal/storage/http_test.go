package storage

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/swarmlab/swarmlab/app/crud/internal/reqlog"
)

type fixture struct {
	t     *testing.T
	mem   *Memory
	srv   *httptest.Server
	lines *bytes.Buffer
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, mem: NewMemory(), lines: &bytes.Buffer{}}
	s := &Server{Store: f.mem, Task: "storage.1.abc"}
	f.srv = httptest.NewServer(s.Handler(reqlog.New(f.lines, "storage", "storage.1.abc")))
	t.Cleanup(f.srv.Close)
	return f
}

// do sends a request and returns the status and body, checking X-Served-By.
func (f *fixture) do(method, path, body string) (int, string) {
	f.t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if got := resp.Header.Get("X-Served-By"); got != "storage.1.abc" {
		f.t.Errorf("%s %s: X-Served-By %q, want the task's name", method, path, got)
	}
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func (f *fixture) want(method, path, body string, status int, wantBody string) {
	f.t.Helper()
	code, got := f.do(method, path, body)
	if code != status || (wantBody != "" && got != wantBody) {
		f.t.Errorf("%s %s %s: %d %s, want %d %s", method, path, body, code, got, status, wantBody)
	}
}

func TestPutIncrementsVersionAndGetReadsIt(t *testing.T) {
	f := newFixture(t)
	f.want("PUT", "/items/a", `{"value":"one"}`, 200, `{"id":"a","value":"one","version":1}`)
	f.want("PUT", "/items/a", `{"value":"two <&>"}`, 200, `{"id":"a","value":"two <&>","version":2}`)
	f.want("GET", "/items/a", "", 200, `{"id":"a","value":"two <&>","version":2}`)
	f.want("GET", "/items/b", "", 404, `{"error":"id: no such item"}`)
}

func TestDeleteIs204AndTheItemIsGone(t *testing.T) {
	f := newFixture(t)
	f.want("PUT", "/items/a", `{"value":"x"}`, 200, "")
	f.want("DELETE", "/items/a", "", 204, "")
	f.want("GET", "/items/a", "", 404, "")
	f.want("DELETE", "/items/a", "", 204, "")
	f.want("PUT", "/items/a", `{"value":"y"}`, 200, `{"id":"a","value":"y","version":1}`)
}

func TestListByPrefixInIDOrder(t *testing.T) {
	f := newFixture(t)
	for _, id := range []string{"k2", "k1", "x1", "k10"} {
		f.want("PUT", "/items/"+id, `{"value":"v"}`, 200, "")
	}
	_, body := f.do("GET", "/items?prefix=k", "")
	var items []Item
	if err := json.Unmarshal([]byte(body), &items); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, it := range items {
		ids = append(ids, it.ID)
	}
	if strings.Join(ids, ",") != "k1,k10,k2" {
		t.Errorf("prefix k: %v, want k1,k10,k2", ids)
	}
	f.want("GET", "/items?prefix=none", "", 200, "[]")
	if _, body := f.do("GET", "/items", ""); !strings.Contains(body, `"x1"`) {
		t.Errorf("no prefix: %s, want every item", body)
	}
}

func TestBadInputNamesTheField(t *testing.T) {
	f := newFixture(t)
	f.want("PUT", "/items/a", `{"value":7}`, 400, `{"error":"value: must be a string"}`)
	f.want("PUT", "/items/a", `{"value":null}`, 400, `{"error":"value: must be a string"}`)
	f.want("PUT", "/items/a", `{"other":"x"}`, 400, `{"error":"value: is required"}`)
	f.want("PUT", "/items/a", `not json`, 400, `{"error":"body: must be a JSON object, {\"value\": \"...\"}"}`)
	f.want("PUT", "/items/"+strings.Repeat("i", 256), `{"value":"x"}`, 400, `{"error":"id: is 256 bytes, the limit is 255"}`)
	f.want("GET", "/items/a%01b", "", 400, `{"error":"id: must not contain control characters"}`)
	f.want("GET", "/items?prefix="+strings.Repeat("p", 256), "", 400, `{"error":"prefix: is 256 bytes, the limit is 255"}`)
	f.want("PUT", "/items/a", `{"value":"`+strings.Repeat("v", MaxBody)+`"}`, 413, "")
}

func TestDatabaseDownIs503(t *testing.T) {
	f := newFixture(t)
	f.mem.SetErr(errors.New("all nodes gone"))
	f.want("PUT", "/items/a", `{"value":"x"}`, 503, `{"error":"database: all nodes gone"}`)
	f.want("GET", "/items/a", "", 503, "")
	f.want("DELETE", "/items/a", "", 503, "")
	f.want("GET", "/items", "", 503, "")
	f.want("GET", "/healthz", "", 503, "")
	f.mem.SetErr(nil)
	f.want("GET", "/healthz", "", 200, "")
}

func TestOneLogLinePerRequest(t *testing.T) {
	f := newFixture(t)
	f.want("PUT", "/items/a", `{"value":"x"}`, 200, "")
	f.want("GET", "/items/zz", "", 404, "")
	f.want("GET", "/healthz", "", 200, "")
	lines := strings.Split(strings.TrimSpace(f.lines.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want 2 (none for /healthz):\n%s", len(lines), f.lines)
	}
	var l reqlog.Line
	if err := json.Unmarshal([]byte(lines[1]), &l); err != nil {
		t.Fatal(err)
	}
	if l.Service != "storage" || l.Task != "storage.1.abc" || l.Item != "zz" || l.Method != "GET" ||
		l.Path != "/items/zz" || l.Status != 404 || l.Outcome != "not_found" || l.Time == "" {
		t.Errorf("log line %s", lines[1])
	}
	for _, k := range []string{"time", "service", "task", "session", "item", "method", "path", "status", "outcome", "latency_ms"} {
		if !strings.Contains(lines[0], `"`+k+`":`) {
			t.Errorf("log line %s lacks %q", lines[0], k)
		}
	}
}
