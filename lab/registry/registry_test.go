package registry

import "testing"

func TestName(t *testing.T) {
	for in, want := range map[string]string{
		"redis":           "library/redis",
		"redis:7":         "library/redis:7",
		"bitnami/redis:7": "bitnami/redis:7",
		"nginx:latest":    "library/nginx:latest",
	} {
		if got := Name(in); got != want {
			t.Errorf("Name(%q) = %q, want %q", in, got, want)
		}
	}
}
