package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/swarmlab/swarmlab/app/invoices/internal/records"
	"github.com/swarmlab/swarmlab/app/invoices/internal/web"
)

// Invoice is what GET /Invoices returns for each invoice.
type Invoice struct {
	ID         string `json:"id"`
	ProductID  string `json:"productId"`
	CustomerID string `json:"customerId"`
	Quantity   int64  `json:"quantity"`
	IssuedAt   string `json:"issuedAt"`
}

// Lookup says whether a record exists in another service. An error means
// the service could not tell (down, timing out, answering 5xx).
type Lookup interface {
	Exists(ctx context.Context, id string) (bool, error)
}

// Remote looks ids up with GET <Base><Path>/<id> on another service.
type Remote struct {
	Name   string // "customers", for error messages
	Base   string // "http://customers:8080"
	Path   string // "/Customers"
	Client *http.Client
}

// Exists implements Lookup: 200 yes, 404 no, anything else an error. A
// connection that fails is tried once more: with several replicas behind
// one DNS name, the next dial may reach a live one.
func (rm Remote) Exists(ctx context.Context, id string) (bool, error) {
	u := strings.TrimRight(rm.Base, "/") + rm.Path + "/" + url.PathEscape(id)
	var lastErr error
	for attempt := 0; attempt < 2; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return false, err
		}
		resp, err := rm.Client.Do(req)
		if err != nil {
			lastErr = err
			if ctx.Err() != nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			return true, nil
		case http.StatusNotFound:
			return false, nil
		default:
			return false, fmt.Errorf("%s answered %s", rm.Name, resp.Status)
		}
	}
	return false, fmt.Errorf("%s: %w", rm.Name, lastErr)
}

// lookupTimeout bounds the validation of one invoice against both services.
const lookupTimeout = 5 * time.Second

// Invoices is the invoices service. Every new invoice names a customer and a
// product that the other two services confirm exist: a missing one is a 400
// naming the field; a service that cannot answer is a 503, and the invoice
// is not stored.
func Invoices(store records.Store, customers, products Lookup, info web.Info) http.Handler {
	rs := resource{kind: "invoice", idField: "id", store: store, show: showInvoice}
	put := func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			CustomerID *string `json:"customerId"`
			ProductID  *string `json:"productId"`
			Quantity   *int64  `json:"quantity"`
		}
		if !web.Decode(w, r, &in) {
			return
		}
		cid, ok := text(w, "customerId", in.CustomerID, 100)
		if !ok {
			return
		}
		pid, ok := text(w, "productId", in.ProductID, 100)
		if !ok {
			return
		}
		switch {
		case in.Quantity == nil:
			web.Invalid(w, "quantity", "quantity is required")
			return
		case *in.Quantity <= 0:
			web.Invalid(w, "quantity", "quantity must be greater than 0")
			return
		}
		if !validate(w, r.Context(), []check{
			{"customerId", "customer", cid, customers},
			{"productId", "product", pid, products},
		}) {
			return
		}
		rs.create(w, r, records.Record{
			"customerId": cid, "productId": pid,
			"quantity": strconv.FormatInt(*in.Quantity, 10),
			"issuedAt": time.Now().UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		}, customerIndex(cid))
	}
	list := func(w http.ResponseWriter, r *http.Request) {
		index := ""
		if q := r.URL.Query(); q.Has("customer-id") {
			index = customerIndex(q.Get("customer-id"))
		}
		rs.list(w, r, index)
	}
	return web.Headers(info, rs.routes("/Invoices", put, list))
}

func customerIndex(id string) string { return "customer:" + id }

func showInvoice(r records.Record) any {
	q, _ := strconv.ParseInt(r["quantity"], 10, 64)
	return Invoice{ID: r["id"], ProductID: r["productId"], CustomerID: r["customerId"], Quantity: q, IssuedAt: r["issuedAt"]}
}

type check struct {
	field, what, id string
	lookup          Lookup
}

// validate looks every id up at once. A record that is certainly missing
// wins over a service that could not answer: the request is wrong either way.
func validate(w http.ResponseWriter, ctx context.Context, checks []check) bool {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	found := make([]bool, len(checks))
	errs := make([]error, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() { found[i], errs[i] = c.lookup.Exists(ctx, c.id) })
	}
	wg.Wait()
	for i, c := range checks {
		if errs[i] == nil && !found[i] {
			web.Invalid(w, c.field, fmt.Sprintf("no %s found for id %s", c.what, c.id))
			return false
		}
	}
	if err := errors.Join(errs...); err != nil {
		web.Error(w, http.StatusServiceUnavailable, "cannot validate the invoice now: "+err.Error())
		return false
	}
	return true
}
