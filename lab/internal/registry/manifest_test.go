package registry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestManifestConfigIs(t *testing.T) {
	const id = "sha256:aaaa"
	single := `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"digest":"sha256:aaaa"},"layers":[{"digest":"sha256:l1"}]}`
	for _, c := range []struct {
		name, mt, body, want string
		ok                   bool
	}{
		{"same image", mediaDockerManifest, single, id, true},
		{"same image, media type in the body only", "", single, id, true},
		{"other image", mediaDockerManifest, single, "sha256:bbbb", false},
		{"no local id", mediaDockerManifest, single, "", false},
		{"oci", mediaOCIManifest, `{"config":{"digest":"sha256:aaaa"},"layers":[{}]}`, id, true},
		{"a list resolves per platform", "application/vnd.docker.distribution.manifest.list.v2+json", `{"manifests":[]}`, id, false},
		{"schema 1", "application/vnd.docker.distribution.manifest.v1+prettyjws", `{"schemaVersion":1}`, id, false},
		{"no layers", mediaDockerManifest, `{"config":{"digest":"sha256:aaaa"},"layers":[]}`, id, false},
		{"garbage", mediaDockerManifest, `not json`, id, false},
	} {
		if got := ManifestConfigIs(c.mt, []byte(c.body), c.want); got != c.ok {
			t.Errorf("%s: ManifestConfigIs = %v, want %v", c.name, got, c.ok)
		}
	}
}

func TestSplitTag(t *testing.T) {
	for in, want := range map[string][2]string{
		"library/redis:7":          {"library/redis", "7"},
		"swarmlab/vote":            {"swarmlab/vote", "latest"},
		"swarmlab/customers:abc12": {"swarmlab/customers", "abc12"},
	} {
		if r, tag := SplitTag(in); r != want[0] || tag != want[1] {
			t.Errorf("SplitTag(%q) = %q, %q, want %q", in, r, tag, want)
		}
	}
}

// Has matches a manifest whose config is the image (the classic store's
// image ID), or that is the image (the containerd store's image ID is the
// manifest's digest, which the registry answers in Docker-Content-Digest).
func TestHasMatchesTheConfigOrTheManifestDigest(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2/library/app/manifests/1" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", mediaDockerManifest)
		w.Header().Set("Docker-Content-Digest", "sha256:manifest")
		w.Write([]byte(`{"config":{"digest":"sha256:config"},"layers":[{}]}`))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	for id, want := range map[string]bool{"sha256:config": true, "sha256:manifest": true, "sha256:other": false, "": false} {
		if got, err := Has(context.Background(), addr, "library/app:1", id); err != nil || got != want {
			t.Errorf("Has(library/app:1, %q) = %v, %v; want %v", id, got, err, want)
		}
	}
	if got, err := Has(context.Background(), addr, "library/app:2", "sha256:config"); err != nil || got {
		t.Errorf("Has of a tag the registry lacks = %v, %v", got, err)
	}
}
