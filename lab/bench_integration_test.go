//go:build integration

package lab_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/swarmlab/swarmlab/lab"
	"github.com/swarmlab/swarmlab/lab/labtest"
)

// BenchmarkUp measures `up` to a converged swarm, with images built and the
// registry cache warm. Teardown is not timed.
//
//	go test -tags integration -run '^$' -bench BenchmarkUp -benchtime 3x ./lab/
func BenchmarkUp(b *testing.B) {
	for _, name := range []string{"swarm-3", "vote-6"} {
		b.Run(name, func(b *testing.B) {
			topo := shipped(b, name)
			ctx := context.Background()
			for i := 0; i < b.N; i++ {
				l, err := labtest.UpFor(ctx, topo, lab.Options{Name: "bench-" + name})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				release := labtest.RemoveOnInterrupt(l)
				err = l.Down(ctx)
				release()
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// BenchmarkNodeIdleMemory reports the memory of one idle node (its dockerd,
// containerd and swarm agent) 10 s after the swarm converged.
//
//	go test -tags integration -run '^$' -bench BenchmarkNodeIdleMemory -benchtime 1x ./lab/
func BenchmarkNodeIdleMemory(b *testing.B) {
	ctx := context.Background()
	l, err := labtest.UpFor(ctx, shipped(b, "swarm-3"), lab.Options{Name: "bench-mem"})
	if err != nil {
		b.Fatal(err)
	}
	defer labtest.RemoveOnInterrupt(l)()
	defer l.Down(ctx)
	time.Sleep(10 * time.Second)
	var worst float64
	for _, n := range l.Cluster().Nodes() {
		res, err := l.Host().ContainerStats(ctx, "swarmlab-bench-mem-"+n.Name(), client.ContainerStatsOptions{Stream: false})
		if err != nil {
			b.Fatal(err)
		}
		var st container.StatsResponse
		err = json.NewDecoder(res.Body).Decode(&st)
		res.Body.Close()
		if err != nil {
			b.Fatal(err)
		}
		// As `docker stats` shows it: usage less the page cache.
		mib := float64(st.MemoryStats.Usage-st.MemoryStats.Stats["cache"]) / (1 << 20)
		b.Logf("node %s (%s): %.1f MiB", n.Name(), n.Role(), mib)
		if mib > worst {
			worst = mib
		}
	}
	b.ReportMetric(worst, "MiB/node(max)")
}
