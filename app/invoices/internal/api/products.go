package api

import (
	"net/http"

	"github.com/swarmlab/swarmlab/app/invoices/internal/records"
	"github.com/swarmlab/swarmlab/app/invoices/internal/web"
)

// Product is what GET /Products returns for each product.
type Product struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Catalogue is what an empty products Redis starts with (the seed's list).
var Catalogue = []string{"Apples", "Oranges", "Bananas", "Melons", "Lemons", "Carrots"}

// CatalogueRecords is Catalogue as records to seed.
func CatalogueRecords() []records.Record {
	out := make([]records.Record, len(Catalogue))
	for i, name := range Catalogue {
		out[i] = records.Record{"name": name}
	}
	return out
}

// Products is the products service.
func Products(store records.Store, info web.Info) http.Handler {
	rs := resource{kind: "product", idField: "productId", store: store, show: func(r records.Record) any {
		return Product{ID: r["id"], Name: r["name"]}
	}}
	put := func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Name *string `json:"name"`
		}
		if !web.Decode(w, r, &in) {
			return
		}
		name, ok := text(w, "name", in.Name, 200)
		if !ok {
			return
		}
		rs.create(w, r, records.Record{"name": name})
	}
	list := func(w http.ResponseWriter, r *http.Request) { rs.list(w, r, "") }
	return web.Headers(info, rs.routes("/Products", put, list))
}
