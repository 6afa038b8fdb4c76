package storage

import (
	"context"
	"sort"
	"strings"
	"sync"
)

// Memory is a Store in a map: for tests (of storage's handlers, and as the
// storage behind the gate's tests).
type Memory struct {
	mu    sync.Mutex
	items map[string]Item
	// Err, when set, is what every call returns (a database that is down).
	Err error
}

// NewMemory returns an empty Memory.
func NewMemory() *Memory { return &Memory{items: map[string]Item{}} }

func (m *Memory) Put(_ context.Context, id, value string) (Item, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Err != nil {
		return Item{}, m.Err
	}
	it := Item{ID: id, Value: value, Version: m.items[id].Version + 1}
	m.items[id] = it
	return it, nil
}

func (m *Memory) Get(_ context.Context, id string) (Item, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Err != nil {
		return Item{}, m.Err
	}
	it, ok := m.items[id]
	if !ok {
		return Item{}, ErrNotFound
	}
	return it, nil
}

func (m *Memory) Delete(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Err != nil {
		return m.Err
	}
	delete(m.items, id)
	return nil
}

func (m *Memory) List(_ context.Context, prefix string) ([]Item, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Err != nil {
		return nil, m.Err
	}
	out := []Item{}
	for id, it := range m.items {
		if strings.HasPrefix(id, prefix) {
			out = append(out, it)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (m *Memory) Ping(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.Err
}

// SetErr makes every later call fail with err (nil: work again).
func (m *Memory) SetErr(err error) {
	m.mu.Lock()
	m.Err = err
	m.mu.Unlock()
}
