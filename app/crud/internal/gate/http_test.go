package gate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/swarmlab/swarmlab/app/crud/internal/api"
	"github.com/swarmlab/swarmlab/app/crud/internal/reqlog"
	"github.com/swarmlab/swarmlab/app/crud/internal/storage"
)

// storageTask is a real storage handler on a shared in-memory store, on
// loopback, counting the requests it got.
type storageTask struct {
	srv  *httptest.Server
	hits atomic.Int64
}

func startStorage(t *testing.T, mem *storage.Memory, task string) *storageTask {
	st := &storageTask{}
	h := (&storage.Server{Store: mem, Task: task}).Handler(reqlog.New(io.Discard, "storage", task))
	st.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st.hits.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(st.srv.Close)
	return st
}

func (st *storageTask) addr() string { return st.srv.Listener.Addr().String() }

// deadAddr is a loopback port nothing listens on: connection refused.
func deadAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

type gateFixture struct {
	t        *testing.T
	mr       *miniredis.Miniredis
	sessions *RedisSessions
	srv      *httptest.Server
	lines    *syncBuffer
	client   *http.Client
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Split(strings.TrimSpace(s.b.String()), "\n")
}

// newGate starts a gate on miniredis (Replicas 0: miniredis has no replica,
// its WAIT always answers 0) in front of storage at addrs (dnsrr mode).
func newGate(t *testing.T, addrs ...string) *gateFixture {
	f := &gateFixture{t: t, mr: miniredis.RunT(t), lines: &syncBuffer{}}
	rdb := redis.NewClient(&redis.Options{Addr: f.mr.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	f.sessions = &RedisSessions{Client: rdb, WaitTimeout: 100 * time.Millisecond, TTL: time.Hour}
	st, err := NewStorage(StorageConfig{Mode: ModeDNSRR, Addrs: addrs, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Sessions: f.sessions, Storage: st, Task: "gate.1.x"}
	f.srv = httptest.NewServer(s.Handler(reqlog.New(f.lines, "gate", "gate.1.x")))
	t.Cleanup(f.srv.Close)
	f.client = &http.Client{}
	return f
}

type answer struct {
	status   int
	body     string
	servedBy string
	cookies  []*http.Cookie
}

func (f *gateFixture) do(method, path, cookie, body string) answer {
	f.t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: CookieName, Value: cookie})
	}
	resp, err := f.client.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, strings.TrimSpace(string(b)), resp.Header.Get("X-Served-By"), resp.Cookies()}
}

func (f *gateFixture) want(method, path, cookie, body string, status int, wantBody string) answer {
	f.t.Helper()
	a := f.do(method, path, cookie, body)
	if a.status != status || (wantBody != "" && a.body != wantBody) {
		f.t.Errorf("%s %s: %d %s, want %d %s", method, path, a.status, a.body, status, wantBody)
	}
	return a
}

// login makes a session and returns its id.
func (f *gateFixture) login() string {
	f.t.Helper()
	a := f.want("POST", "/session", "", "", http.StatusCreated, "")
	for _, c := range a.cookies {
		if c.Name == CookieName {
			return c.Value
		}
	}
	f.t.Fatalf("POST /session set no %q cookie", CookieName)
	return ""
}

func TestPostSessionSetsACookie(t *testing.T) {
	f := newGate(t, deadAddr(t))
	a := f.want("POST", "/session", "", "", http.StatusCreated, "")
	if len(a.cookies) != 1 || a.cookies[0].Name != "session" || !ValidSessionID(a.cookies[0].Value) ||
		!a.cookies[0].HttpOnly || a.cookies[0].Path != "/" {
		t.Fatalf("cookies %v, want one HttpOnly session cookie for /", a.cookies)
	}
	var s Session
	json.Unmarshal([]byte(a.body), &s)
	if s.ID != a.cookies[0].Value || s.Requests != 0 {
		t.Errorf("body %s, want the cookie's id and 0 requests", a.body)
	}
	if other := f.login(); other == s.ID {
		t.Errorf("two sessions with one id")
	}
	if a.servedBy != "gate.1.x/-" {
		t.Errorf("X-Served-By %q, want gate.1.x/- (no storage task served it)", a.servedBy)
	}
}

