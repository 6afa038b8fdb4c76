package gate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/swarmlab/swarmlab/app/crud/internal/balance"
	"github.com/swarmlab/swarmlab/app/crud/internal/reqlog"
)

// The two ways the gate reaches storage over the overlay.
const (
	// ModeDNSRR: no IPVS (the lab's kernel), so no service VIP. The gate
	// resolves tasks.storage itself and balances over the tasks.
	ModeDNSRR = "dnsrr"
	// ModeVIP: the kernel has IPVS; the service's VIP balances.
	ModeVIP = "vip"
)

// StorageConfig says how to reach storage.
type StorageConfig struct {
	// Mode is ModeDNSRR or ModeVIP.
	Mode string
	// Addrs are host:port. With ModeDNSRR each host is resolved (every
	// ResolveEvery) and each address is a server; with ModeVIP each is
	// dialed as it is.
	Addrs        []string
	ResolveEvery time.Duration
	// DownFor is how long a task that failed is tried after the others.
	DownFor time.Duration
	// DialTimeout bounds a connection: a task on a lost node does not
	// answer at all, and the next one should get the request soon.
	DialTimeout time.Duration
	// Timeout bounds one request to storage, retries on other tasks
	// included; more than storage's own database retries take.
	Timeout time.Duration
	// Lookup resolves a host; net.DefaultResolver's if nil.
	Lookup func(ctx context.Context, host string) ([]string, error)
}

// Storage is the gate's client of the storage service.
type Storage struct {
	cfg    StorageConfig
	pool   *balance.Pool
	client *http.Client
}

// StorageMode checks a storage mode. The lab's publish modes are accepted
// too, so a stack can pass ${SWARMLAB_PUBLISH_MODE} on: host (no IPVS) is
// dnsrr, ingress (the routing mesh, so IPVS) is vip.
func StorageMode(m string) (string, error) {
	switch m {
	case ModeDNSRR, ModeVIP:
		return m, nil
	case "host":
		return ModeDNSRR, nil
	case "ingress":
		return ModeVIP, nil
	}
	return "", fmt.Errorf("storage mode %q is not %s or %s (nor host or ingress, the lab's publish modes)", m, ModeDNSRR, ModeVIP)
}

// NewStorage returns a client; it connects when used.
func NewStorage(cfg StorageConfig) (*Storage, error) {
	var err error
	if cfg.Mode, err = StorageMode(cfg.Mode); err != nil {
		return nil, err
	}
	if len(cfg.Addrs) == 0 {
		return nil, errors.New("no storage address")
	}
	if cfg.ResolveEvery <= 0 {
		cfg.ResolveEvery = 2 * time.Second
	}
	if cfg.DownFor <= 0 {
		cfg.DownFor = 5 * time.Second
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	s := &Storage{cfg: cfg}
	if cfg.Mode == ModeDNSRR {
		s.pool = &balance.Pool{Names: cfg.Addrs, Every: cfg.ResolveEvery, DownFor: cfg.DownFor, Lookup: cfg.Lookup}
	}
	d := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 15 * time.Second}
	s.client = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, dialError{err}
			}
			return c, nil
		},
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
	}}
	return s, nil
}

// dialError is a connection that was never made: the request was not sent,
// so another task may get it, whatever its method.
type dialError struct{ err error }

func (e dialError) Error() string { return e.err.Error() }
func (e dialError) Unwrap() error { return e.err }

// Path is how the gate reaches storage, and the servers it knows, for
// /healthz.
func (s *Storage) Path() map[string]any {
	out := map[string]any{"mode": s.cfg.Mode, "addrs": s.cfg.Addrs}
	if s.pool != nil {
		out["tasks"] = s.pool.Status()
	}
	return out
}

// Reply is storage's answer.
type Reply struct {
	Status int
	Body   []byte
	// ServedBy is the storage task that answered (its X-Served-By).
	ServedBy string
}

// Do sends one request to a storage task. A task that cannot be connected
// to is skipped for the next; a request that was sent and got no answer
// goes to the next task only if it is a read, else the error is
// ErrStorageUnknown. A PUT or DELETE sent again could land after writes
// acknowledged since, and undo them: idempotent is not enough (the crud
// e2e spec's history check caught a resent DELETE wiping four puts).
func (s *Storage) Do(ctx context.Context, method, path string, body []byte) (Reply, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	idempotent := method == http.MethodGet
	// Through a VIP, a second connection may reach another task.
	addrs := append(s.cfg.Addrs[:len(s.cfg.Addrs):len(s.cfg.Addrs)], s.cfg.Addrs...)
	if s.pool != nil {
		var err error
		if addrs, err = s.pool.Order(ctx); err != nil {
			return Reply{}, fmt.Errorf("storage: %w", err)
		}
	}
	var errs []error
	for _, addr := range addrs {
		rep, err := s.send(ctx, addr, method, path, body)
		if err == nil {
			return rep, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
		if s.pool != nil {
			s.pool.Failed(addr)
		}
		if ctx.Err() != nil {
			break
		}
		if !errors.As(err, new(dialError)) && !idempotent {
			return Reply{}, fmt.Errorf("%w: %w", ErrStorageUnknown, errors.Join(errs...))
		}
	}
	if s.pool != nil {
		s.pool.Refresh()
	}
	return Reply{}, fmt.Errorf("storage: no task answered: %w", errors.Join(errs...))
}

// ErrStorageUnknown is a write (PUT, DELETE) sent to storage with no
// answer: it may or may not have been done.
var ErrStorageUnknown = errors.New("storage did not answer a write it was sent: it may or may not have been done")

func (s *Storage) send(ctx context.Context, addr, method, path string, body []byte) (Reply, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, rd)
	if err != nil {
		return Reply{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	line := reqlog.From(ctx)
	req.Header.Set(reqlog.RequestHeader, line.Request)
	req.Header.Set(reqlog.SessionHeader, line.Session)
	resp, err := s.client.Do(req)
	if err != nil {
		return Reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return Reply{}, err
	}
	return Reply{Status: resp.StatusCode, Body: b, ServedBy: resp.Header.Get("X-Served-By")}, nil
}
