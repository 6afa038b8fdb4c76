// Command gate is the crud app's public REST API: sessions in Redis (through
// Sentinel), items in the storage service. See app/crud/README.md.
package main

import (
	"flag"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/swarmlab/swarmlab/app/crud/internal/gate"
	"github.com/swarmlab/swarmlab/app/crud/internal/reqlog"
	"github.com/swarmlab/swarmlab/app/internal/env"
	"github.com/swarmlab/swarmlab/app/internal/svc"
)

// version is set at build time (-X main.version=v2): the e2e spec rolls the
// gate from one to the next.
var version = "v1"

func main() {
	listen := env.String("listen", "LISTEN_ADDR", ":8080", "HTTP listen address")
	task := env.String("task", "TASK_NAME", env.Hostname(), "this task's name, sent in X-Served-By (the stack sets {{.Task.Name}})")
	sentinels := env.String("sentinels", "CRUD_SENTINELS", "sentinel:26379", "Redis Sentinels, comma-separated host:port")
	master := env.String("redis-master", "CRUD_REDIS_MASTER", "mymaster", "the master's name in Sentinel")
	redisAddr := env.String("redis", "CRUD_REDIS_ADDR", "", "a Redis to use directly instead of through Sentinel (development only)")
	replicas := env.Int("redis-replicas", "CRUD_REDIS_REPLICAS", 1, "replicas that must have a session write before it is acknowledged (WAIT); 0 = none, development only")
	waitTimeout := env.Duration("redis-wait-timeout", "CRUD_REDIS_WAIT_TIMEOUT", time.Second, "how long WAIT waits for the replicas; then the answer is 503")
	ttl := env.Duration("session-ttl", "CRUD_SESSION_TTL", 24*time.Hour, "a session expires this long after its last request")
	mode := env.String("storage-mode", "CRUD_STORAGE_MODE", gate.ModeDNSRR, "how to reach storage: dnsrr (resolve CRUD_STORAGE_TASKS, balance here) or vip (CRUD_STORAGE_ADDR, the service VIP, needs IPVS); host and ingress, the lab's publish modes, mean dnsrr and vip")
	tasks := env.String("storage-tasks", "CRUD_STORAGE_TASKS", "tasks.storage:8080", "dnsrr: names resolving to every storage task, comma-separated host:port")
	vip := env.String("storage-addr", "CRUD_STORAGE_ADDR", "storage:8080", "vip: the storage service, host:port")
	every := env.Duration("storage-resolve-every", "CRUD_STORAGE_RESOLVE_EVERY", 2*time.Second, "dnsrr: how often the storage tasks are resolved again")
	timeout := env.Duration("storage-timeout", "CRUD_STORAGE_TIMEOUT", 30*time.Second, "most time one request to storage may take, retries included")
	healthcheck := flag.Bool("healthcheck", false, "probe /healthz on the listen address and exit 0 if healthy")
	flag.Parse()
	if *healthcheck {
		os.Exit(svc.Healthcheck(*listen))
	}

	m, err := gate.StorageMode(*mode)
	if err != nil {
		log.Fatalf("CRUD_STORAGE_MODE: %v", err)
	}
	addrs := env.List(*tasks)
	if m == gate.ModeVIP {
		addrs = env.List(*vip)
	}
	st, err := gate.NewStorage(gate.StorageConfig{Mode: m, Addrs: addrs, ResolveEvery: *every, Timeout: *timeout})
	if err != nil {
		log.Fatalf("storage: %v", err)
	}

	// The read timeout outlasts WAIT, which a pipeline reads with it.
	readTimeout := *waitTimeout + 2*time.Second
	var rdb *redis.Client
	where := *redisAddr
	if *redisAddr != "" {
		rdb = redis.NewClient(&redis.Options{Addr: *redisAddr, DialTimeout: time.Second, ReadTimeout: readTimeout, WriteTimeout: time.Second})
	} else {
		rdb = redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: *master, SentinelAddrs: env.List(*sentinels),
			DialTimeout: time.Second, ReadTimeout: readTimeout, WriteTimeout: time.Second,
		})
		where = "master " + *master + " through sentinels " + *sentinels
	}
	defer rdb.Close()

	s := &gate.Server{
		Sessions: &gate.RedisSessions{Client: rdb, Replicas: *replicas, WaitTimeout: *waitTimeout, TTL: *ttl},
		Storage:  st, Task: *task, SessionTimeout: readTimeout + time.Second,
	}
	ctx, stop := svc.SignalContext()
	defer stop()
	srv := &http.Server{Addr: *listen, Handler: s.Handler(reqlog.New(os.Stdout, "gate", *task)),
		ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10}
	log.Printf("gate %s %s: listening on %s, sessions in redis %s (WAIT %d), storage %s %v", version, *task, *listen, where, *replicas, m, addrs)
	if err := svc.Serve(ctx, srv); err != nil {
		log.Fatal(err)
	}
}