func TestEveryAuthenticatedRequestCounts(t *testing.T) {
	st := startStorage(t, storage.NewMemory(), "storage.1.a")
	f := newGate(t, st.addr())
	id := f.login()
	f.want("GET", "/session", id, "", 200, `{"id":"`+id+`","requests":1}`)
	f.want("PUT", "/items/a", id, `{"value":"x"}`, 200, "")
	f.want("GET", "/items/a", id, "", 200, "")
	f.want("GET", "/items/nope", id, "", 404, "")
	f.want("PUT", "/items/a", id, `{"value":1}`, 400, "")
	f.want("GET", "/session", id, "", 200, `{"id":"`+id+`","requests":6}`)
	// Another session has its own count.
	other := f.login()
	f.want("GET", "/session", other, "", 200, `{"id":"`+other+`","requests":1}`)
	// The count is in Redis, where another gate reads it: a session
	// survives the gate that made it.
	if v := f.mr.HGet("session:"+id, "requests"); v != "6" {
		t.Errorf("redis has requests=%q, want 6", v)
	}
	if ttl := f.mr.TTL("session:" + id); ttl <= 0 {
		t.Errorf("session has no TTL")
	}
}

func TestWithoutAValidSessionEverythingIs401(t *testing.T) {
	st := startStorage(t, storage.NewMemory(), "storage.1.a")
	f := newGate(t, st.addr())
	unknown := NewSessionID()
	for _, cookie := range []string{"", "not-a-session", unknown} {
		for _, r := range []struct{ method, path, body string }{
			{"GET", "/session", ""},
			{"PUT", "/items/a", `{"value":"x"}`},
			{"GET", "/items/a", ""},
			{"DELETE", "/items/a", ""},
			{"GET", "/items?prefix=a", ""},
			{"GET", "/nowhere", ""},
		} {
			a := f.want(r.method, r.path, cookie, r.body, http.StatusUnauthorized, "")
			if !strings.Contains(a.body, `"error":"session: `) {
				t.Errorf("%s %s: %s, want an error naming the session", r.method, r.path, a.body)
			}
			if a.servedBy != "gate.1.x/-" {
				t.Errorf("401 X-Served-By %q", a.servedBy)
			}
		}
	}
	if st.hits.Load() != 0 {
		t.Errorf("storage got %d requests without a session", st.hits.Load())
	}
	if f.mr.Exists("session:" + unknown) {
		t.Errorf("an unknown session was created by being counted")
	}
}

func TestItemsAPI(t *testing.T) {
	st := startStorage(t, storage.NewMemory(), "storage.1.a")
	f := newGate(t, st.addr())
	id := f.login()
	a := f.want("PUT", "/items/k1", id, `{"value":"one"}`, 200, `{"id":"k1","value":"one","version":1}`)
	if a.servedBy != "gate.1.x/storage.1.a" {
		t.Errorf("X-Served-By %q, want gate.1.x/storage.1.a", a.servedBy)
	}
	f.want("PUT", "/items/k1", id, `{"value":"two","ignored":true}`, 200, `{"id":"k1","value":"two","version":2}`)
	f.want("PUT", "/items/k2", id, `{"value":""}`, 200, `{"id":"k2","value":"","version":1}`)
	f.want("PUT", "/items/x%2Fy", id, `{"value":"slash"}`, 200, `{"id":"x/y","value":"slash","version":1}`)
	f.want("GET", "/items/k1", id, "", 200, `{"id":"k1","value":"two","version":2}`)
	f.want("GET", "/items/x%2Fy", id, "", 200, `{"id":"x/y","value":"slash","version":1}`)
	a = f.want("GET", "/items/k3", id, "", 404, `{"error":"id: no such item"}`)
	if a.servedBy != "gate.1.x/storage.1.a" {
		t.Errorf("404 X-Served-By %q", a.servedBy)
	}
	f.want("GET", "/items?prefix=k", id, "", 200,
		`[{"id":"k1","value":"two","version":2},{"id":"k2","value":"","version":1}]`)
	f.want("GET", "/items?prefix=zzz", id, "", 200, `[]`)
	a = f.want("DELETE", "/items/k1", id, "", 204, "")
	if a.body != "" {
		t.Errorf("204 with a body %q", a.body)
	}
	f.want("GET", "/items/k1", id, "", 404, "")
	f.want("GET", "/items?prefix=k", id, "", 200, `[{"id":"k2","value":"","version":1}]`)
	f.want("POST", "/items/k1", id, "", 404, "")
}

