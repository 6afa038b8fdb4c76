package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestEchoReportsWhoAnswered(t *testing.T) {
	srv := httptest.NewServer(Handler(Reply{Version: "v2", Task: "web.1.x", Node: "w1", Hostname: "h"}, false))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/anything")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r Reply
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	if r.Version != "v2" || r.Node != "w1" || r.Task != "web.1.x" || resp.Header.Get("X-Echo-Version") != "v2" {
		t.Errorf("got %+v", r)
	}
	if code := healthcheck(srv.URL + "/healthz"); code != 0 {
		t.Errorf("healthy build: healthcheck exit %d", code)
	}
}

func TestBrokenBuildFailsItsHealthCheck(t *testing.T) {
	srv := httptest.NewServer(Handler(Reply{Version: "v3"}, true))
	defer srv.Close()
	if code := healthcheck(srv.URL + "/healthz"); code != 1 {
		t.Errorf("broken build: healthcheck exit %d, want 1", code)
	}
	resp, err := http.Get(srv.URL + "/")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("broken build still serves requests: %v %v", resp, err)
	}
}
