package invoices_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/swarmlab/swarmlab/lab/stack"
)

// The stack file keeps the workshop contract: the service names, images,
// replicas and health checks other helpers and the exercises rely on.
func TestStackFileKeepsTheContract(t *testing.T) {
	imgs, err := stack.Images("stack.yml")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SWARMLAB_PUBLISH_MODE": "host"}
	for _, name := range []string{"customers", "customers-v2", "products", "invoices", "webapp"} {
		if _, ok := imgs[name]; !ok {
			t.Errorf("x-swarmlab.images has no %s", name)
		}
		env[stack.ImageEnv(name)] = "registry:5000/swarmlab/" + name + ":test"
	}
	if got := imgs["customers-v2"]; got.LDFlags != "-X main.version=v2" || got.Go[0] != "./cmd/customers" {
		t.Errorf("customers-v2 = %+v, want ./cmd/customers built with -X main.version=v2", got)
	}
	cfg, err := stack.Load("stack.yml", env)
	if err != nil {
		t.Fatal(err)
	}
	svcs := map[string]int{}
	for i, s := range cfg.Services {
		svcs[s.Name] = i
	}
	for _, name := range []string{"gateway", "webapp", "customers", "products", "invoices", "customers-redis", "products-redis", "invoices-redis"} {
		i, ok := svcs[name]
		if !ok {
			t.Errorf("no service %s", name)
			continue
		}
		s := cfg.Services[i]
		switch {
		case name == "gateway":
			if s.Image != "nginx" || len(s.Ports) != 1 || s.Ports[0].Published != 80 || s.Ports[0].Mode != "host" {
				t.Errorf("gateway: image %q ports %+v, want nginx on 80 in host mode", s.Image, s.Ports)
			}
			if s.Deploy.Labels["io.swarmlab.url.app"] != "http://{addr}/" || !strings.Contains(strings.Join(s.Deploy.Placement.Constraints, ","), "node.role == manager") {
				t.Errorf("gateway: labels %v placement %v", s.Deploy.Labels, s.Deploy.Placement)
			}
		case strings.HasSuffix(name, "-redis"):
			if s.Image != "redis:7" || !strings.Contains(strings.Join(s.Command, " "), "--appendonly yes") || len(s.Volumes) != 1 {
				t.Errorf("%s: image %q command %v volumes %v, want redis:7 with appendonly on a volume", name, s.Image, s.Command, s.Volumes)
			}
		default:
			if s.Image != env[stack.ImageEnv(name)] || s.Deploy.Replicas == nil || *s.Deploy.Replicas != 2 || s.Deploy.EndpointMode != "dnsrr" {
				t.Errorf("%s: image %q replicas %v endpoint mode %q, want its built image, 2 replicas, dnsrr", name, s.Image, s.Deploy.Replicas, s.Deploy.EndpointMode)
			}
		}
		if name == "gateway" {
			continue
		}
		hc := s.HealthCheck
		// The first probe runs one interval after the start (Docker 20.10
		// has no start_interval), so the interval is short; a task is
		// declared unhealthy only after 25 s of failed probes.
		if hc == nil || hc.Interval == nil || time.Duration(*hc.Interval) != 2*time.Second || time.Duration(*hc.Timeout) != 5*time.Second ||
			hc.Retries == nil || time.Duration(*hc.Retries)*time.Duration(*hc.Interval) < 25*time.Second || time.Duration(*hc.StartPeriod) != 20*time.Second {
			t.Errorf("%s: health check %+v, want interval 2s, timeout 5s, 25 s of retries, start_period 20s", name, hc)
		}
	}
	uc := cfg.Services[svcs["customers"]].Deploy.UpdateConfig
	if uc == nil || uc.Order != "start-first" || uc.FailureAction != "rollback" {
		t.Errorf("customers update_config %+v, want start-first with failure_action rollback", uc)
	}
	if _, err := os.Stat(cfg.Configs["gateway_conf"].File); err != nil {
		t.Errorf("gateway config: %v", err)
	}
}