func TestBadInputIs400NamingTheField(t *testing.T) {
	st := startStorage(t, storage.NewMemory(), "storage.1.a")
	f := newGate(t, st.addr())
	id := f.login()
	f.want("PUT", "/items/a", id, `{"value":42}`, 400, `{"error":"value: must be a string"}`)
	f.want("PUT", "/items/a", id, `{"value":["x"]}`, 400, `{"error":"value: must be a string"}`)
	f.want("PUT", "/items/a", id, `{}`, 400, `{"error":"value: is required"}`)
	f.want("PUT", "/items/a", id, `[1]`, 400, `{"error":"body: must be a JSON object, {\"value\": \"...\"}"}`)
	f.want("PUT", "/items/a", id, ``, 400, `{"error":"body: must be a JSON object, {\"value\": \"...\"}"}`)
	f.want("PUT", "/items/"+strings.Repeat("a", 256), id, `{"value":"x"}`, 400, `{"error":"id: is 256 bytes, the limit is 255"}`)
	f.want("GET", "/items/%7F", id, "", 400, `{"error":"id: must not contain control characters"}`)
	f.want("GET", "/items?prefix=%FF", id, "", 400, `{"error":"prefix: must be valid UTF-8"}`)
	if st.hits.Load() != 0 {
		t.Errorf("storage got %d bad requests", st.hits.Load())
	}
}

func TestBodyOver64KiBIs413(t *testing.T) {
	st := startStorage(t, storage.NewMemory(), "storage.1.a")
	f := newGate(t, st.addr())
	id := f.login()
	envelope := len(`{"value":""}`)
	exact := `{"value":"` + strings.Repeat("v", api.MaxBody-envelope) + `"}`
	if len(exact) != 64<<10 {
		t.Fatalf("body of %d bytes", len(exact))
	}
	a := f.want("PUT", "/items/big", id, exact, 200, "")
	var it api.Item
	if json.Unmarshal([]byte(a.body), &it); len(it.Value) != api.MaxBody-envelope {
		t.Errorf("stored %d bytes", len(it.Value))
	}
	// HTML-ish characters that an encoder could escape (6 bytes each) still fit.
	f.want("PUT", "/items/big", id, `{"value":"`+strings.Repeat("<", api.MaxBody-envelope)+`"}`, 200, "")
	f.want("PUT", "/items/big", id, exact+" ", 413, `{"error":"body: larger than 65536 bytes"}`)
}

func TestWaitZeroIs503(t *testing.T) {
	st := startStorage(t, storage.NewMemory(), "storage.1.a")
	f := newGate(t, st.addr())
	id := f.login()
	// From now on every session write needs a replica; miniredis has none,
	// so its WAIT answers 0, as a master whose replicas are gone does.
	f.sessions.Replicas = 1
	a := f.want("POST", "/session", "", "", http.StatusServiceUnavailable, "")
	if len(a.cookies) != 0 {
		t.Errorf("a session that no replica has was handed out: %v", a.cookies)
	}
	if !strings.Contains(a.body, "not acknowledged by a replica") {
		t.Errorf("503 body %s", a.body)
	}
	f.want("GET", "/session", id, "", http.StatusServiceUnavailable, "")
	f.want("PUT", "/items/a", id, `{"value":"x"}`, http.StatusServiceUnavailable, "")
	if st.hits.Load() != 0 {
		t.Errorf("storage was asked %d times on a session write that was not replicated", st.hits.Load())
	}
	// An unknown session is still a 401: nothing was written to wait for.
	f.want("GET", "/session", NewSessionID(), "", http.StatusUnauthorized, "")
	f.sessions.Replicas = 0
	f.want("GET", "/session", id, "", 200, "")
}

