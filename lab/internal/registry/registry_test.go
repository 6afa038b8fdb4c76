package registry

import (
	"reflect"
	"strings"
	"testing"
)

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

func TestParseAccessLog(t *testing.T) {
	// Lines as distribution 2.8 (Debian's docker-registry) writes them.
	log := `time="2026-12-01T21:21:31.292987425Z" level=info msg="listening on [::]:5000" go.version=go1.19.8 service=registry version=2.8.2+ds1
time="2026-12-01T21:21:33.303105199Z" level=error msg="response completed with error" err.code="manifest unknown" http.request.method=GET http.request.remoteaddr="10.99.0.10:52094" http.request.uri=/v2/library/nginx/manifests/latest http.response.status=404
10.99.0.10 - - [01/Dec/2026:21:21:33 +0000] "GET /v2/library/nginx/manifests/latest HTTP/1.1" 404 96 "" "docker/20.10.24 go/go1.19.8"
10.99.0.11 - - [01/Dec/2026:21:21:34 +0000] "GET /v2/library/nginx/manifests/sha256:0123 HTTP/1.1" 200 1024 "" "docker/20.10.24"
10.99.0.1 - - [01/Dec/2026:21:21:35 +0000] "HEAD /v2/library/nginx/manifests/latest HTTP/1.1" 200 0 "" "docker/27.0"
`
	got, err := ParseAccessLog(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	want := []Request{
		{Remote: "10.99.0.10", Method: "GET", Path: "/v2/library/nginx/manifests/latest", Status: 404, UserAgent: "docker/20.10.24 go/go1.19.8"},
		{Remote: "10.99.0.11", Method: "GET", Path: "/v2/library/nginx/manifests/sha256:0123", Status: 200, UserAgent: "docker/20.10.24"},
		{Remote: "10.99.0.1", Method: "HEAD", Path: "/v2/library/nginx/manifests/latest", Status: 200, UserAgent: "docker/27.0"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseAccessLog:\n got %+v\nwant %+v", got, want)
	}
	if !got[1].ManifestGet("library/nginx") || got[2].ManifestGet("library/nginx") || got[1].ManifestGet("library/redis") {
		t.Error("ManifestGet: want true for a GET of the repo's manifest only")
	}
}
