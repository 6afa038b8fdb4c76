// Package storage is the crud app's storage service: the only program that
// talks to the database. Its HTTP API, for the gate:
//
//	PUT    /items/{id}      {"value": "..."} → 200 the item, version one more
//	GET    /items/{id}      → 200 the item, or 404
//	DELETE /items/{id}      → 204 (also when there was no such item)
//	GET    /items?prefix=P  → 200 [items whose id starts with P], by id
//	GET    /healthz         → 200 while a database node answers
//
// A 200 to a PUT or a 204 to a DELETE is sent only once the database's
// COMMIT returned. A 503 is no promise either way: the write may or may not
// have happened (the database did not answer, or not in time). Every answer
// carries X-Served-By: <this task>.
package storage

import (
	"context"
	"errors"

	"github.com/swarmlab/swarmlab/app/crud/internal/api"
)

// Item is one stored item.
type Item = api.Item

// ErrNotFound is a Get of an id that has no item.
var ErrNotFound = errors.New("no such item")

// Store is where items live: MariaDB/Galera (SQL) in the service, memory in
// tests.
type Store interface {
	// Put sets id's value and adds one to its version (1 for a new item),
	// in one transaction, and returns the item as committed.
	Put(ctx context.Context, id, value string) (Item, error)
	// Get returns id's item or ErrNotFound.
	Get(ctx context.Context, id string) (Item, error)
	// Delete removes id's item, if there is one.
	Delete(ctx context.Context, id string) error
	// List returns the items whose id starts with prefix, ordered by id
	// (bytewise), never nil.
	List(ctx context.Context, prefix string) ([]Item, error)
	// Ping reports whether the store can answer.
	Ping(ctx context.Context) error
}
