package records

import (
	"context"
	"maps"
	"strconv"
	"sync"
)

// Memory is a Store in a map, for unit tests. Down makes every call fail as
// an unreachable Redis would.
type Memory struct {
	mu      sync.Mutex
	recs    map[string]Record
	order   []string
	indexes map[string][]string
	next    int
	Down    error
}

// NewMemory returns an empty Memory.
func NewMemory() *Memory {
	return &Memory{recs: map[string]Record{}, indexes: map[string][]string{}}
}

// Create implements Store.
func (m *Memory) Create(_ context.Context, fields Record, indexes ...string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Down != nil {
		return "", m.Down
	}
	m.next++
	id := "id-" + strconv.Itoa(m.next)
	r := maps.Clone(fields)
	r["id"] = id
	m.recs[id] = r
	m.order = append([]string{id}, m.order...)
	for _, i := range indexes {
		m.indexes[i] = append([]string{id}, m.indexes[i]...)
	}
	return id, nil
}

// Get implements Store.
func (m *Memory) Get(_ context.Context, id string) (Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Down != nil {
		return nil, m.Down
	}
	r, ok := m.recs[id]
	if !ok {
		return nil, ErrNotFound
	}
	return maps.Clone(r), nil
}

// List implements Store.
func (m *Memory) List(_ context.Context, index string) ([]Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Down != nil {
		return nil, m.Down
	}
	ids := m.order
	if index != "" {
		ids = m.indexes[index]
	}
	out := []Record{}
	for _, id := range ids {
		out = append(out, maps.Clone(m.recs[id]))
	}
	return out, nil
}

// Ping implements Store.
func (m *Memory) Ping(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.Down
}
