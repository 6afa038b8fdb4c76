package history

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// A store is what the fake clients drive: the CRUD app's three calls, each
// of which may time out (ok false), leaving the client not knowing.
type store interface {
	put(key, value string) (version int64, ok bool)
	get(key string) (value string, version int64, found, ok bool)
	del(key string) (ok bool)
}

// jitter sleeps up to d, so that the clients' operations overlap.
func jitter(d time.Duration) { time.Sleep(time.Duration(rand.Int64N(int64(d)))) }

type item struct {
	value   string
	version int64
	exists  bool
}

// mapStore is linearizable: one mutex, and each operation takes effect
// inside its call. A key's version counter survives a delete.
type mapStore struct {
	mu    sync.Mutex
	items map[string]item
}

func newMapStore() *mapStore { return &mapStore{items: map[string]item{}} }

func (s *mapStore) put(key, value string) (int64, bool) {
	jitter(100 * time.Microsecond)
	defer jitter(100 * time.Microsecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.items[key]
	it = item{value: value, version: it.version + 1, exists: true}
	s.items[key] = it
	return it.version, true
}

func (s *mapStore) get(key string) (string, int64, bool, bool) {
	jitter(100 * time.Microsecond)
	defer jitter(100 * time.Microsecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.items[key]
	return it.value, it.version, it.exists, true
}

func (s *mapStore) del(key string) bool {
	jitter(100 * time.Microsecond)
	defer jitter(100 * time.Microsecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.items[key]
	it.exists, it.value = false, ""
	s.items[key] = it
	return true
}

// laggingStore is the broken system of the issue: writes commit on the
// primary, and reads go half the time to a replica that applies them lag
// later (storage reading without wsrep_sync_wait on a lagging node).
type laggingStore struct {
	primary *mapStore
	lag     time.Duration

	mu      sync.Mutex
	replica map[string]item
	stale   map[string]bool // keys read stale: the replica behind the primary
}

func newLaggingStore(lag time.Duration) *laggingStore {
	return &laggingStore{primary: newMapStore(), lag: lag, replica: map[string]item{}, stale: map[string]bool{}}
}

// replicate applies the primary's state of key to the replica, lag later.
// The primary's state is taken then, so the replica never goes backwards.
func (s *laggingStore) replicate(key string) {
	time.AfterFunc(s.lag, func() {
		s.primary.mu.Lock()
		it := s.primary.items[key]
		s.primary.mu.Unlock()
		s.mu.Lock()
		if it.version >= s.replica[key].version {
			s.replica[key] = it
		}
		s.mu.Unlock()
	})
}

func (s *laggingStore) put(key, value string) (int64, bool) {
	v, ok := s.primary.put(key, value)
	s.replicate(key)
	return v, ok
}

func (s *laggingStore) del(key string) bool {
	ok := s.primary.del(key)
	s.replicate(key)
	return ok
}

func (s *laggingStore) get(key string) (string, int64, bool, bool) {
	if rand.IntN(2) == 0 {
		return s.primary.get(key)
	}
	jitter(100 * time.Microsecond)
	defer jitter(100 * time.Microsecond)
	s.primary.mu.Lock()
	p := s.primary.items[key]
	s.primary.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.replica[key]
	if it != p {
		s.stale[key] = true
	}
	return it.value, it.version, it.exists, true
}

// nth picks every nth call, and keeps the keys it picked.
type nth struct {
	n     int
	mu    sync.Mutex
	calls int
	keys  map[string]bool
}

func every(n int) *nth { return &nth{n: n, keys: map[string]bool{}} }

func (e *nth) pick(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls++
	if e.calls%e.n != 0 {
		return false
	}
	e.keys[key] = true
	return true
}

// droppingStore acknowledges every nth put, with the version it would
// have had, and forgets it.
type droppingStore struct {
	*mapStore
	drop *nth
}

func (s *droppingStore) put(key, value string) (int64, bool) {
	if !s.drop.pick(key) {
		return s.mapStore.put(key, value)
	}
	jitter(100 * time.Microsecond)
	s.mapStore.mu.Lock()
	defer s.mapStore.mu.Unlock()
	return s.mapStore.items[key].version + 1, true
}

// doublingStore applies every nth put twice (a retried commit done twice)
// and answers with the first one's version: the value reads back right,
// one version further on.
type doublingStore struct {
	*mapStore
	twice *nth
}

func (s *doublingStore) put(key, value string) (int64, bool) {
	if !s.twice.pick(key) {
		return s.mapStore.put(key, value)
	}
	s.mapStore.mu.Lock()
	defer s.mapStore.mu.Unlock()
	it := s.mapStore.items[key]
	s.mapStore.items[key] = item{value: value, version: it.version + 2, exists: true}
	return it.version + 1, true
}

// timeoutStore is linearizable, but one call in every n times out: the
// client gets no answer, and the store did it, does it a little later
// (after the client gave up), or never does it.
type timeoutStore struct {
	*mapStore
	n     int
	wg    sync.WaitGroup
	mu    sync.Mutex
	calls int
	fates map[string]int // "done", "late", "never": how many of each
}

// fate decides a call's: 0 answered, else how it times out.
func (s *timeoutStore) fate() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.calls%s.n != 0 {
		return ""
	}
	f := []string{"done", "late", "never"}[rand.IntN(3)]
	s.fates[f]++
	return f
}

func (s *timeoutStore) timeout(f string, do func()) {
	switch f {
	case "done":
		do()
	case "late":
		s.wg.Go(func() { time.Sleep(2 * time.Millisecond); do() })
	}
	time.Sleep(time.Millisecond) // the client's timeout
}

func (s *timeoutStore) put(key, value string) (int64, bool) {
	if f := s.fate(); f != "" {
		s.timeout(f, func() { s.mapStore.put(key, value) })
		return 0, false
	}
	return s.mapStore.put(key, value)
}

func (s *timeoutStore) get(key string) (string, int64, bool, bool) {
	if f := s.fate(); f != "" {
		s.timeout(f, func() { s.mapStore.get(key) })
		return "", 0, false, false
	}
	return s.mapStore.get(key)
}

func (s *timeoutStore) del(key string) bool {
	if f := s.fate(); f != "" {
		s.timeout(f, func() { s.mapStore.del(key) })
		return false
	}
	return s.mapStore.del(key)
}

// drive runs clients concurrent clients, each doing ops operations on keys
// keys (45% puts of unique values, 45% gets, 10% deletes), then reads every
// key once more, and returns the history.
func drive(t *testing.T, s store, clients, ops, keys int) []Op {
	t.Helper()
	h := New()
	key := func(i int) string { return fmt.Sprintf("k%d", i) }
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for n := range ops {
				k := key(rand.IntN(keys))
				switch r := rand.IntN(100); {
				case r < 45:
					v := fmt.Sprintf("c%d-%d", c, n)
					call := h.Invoke(c, Put, k, v)
					version, ok := s.put(k, v)
					if !ok {
						call.Return(Output{Unknown: true, Err: "timeout"})
						continue
					}
					call.Return(Output{Status: 200, Value: v, Version: version})
				case r < 90:
					get(h, s, c, k)
				default:
					call := h.Invoke(c, Delete, k, "")
					if !s.del(k) {
						call.Return(Output{Unknown: true, Err: "timeout"})
						continue
					}
					call.Return(Output{Status: 204})
				}
			}
		})
	}
	wg.Wait()
	for i := range keys {
		get(h, s, clients, key(i))
	}
	return h.Ops()
}

func get(h *History, s store, client int, k string) {
	call := h.Invoke(client, Get, k, "")
	v, version, found, ok := s.get(k)
	switch {
	case !ok:
		call.Return(Output{Unknown: true, Err: "timeout"})
	case !found:
		call.Return(Output{Status: 404})
	default:
		call.Return(Output{Status: 200, Value: v, Version: version})
	}
}
