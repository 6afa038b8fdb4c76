package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"
)

// Before it starts its server, a member must know its peers' positions (decide.go), which are
// in their data directories and nowhere else while no server runs. So every member (the
// arbitrator too) answers GET /state on its status port with its Member as JSON, while it
// waits and while its server runs.

// serveStatus serves state() on port until ctx ends.
func serveStatus(ctx context.Context, port int, state func() Member) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/state", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(state())
	})
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return fmt.Errorf("status port: %v", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 2 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	go srv.Serve(ln)
	return nil
}

// statusTimeout bounds one peer's answer: a peer that does not answer in time is not counted.
const statusTimeout = 1500 * time.Millisecond

var statusClient = &http.Client{Timeout: statusTimeout}

// fetchState asks the member at addr (host:port) for its state.
func fetchState(ctx context.Context, addr string) (Member, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/state", nil)
	if err != nil {
		return Member{}, err
	}
	resp, err := statusClient.Do(req)
	if err != nil {
		return Member{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Member{}, fmt.Errorf("%s: %s", addr, resp.Status)
	}
	var m Member
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return Member{}, fmt.Errorf("%s: %v", addr, err)
	}
	return m, nil
}

// fetchAll asks every address at once; those that do not answer are left out.
func fetchAll(ctx context.Context, ips []string, port int) []Member {
	var (
		mu  sync.Mutex
		out []Member
		wg  sync.WaitGroup
	)
	for _, ip := range ips {
		wg.Add(1)
		go func(ip string) {
			defer wg.Done()
			m, err := fetchState(ctx, net.JoinHostPort(ip, strconv.Itoa(port)))
			if err != nil {
				return
			}
			if m.Addr == "" {
				m.Addr = ip
			}
			mu.Lock()
			out = append(out, m)
			mu.Unlock()
		}(ip)
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return less(out[i], out[j]) })
	return out
}
