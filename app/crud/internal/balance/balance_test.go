package balance

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestOrderTakesServersInTurn(t *testing.T) {
	p := &Pool{Names: []string{"10.0.0.2:80", "10.0.0.1:80", "10.0.0.3:80"}}
	var firsts []string
	for range 6 {
		o, err := p.Order(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(o) != 3 {
			t.Fatalf("order %v, want all three", o)
		}
		firsts = append(firsts, o[0])
	}
	if got := strings.Join(firsts, " "); got != "10.0.0.1:80 10.0.0.2:80 10.0.0.3:80 10.0.0.1:80 10.0.0.2:80 10.0.0.3:80" {
		t.Errorf("first servers %s, want each in turn", got)
	}
}

func TestFailedServerGoesLastForAWhile(t *testing.T) {
	p := &Pool{Names: []string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"}, DownFor: 50 * time.Millisecond}
	p.Failed("10.0.0.2:80")
	for range 3 {
		o, _ := p.Order(context.Background())
		if o[2] != "10.0.0.2:80" {
			t.Errorf("order %v, want the failed server last", o)
		}
	}
	if s := p.Status()["10.0.0.2:80"]; s != "failed lately" {
		t.Errorf("status %q", s)
	}
	time.Sleep(60 * time.Millisecond)
	seen := map[string]bool{}
	for range 3 {
		o, _ := p.Order(context.Background())
		seen[o[0]] = true
	}
	if !seen["10.0.0.2:80"] {
		t.Errorf("the server is not back in turn after DownFor")
	}
}

type fakeDNS struct {
	mu    sync.Mutex
	ips   []string
	err   error
	calls int
}

func (d *fakeDNS) lookup(_ context.Context, host string) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls++
	if host != "tasks.storage" {
		return nil, errors.New("no such host " + host)
	}
	return slices.Clone(d.ips), d.err
}

func TestNamesAreResolvedAgainEvery(t *testing.T) {
	dns := &fakeDNS{ips: []string{"10.0.1.1", "10.0.1.2"}}
	p := &Pool{Names: []string{"tasks.storage:8080"}, Every: 40 * time.Millisecond, Lookup: dns.lookup}
	o, err := p.Order(context.Background())
	if err != nil || len(o) != 2 || !slices.Contains(o, "10.0.1.2:8080") {
		t.Fatalf("order %v %v", o, err)
	}
	dns.mu.Lock()
	dns.ips = []string{"10.0.1.3"}
	dns.mu.Unlock()
	if o, _ := p.Order(context.Background()); len(o) != 2 {
		t.Errorf("order %v within Every, want the cached two", o)
	}
	time.Sleep(50 * time.Millisecond)
	if o, _ := p.Order(context.Background()); !slices.Equal(o, []string{"10.0.1.3:8080"}) {
		t.Errorf("order %v after Every, want the new task", o)
	}
	// A failed resolution keeps the last list.
	dns.mu.Lock()
	dns.err = errors.New("dns down")
	dns.mu.Unlock()
	p.Refresh()
	if o, err := p.Order(context.Background()); err != nil || !slices.Equal(o, []string{"10.0.1.3:8080"}) {
		t.Errorf("order %v %v with DNS down, want the last list", o, err)
	}
}

func TestEveryZeroResolvesEachTime(t *testing.T) {
	dns := &fakeDNS{ips: []string{"10.0.1.1"}}
	p := &Pool{Names: []string{"tasks.storage:3306"}, Lookup: dns.lookup}
	p.Order(context.Background())
	p.Order(context.Background())
	if dns.calls != 2 {
		t.Errorf("%d lookups, want one per Order", dns.calls)
	}
	dns.err = errors.New("dns down")
	if _, err := p.Order(context.Background()); err == nil {
		t.Errorf("no error with DNS down and nothing to fall back on")
	}
	if _, err := (&Pool{Names: []string{"nowhere:1"}, Lookup: dns.lookup}).Order(context.Background()); err == nil {
		t.Errorf("no error for a name that resolves to nothing")
	}
}
