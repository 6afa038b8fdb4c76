//go:build integration

// The crud app's two services in one process, on the real thing: a
// three-node Galera cluster and a Redis master with two replicas under
// Sentinel, all on loopback. Two gates and two storage tasks, each storage
// task on its own database node, so a write through one path and a read
// through the other cross nodes.
package crud_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/swarmlab/swarmlab/app/crud/internal/api"
	"github.com/swarmlab/swarmlab/app/crud/internal/gate"
	"github.com/swarmlab/swarmlab/app/crud/internal/reqlog"
	"github.com/swarmlab/swarmlab/app/crud/internal/storage"
	"github.com/swarmlab/swarmlab/app/crud/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type app struct {
	gates    []*httptest.Server
	storages []*httptest.Server
}

func startApp(t *testing.T) *app {
	db := testenv.SharedGalera(t, 3)
	rh := testenv.StartRedisHA(t, 2)
	cfg := db.NewDatabase(t)
	a := &app{}
	var addrs []string
	for i := range 2 {
		st, err := storage.Open(db.Config(cfg.Database, i))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = st.Migrate(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		task := fmt.Sprintf("storage.%d", i+1)
		srv := httptest.NewServer((&storage.Server{Store: st, Task: task}).Handler(reqlog.New(io.Discard, "storage", task)))
		t.Cleanup(srv.Close)
		a.storages = append(a.storages, srv)
		addrs = append(addrs, srv.Listener.Addr().String())
	}
	for i := range 2 {
		rdb := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: testenv.MasterName, SentinelAddrs: rh.Sentinels,
			DialTimeout: time.Second, ReadTimeout: 3 * time.Second})
		t.Cleanup(func() { rdb.Close() })
		st, err := gate.NewStorage(gate.StorageConfig{Mode: gate.ModeDNSRR, Addrs: addrs, Timeout: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		task := fmt.Sprintf("gate.%d", i+1)
		g := &gate.Server{Task: task, Storage: st,
			Sessions: &gate.RedisSessions{Client: rdb, Replicas: 1, WaitTimeout: time.Second, TTL: time.Hour}}
		srv := httptest.NewServer(g.Handler(reqlog.New(io.Discard, "gate", task)))
		t.Cleanup(srv.Close)
		a.gates = append(a.gates, srv)
	}
	return a
}

// client is one user: one cookie jar, whichever gate it calls.
type client struct {
	t    *testing.T
	http *http.Client
}

func newClient(t *testing.T) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, http: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

func (c *client) do(base, method, path, body string) (int, string, string) {
	c.t.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("X-Served-By")
}

func TestWritesThroughOneGateAreReadThroughTheOther(t *testing.T) {
	a := startApp(t)
	c := newClient(t)
	// Both gates share the cookie's host (127.0.0.1), so one session is
	// sent to both, as to the gates behind one edge.
	if code, body, _ := c.do(a.gates[0].URL, "POST", "/session", ""); code != 201 {
		t.Fatalf("POST /session: %d %s", code, body)
	}
	served := map[string]int{}
	for i := range 40 {
		w, r := a.gates[i%2].URL, a.gates[(i+1)%2].URL
		code, body, by := c.do(w, "PUT", "/items/k", fmt.Sprintf(`{"value":"v%d"}`, i))
		if code != 200 {
			t.Fatalf("PUT %d: %d %s", i, code, body)
		}
		var put api.Item
		json.Unmarshal([]byte(body), &put)
		served[by]++
		code, body, by = c.do(r, "GET", "/items/k", "")
		var got api.Item
		json.Unmarshal([]byte(body), &got)
		if code != 200 || got.Version != put.Version || got.Value != fmt.Sprintf("v%d", i) {
			t.Fatalf("write %d acknowledged as %+v; then read %d %s", i, put, code, body)
		}
		served[by]++
	}
	for _, want := range []string{"gate.1/storage.1", "gate.1/storage.2", "gate.2/storage.1", "gate.2/storage.2"} {
		if served[want] == 0 {
			t.Errorf("no answer served by %s: %v", want, served)
		}
	}
	code, body, _ := c.do(a.gates[1].URL, "GET", "/session", "")
	var s gate.Session
	json.Unmarshal([]byte(body), &s)
	if code != 200 || s.Requests != 81 {
		t.Errorf("GET /session: %d %s, want 81 requests counted across both gates", code, body)
	}
}

func TestAStorageTaskGoneIsSkipped(t *testing.T) {
	a := startApp(t)
	c := newClient(t)
	c.do(a.gates[0].URL, "POST", "/session", "")
	a.storages[0].Close()
	for i := range 20 {
		code, body, by := c.do(a.gates[i%2].URL, "PUT", fmt.Sprint("/items/k", i), `{"value":"x"}`)
		if code != 200 || !strings.HasSuffix(by, "/storage.2") {
			t.Fatalf("PUT %d with storage.1 gone: %d %s by %s", i, code, body, by)
		}
	}
	code, body, _ := c.do(a.gates[0].URL, "GET", "/items?prefix=k1", "")
	var items []api.Item
	json.Unmarshal([]byte(body), &items)
	if code != 200 || len(items) != 11 {
		t.Errorf("list k1*: %d, %d items, want k1 and k10..k19", code, len(items))
	}
}
