package api

import (
	"net/http"

	"github.com/swarmlab/swarmlab/app/invoices/internal/records"
	"github.com/swarmlab/swarmlab/app/invoices/internal/web"
)

// Customer is what GET /Customers returns for each customer. Version says
// which release of the service answered (the rolling-upgrade exercise).
type Customer struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Address string `json:"address"`
	Version string `json:"version"`
}

// Customers is the customers service.
func Customers(store records.Store, info web.Info) http.Handler {
	rs := resource{kind: "customer", idField: "customerId", store: store, show: func(r records.Record) any {
		return Customer{ID: r["id"], Name: r["name"], Address: r["address"], Version: info.Version}
	}}
	put := func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Name    *string `json:"name"`
			Address *string `json:"address"`
		}
		if !web.Decode(w, r, &in) {
			return
		}
		name, ok := text(w, "name", in.Name, 200)
		if !ok {
			return
		}
		addr, ok := text(w, "address", in.Address, 500)
		if !ok {
			return
		}
		rs.create(w, r, records.Record{"name": name, "address": addr})
	}
	list := func(w http.ResponseWriter, r *http.Request) { rs.list(w, r, "") }
	return web.Headers(info, rs.routes("/Customers", put, list))
}
