// Command customers is the customers service of the invoices app: customers
// {id, name, address} in its own Redis. Build with -ldflags "-X
// main.version=v2" for the rolling-upgrade exercise's second release.
package main

import (
	"context"
	"net/http"

	"github.com/redis/go-redis/v9"

	"github.com/swarmlab/swarmlab/app/invoices/internal/api"
	"github.com/swarmlab/swarmlab/app/invoices/internal/records"
	"github.com/swarmlab/swarmlab/app/invoices/internal/web"
)

var version = "v1"

func main() {
	f := web.CommonFlags("customers-redis:6379")
	info := web.Info{Version: version, Host: web.Hostname()}
	web.Run(f, "customers", info, func(_ context.Context, rdb *redis.Client) http.Handler {
		return api.Customers(records.NewRedis(rdb, "customer"), info)
	})
}
