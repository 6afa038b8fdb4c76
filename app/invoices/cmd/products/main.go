// Command products is the products service of the invoices app: products
// {id, name} in its own Redis. The first replica to meet an empty Redis
// stores the catalogue; restarts and other replicas never store it again.
package main

import (
	"context"
	"log"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/swarmlab/swarmlab/app/invoices/internal/api"
	"github.com/swarmlab/swarmlab/app/invoices/internal/records"
	"github.com/swarmlab/swarmlab/app/invoices/internal/web"
)

var version = "v1"

func main() {
	f := web.CommonFlags("products-redis:6379")
	info := web.Info{Version: version, Host: web.Hostname()}
	web.Run(f, "products", info, func(ctx context.Context, rdb *redis.Client) http.Handler {
		store := records.NewRedis(rdb, "product")
		go seed(ctx, store)
		return api.Products(store, info)
	})
}

// seed retries until Redis answers: the service may start before it.
func seed(ctx context.Context, store *records.Redis) {
	wait := 100 * time.Millisecond
	for {
		stored, err := store.SeedOnce(ctx, api.CatalogueRecords())
		if err == nil {
			if stored {
				log.Printf("stored the catalogue of %d products", len(api.Catalogue))
			} else {
				log.Printf("catalogue already stored; left as it is")
			}
			return
		}
		log.Printf("%v (retrying in %v)", err, wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}