func TestRedisDownIs503(t *testing.T) {
	f := newGate(t, deadAddr(t))
	id := f.login()
	f.mr.Close()
	f.want("GET", "/session", id, "", http.StatusServiceUnavailable, "")
	f.want("POST", "/session", "", "", http.StatusServiceUnavailable, "")
	f.want("GET", "/healthz", "", "", http.StatusServiceUnavailable, "")
}

func TestBalancesOverStorageTasksAndSkipsADeadOne(t *testing.T) {
	mem := storage.NewMemory()
	s1 := startStorage(t, mem, "storage.1.a")
	s2 := startStorage(t, mem, "storage.2.b")
	f := newGate(t, s1.addr(), deadAddr(t), s2.addr())
	id := f.login()
	served := map[string]int{}
	for i := range 20 {
		method, body := "GET", ""
		if i%2 == 0 {
			method, body = "PUT", `{"value":"x"}`
		}
		a := f.do(method, "/items/a", id, body)
		if a.status != 200 {
			t.Fatalf("%s: %d %s, want 200 with a storage task dead", method, a.status, a.body)
		}
		served[a.servedBy]++
	}
	if served["gate.1.x/storage.1.a"] < 5 || served["gate.1.x/storage.2.b"] < 5 || len(served) != 2 {
		t.Errorf("served by %v, want both live tasks in turn", served)
	}
	f.want("GET", "/items/a", id, "", 200, `{"id":"a","value":"x","version":10}`)
	a := f.want("GET", "/healthz", "", "", 200, "")
	if !strings.Contains(a.body, `"mode":"dnsrr"`) || !strings.Contains(a.body, `"failed lately"`) {
		t.Errorf("healthz %s, want the dnsrr path and the dead task", a.body)
	}
}

func TestAllStorageDeadIs503(t *testing.T) {
	f := newGate(t, deadAddr(t), deadAddr(t))
	id := f.login()
	a := f.want("PUT", "/items/a", id, `{"value":"x"}`, http.StatusServiceUnavailable, "")
	if !strings.Contains(a.body, "no task answered") || a.servedBy != "gate.1.x/-" {
		t.Errorf("503 %s served by %q", a.body, a.servedBy)
	}
}

func TestAWriteThatGotNoAnswerIsNotSentAgain(t *testing.T) {
	// A storage task that reads the request and hangs up, as one killed
	// mid-write does: the write may have been done.
	var hangups atomic.Int64
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hangups.Add(1)
		io.ReadAll(r.Body)
		c, _, _ := w.(http.Hijacker).Hijack()
		c.Close()
	}))
	defer hang.Close()
	st := startStorage(t, storage.NewMemory(), "storage.2.b")
	// fresh is a Storage whose next request goes to the hang first.
	fresh := func() *Storage {
		s, err := NewStorage(StorageConfig{Mode: ModeDNSRR, Addrs: []string{hang.Listener.Addr().String(), st.addr()}})
		if err != nil {
			t.Fatal(err)
		}
		// The first Order starts at the lower address; make it the hang.
		if hang.Listener.Addr().String() > st.addr() {
			s.pool.Order(context.Background())
		}
		return s
	}
	// Neither write: a DELETE sent again may land after writes acknowledged
	// since, and remove them (found by the crud e2e spec's history check).
	var s *Storage
	for _, w := range []struct{ method, body string }{{"PUT", `{"value":"x"}`}, {"DELETE", ""}} {
		s = fresh()
		before := hangups.Load()
		_, err := s.Do(context.Background(), w.method, "/items/a", []byte(w.body))
		if !errors.Is(err, ErrStorageUnknown) {
			t.Fatalf("%s to a task that hung up: %v, want ErrStorageUnknown", w.method, err)
		}
		if hangups.Load() != before+1 || st.hits.Load() != 0 {
			t.Errorf("the %s was sent %d times to the task that hung up and %d to the other, want once and never",
				w.method, hangups.Load()-before, st.hits.Load())
		}
	}
	// A read goes on to the next task.
	for range 4 {
		rep, err := s.Do(context.Background(), "GET", "/items/a", nil)
		if err != nil || rep.Status != 404 {
			t.Errorf("GET: %+v %v, want the live task's 404", rep, err)
		}
	}
}

