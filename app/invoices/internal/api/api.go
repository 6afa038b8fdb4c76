// Package api is the HTTP API of the three services, route for route
// compatible with the seed's (tsoa) services:
//
//	PUT /Customers      {"name", "address"}                → 200 "<id>"
//	GET /Customers      → [{"id", "name", "address", "version"}], newest first
//	GET /Customers/{id} → {...} or 404 {"status", "error", "customerId"}
//	PUT /Products       {"name"}                           → 200 "<id>"
//	GET /Products, GET /Products/{id}
//	PUT /Invoices       {"customerId", "productId", "quantity"} → 200 "<id>"
//	GET /Invoices[?customer-id=<id>], GET /Invoices/{id}
//
// Errors have the seed's shape, {"status": 400, "error": "...", "field": "..."}.
package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/swarmlab/swarmlab/app/invoices/internal/records"
	"github.com/swarmlab/swarmlab/app/invoices/internal/web"
)

// storeTimeout bounds one request's Redis work, so a Redis that is gone
// gives a 503 rather than a hung request.
const storeTimeout = 3 * time.Second

// resource is the part the three services share: a kind of record, how to
// show it, and how its 404 names the id.
type resource struct {
	kind    string // "customer"
	idField string // the field a 404 names the id by
	store   records.Store
	show    func(records.Record) any
}

func (rs resource) list(w http.ResponseWriter, r *http.Request, index string) {
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	recs, err := rs.store.List(ctx, index)
	if err != nil {
		web.Unavailable(w, "storage", err)
		return
	}
	out := make([]any, 0, len(recs))
	for _, rec := range recs {
		out = append(out, rs.show(rec))
	}
	web.JSON(w, http.StatusOK, out)
}

func (rs resource) get(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	id := r.PathValue("id")
	rec, err := rs.store.Get(ctx, id)
	switch {
	case errors.Is(err, records.ErrNotFound):
		web.Error(w, http.StatusNotFound, "no such "+rs.kind, rs.idField, id)
	case err != nil:
		web.Unavailable(w, "storage", err)
	default:
		web.JSON(w, http.StatusOK, rs.show(rec))
	}
}

// create stores fields and answers the new id as a JSON string, as the seed did.
func (rs resource) create(w http.ResponseWriter, r *http.Request, fields records.Record, indexes ...string) {
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	id, err := rs.store.Create(ctx, fields, indexes...)
	if err != nil {
		web.Unavailable(w, "storage", err)
		return
	}
	web.JSON(w, http.StatusOK, id)
}

// routes registers the collection's routes and /healthz on a new mux.
func (rs resource) routes(path string, put http.HandlerFunc, list http.HandlerFunc) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+path, list)
	mux.HandleFunc("GET "+path+"/{id}", rs.get)
	mux.HandleFunc("PUT "+path, put)
	mux.HandleFunc(path, methodNotAllowed("GET, PUT"))
	mux.HandleFunc(path+"/{id}", methodNotAllowed("GET"))
	mux.HandleFunc("GET /healthz", rs.health)
	mux.HandleFunc("/", web.NotFound)
	return mux
}

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		web.Error(w, http.StatusMethodNotAllowed, r.Method+" is not allowed here; use "+allow)
	}
}

// health answers 200 only while storage answers: a replica without its
// Redis can serve nothing, and a rolling update must not count it as up.
func (rs resource) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := rs.store.Ping(ctx); err != nil {
		web.Unavailable(w, "storage", err)
		return
	}
	web.JSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// text checks a required string field: present, not blank, not too long.
func text(w http.ResponseWriter, field string, v *string, max int) (string, bool) {
	if v == nil || strings.TrimSpace(*v) == "" {
		web.Invalid(w, field, field+" is required")
		return "", false
	}
	s := strings.TrimSpace(*v)
	if len(s) > max {
		web.Invalid(w, field, field+" is longer than the limit")
		return "", false
	}
	return s, true
}
