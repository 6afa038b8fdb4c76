// Command invoices is the invoices service of the invoices app: invoices
// {id, productId, customerId, quantity, issuedAt} in its own Redis, each
// validated against the customers and products services.
package main

import (
	"context"
	"flag"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/swarmlab/swarmlab/app/invoices/internal/api"
	"github.com/swarmlab/swarmlab/app/invoices/internal/records"
	"github.com/swarmlab/swarmlab/app/invoices/internal/web"
)

var version = "v1"

func main() {
	f := web.CommonFlags("invoices-redis:6379")
	customers := flag.String("customers", web.Env("CUSTOMERS_URL", "http://customers:8080"), "customers service base URL [$CUSTOMERS_URL]")
	products := flag.String("products", web.Env("PRODUCTS_URL", "http://products:8080"), "products service base URL [$PRODUCTS_URL]")
	info := web.Info{Version: version, Host: web.Hostname()}
	web.Run(f, "invoices", info, func(_ context.Context, rdb *redis.Client) http.Handler {
		// Short-lived idle connections: replicas come and go behind one DNS
		// name (dnsrr), and a new connection re-resolves it.
		c := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
			IdleConnTimeout: 10 * time.Second, MaxIdleConnsPerHost: 16, ResponseHeaderTimeout: 3 * time.Second,
		}}
		return api.Invoices(records.NewRedis(rdb, "invoice"),
			api.Remote{Name: "customers", Base: *customers, Path: "/Customers", Client: c},
			api.Remote{Name: "products", Base: *products, Path: "/Products", Client: c},
			info)
	})
}