func TestStorageErrorIs503(t *testing.T) {
	mem := storage.NewMemory()
	st := startStorage(t, mem, "storage.1.a")
	f := newGate(t, st.addr())
	id := f.login()
	mem.SetErr(context.DeadlineExceeded)
	a := f.want("PUT", "/items/a", id, `{"value":"x"}`, http.StatusServiceUnavailable, "")
	if a.servedBy != "gate.1.x/storage.1.a" || !strings.Contains(a.body, "storage: database:") {
		t.Errorf("503 %s by %q", a.body, a.servedBy)
	}
}

func TestVIPModeDialsTheServiceName(t *testing.T) {
	st := startStorage(t, storage.NewMemory(), "storage.1.a")
	port := st.srv.Listener.Addr().(*net.TCPAddr).Port
	s, err := NewStorage(StorageConfig{Mode: ModeVIP, Addrs: []string{net.JoinHostPort("localhost", strconv.Itoa(port))}})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.Do(context.Background(), "GET", "/items/a", nil)
	if err != nil || rep.Status != 404 || rep.ServedBy != "storage.1.a" {
		t.Errorf("%+v %v", rep, err)
	}
	if p := s.Path(); p["mode"] != "vip" || p["tasks"] != nil {
		t.Errorf("path %v", p)
	}
	if _, err := NewStorage(StorageConfig{Mode: "ipvs", Addrs: []string{"x:1"}}); err == nil {
		t.Errorf("mode ipvs accepted")
	}
	for publish, want := range map[string]string{"host": ModeDNSRR, "ingress": ModeVIP} {
		if s, err := NewStorage(StorageConfig{Mode: publish, Addrs: []string{"storage:8080"}}); err != nil || s.Path()["mode"] != want {
			t.Errorf("publish mode %s: %v %v, want storage mode %s", publish, s.Path(), err, want)
		}
	}
}

func TestStorageLineNamesTheGatesRequestAndSession(t *testing.T) {
	var storageLines syncBuffer
	h := (&storage.Server{Store: storage.NewMemory(), Task: "storage.1.a"}).Handler(reqlog.New(&storageLines, "storage", "storage.1.a"))
	st := httptest.NewServer(h)
	defer st.Close()
	f := newGate(t, st.Listener.Addr().String())
	id := f.login()
	req, _ := http.NewRequest("GET", f.srv.URL+"/items/k", nil)
	req.AddCookie(&http.Cookie{Name: CookieName, Value: id})
	req.Header.Set("X-Request-Id", "req-42")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-Id"); got != "req-42" {
		t.Errorf("X-Request-Id %q, want the client's", got)
	}
	var gl, sl reqlog.Line
	lines := f.lines.lines()
	json.Unmarshal([]byte(lines[len(lines)-1]), &gl)
	json.Unmarshal([]byte(storageLines.lines()[0]), &sl)
	if gl.Request != "req-42" || sl.Request != "req-42" || sl.Session != id || sl.Item != "k" || gl.Storage != sl.Task {
		t.Errorf("gate line %+v\nstorage line %+v\nwant both for request req-42 of session %s", gl, sl, id)
	}
}

func TestOneLogLinePerRequest(t *testing.T) {
	st := startStorage(t, storage.NewMemory(), "storage.1.a")
	f := newGate(t, st.addr())
	id := f.login()
	f.want("PUT", "/items/k", id, `{"value":"x"}`, 200, "")
	f.want("GET", "/items/k", "", "", 401, "")
	f.want("GET", "/healthz", "", "", 200, "")
	lines := f.lines.lines()
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3 (none for /healthz):\n%s", len(lines), strings.Join(lines, "\n"))
	}
	var l reqlog.Line
	json.Unmarshal([]byte(lines[1]), &l)
	if l.Service != "gate" || l.Task != "gate.1.x" || l.Session != id || l.Item != "k" || l.Method != "PUT" ||
		l.Path != "/items/k" || l.Status != 200 || l.Outcome != "ok" || l.Storage != "storage.1.a" {
		t.Errorf("line %s", lines[1])
	}
	if l.Request == "" {
		t.Errorf("line %s has no request id", lines[1])
	}
	json.Unmarshal([]byte(lines[2]), &l)
	if l.Status != 401 || l.Outcome != "unauthorized" {
		t.Errorf("line %s", lines[2])
	}
}
