package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeEngine is a node engine on a unix socket: one task container
// running when the collector starts, another container that starts later
// (an event), and each container's output.
type fakeEngine struct {
	mu       sync.Mutex
	since    []string // the since= of each /events request
	logsQ    []string // the query of each /logs request
	started  chan struct{}
	running  map[string]bool
	release  chan struct{} // closing it ends the event stream
	eventsOK chan struct{}
}

func (e *fakeEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/events":
		e.mu.Lock()
		e.since = append(e.since, r.URL.Query().Get("since"))
		first := len(e.since) == 1
		e.mu.Unlock()
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		if !first {
			<-r.Context().Done()
			return
		}
		<-e.eventsOK
		fmt.Fprintf(w, `{"Type":"network","Action":"connect","Actor":{"ID":"n1"},"time":1714550401,"timeNano":1714550401000000000}`+"\n")
		fmt.Fprintf(w, `{"Type":"container","Action":"start","Actor":{"ID":"c2","Attributes":{"name":"probe"}},"time":1714550402,"timeNano":1714550402000000000}`+"\n")
		w.(http.Flusher).Flush()
		select {
		case <-e.release:
		case <-r.Context().Done():
		}
	case p == "/containers/json":
		fmt.Fprint(w, `[{"Id":"c1","ID":"c1"}]`)
		close(e.eventsOK)
	case p == "/containers/c1/json":
		e.mu.Lock()
		run := e.running["c1"]
		e.mu.Unlock()
		fmt.Fprintf(w, `{"Name":"/app_web.1.task1","Config":{"Tty":false,"Labels":{"com.docker.swarm.service.name":"app_web","com.docker.swarm.task.id":"task1","com.docker.swarm.task.name":"app_web.1.task1"}},"State":{"Running":%v}}`, run)
	case p == "/containers/c2/json":
		fmt.Fprint(w, `{"Name":"/probe","Config":{"Tty":true,"Labels":{}},"State":{"Running":false}}`)
	case p == "/containers/c1/logs":
		e.mu.Lock()
		e.logsQ = append(e.logsQ, r.URL.RawQuery)
		n := len(e.logsQ)
		e.mu.Unlock()
		if n == 1 {
			w.Write(frame(1, "2024-05-01T08:00:01Z web up\n"))
			w.Write(frame(2, "2024-05-01T08:00:02Z web warns\n"))
			return // the stream breaks while c1 runs: the collector asks again
		}
		e.mu.Lock()
		e.running["c1"] = false
		e.mu.Unlock()
		w.Write(frame(1, "2024-05-01T08:00:02Z web warns\n")) // since= is inclusive
		w.Write(frame(1, "2024-05-01T08:00:03Z web down\n"))
	case p == "/containers/c2/logs":
		fmt.Fprint(w, "2024-05-01T08:00:02.5Z probe says hi\r\n")
		close(e.started)
	default:
		http.Error(w, `{"message":"no such thing"}`, 404)
	}
}

func TestCollectorFollowsEventsAndContainers(t *testing.T) {
	sockDir, err := os.MkdirTemp("", "logd")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sockDir)
	sock := filepath.Join(sockDir, "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	fe := &fakeEngine{started: make(chan struct{}), running: map[string]bool{"c1": true}, release: make(chan struct{}), eventsOK: make(chan struct{})}
	srv := &http.Server{Handler: fe}
	go srv.Serve(l)
	defer srv.Close()

	dir := t.TempDir()
	var logs strings.Builder
	var logsMu sync.Mutex
	c := newCollector(unixEngine(sock), dir, "w1", func(f string, a ...any) {
		logsMu.Lock()
		fmt.Fprintf(&logs, f+"\n", a...)
		logsMu.Unlock()
	})
	c.retry = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()

	select {
	case <-fe.started:
	case <-time.After(5 * time.Second):
		t.Fatal("the collector did not follow the container that started")
	}
	task := filepath.Join(dir, "tasks/app_web/app_web.1.task1@w1.log")
	want := "2024-05-01T08:00:01.000000000Z stdout web up\n" +
		"2024-05-01T08:00:02.000000000Z stderr web warns\n" +
		"2024-05-01T08:00:03.000000000Z stdout web down\n"
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(task)
		if string(b) == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("task log:\n%s\nwant:\n%s", b, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The stream ends: the collector opens it again from the last event.
	close(fe.release)
	deadline = time.Now().Add(5 * time.Second)
	for {
		fe.mu.Lock()
		n := len(fe.since)
		fe.mu.Unlock()
		if n >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done

	fe.mu.Lock()
	defer fe.mu.Unlock()
	if len(fe.since) < 2 || fe.since[0] != "" || fe.since[1] != "1714550402.000000000" {
		t.Errorf("events asked since %q, want first all, then after the last event seen", fe.since)
	}
	if len(fe.logsQ) != 2 || !strings.Contains(fe.logsQ[1], "since=1714550402.000000000") || !strings.Contains(fe.logsQ[0], "timestamps=1") {
		t.Errorf("logs queries %q", fe.logsQ)
	}
	if got := readFile(t, filepath.Join(dir, "nodes/w1/containers/probe.c2.log")); got != "2024-05-01T08:00:02.500000000Z stdout probe says hi\n" {
		t.Errorf("probe log %q", got)
	}
	events := readFile(t, filepath.Join(dir, "nodes/w1/events.jsonl"))
	if strings.Count(events, "\n") != 2 || !strings.Contains(events, `"Action":"start","Actor":{"ID":"c2"`) {
		t.Errorf("events.jsonl:\n%s", events)
	}
}

// An engine that does not answer yet (dockerd starting) is waited for,
// and said once, after a while.
func TestCollectorWaitsForTheEngine(t *testing.T) {
	dir := t.TempDir()
	var n int
	c := newCollector(unixEngine(filepath.Join(dir, "nothing.sock")), dir, "m1", func(string, ...any) { n++ })
	c.retry, c.startWait = 5*time.Millisecond, 20*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Millisecond)
	defer cancel()
	c.Run(ctx)
	if n != 1 {
		t.Errorf("said %d times that the engine does not answer, want once", n)
	}
}
