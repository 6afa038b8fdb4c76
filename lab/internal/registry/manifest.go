package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/moby/moby/client"
)

// Manifest media types a registry may answer with: for a single image, and for a list
// (index) of images per platform.
const (
	mediaDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mediaOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	mediaDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaOCIIndex       = "application/vnd.oci.image.index.v1+json"
)

// checkTimeout bounds the look at the registry before a push: if the
// registry cannot be asked from here (a remote engine's loopback), the
// push goes ahead as before.
const checkTimeout = 2 * time.Second

// PushIfMissing is Push, except for the targets the registry (at addr for
// the engine, at query for this process: the same place, or the relay to
// it when the engine is elsewhere) already holds as this very image: a manifest whose config digest is the
// local image's ID (the engine's image ID is the digest of the config it
// pushes), so the registry serves exactly what a push would have put there.
// The lab registry's blobs live in a volume that outlives labs, so on a warm
// machine most pushes are not needed. It returns the targets it pushed (or
// tried to).
func PushIfMissing(ctx context.Context, host client.APIClient, addr, query, local string, targets ...string) ([]string, error) {
	inspect, err := host.ImageInspect(ctx, local)
	if err != nil {
		return nil, fmt.Errorf("inspect image %s: %w", local, err)
	}
	var missing []string
	for _, target := range targets {
		if has, _ := Has(ctx, query, target, inspect.ID); !has {
			missing = append(missing, target)
		}
	}
	if len(missing) == 0 {
		return nil, nil
	}
	return missing, Push(ctx, host, addr, local, missing...)
}

// Has reports whether the registry at addr serves target ("library/redis:7")
// as the image whose ID is id ("sha256:..."): the engine's image ID is the
// digest of the config it pushes, or, with the containerd image store, the
// digest of the manifest itself, which the registry answers with in
// Docker-Content-Digest.
func Has(ctx context.Context, addr, target, id string) (bool, error) {
	repo, tag := SplitTag(target)
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	resp, err := askManifest(ctx, http.MethodGet, addr, repo, tag, mediaDockerManifest, mediaOCIManifest)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return false, nil
	}
	if id != "" && resp.Header.Get("Docker-Content-Digest") == id {
		io.Copy(io.Discard, resp.Body)
		return true, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return false, err
	}
	return ManifestConfigIs(resp.Header.Get("Content-Type"), body, id), nil
}

// ManifestConfigIs tells whether a manifest (as served, with its media
// type) describes one image whose config has the digest want. Lists and
// indexes never match: what they resolve to depends on the platform.
func ManifestConfigIs(mediaType string, body []byte, want string) bool {
	if want == "" {
		return false
	}
	var m struct {
		MediaType string `json:"mediaType"`
		Config    struct {
			Digest string `json:"digest"`
		} `json:"config"`
		Layers []json.RawMessage `json:"layers"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return false
	}
	mt := strings.TrimSpace(strings.Split(mediaType, ";")[0])
	if mt == "" || mt == "application/json" {
		mt = m.MediaType
	}
	if mt != mediaDockerManifest && mt != mediaOCIManifest {
		return false
	}
	return m.Config.Digest == want && len(m.Layers) > 0
}

// SplitTag splits "library/redis:7" into "library/redis" and "7"; a name
// without a tag is "latest".
func SplitTag(ref string) (repo, tag string) {
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i], ref[i+1:]
	}
	return ref, "latest"
}

// Serves reports whether the registry at addr ("host:port") has a manifest
// for repo ("library/redis") at ref, a tag ("7") or a digest
// ("sha256:..."). It asks with HEAD, accepting single manifests and lists
// alike. An error means the registry could not be asked or gave an answer
// other than found (200) or not found (404).
func Serves(ctx context.Context, addr, repo, ref string) (bool, error) {
	return ServesWithin(ctx, checkTimeout, addr, repo, ref)
}

// ServesWithin is Serves, waiting up to timeout for the answer: a
// pull-through cache answers once it has asked its upstream.
func ServesWithin(ctx context.Context, timeout time.Duration, addr, repo, ref string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := askManifest(ctx, http.MethodHead, addr, repo, ref, mediaDockerManifest, mediaOCIManifest, mediaDockerList, mediaOCIIndex)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	default:
		return false, fmt.Errorf("HEAD %s: %s", resp.Request.URL, resp.Status)
	}
}

// askManifest asks the registry at addr for repo's manifest at ref (a tag
// or a digest), accepting the media types given. The caller closes the
// body.
func askManifest(ctx context.Context, method, addr, repo, ref string, accept ...string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+"/v2/"+repo+"/manifests/"+ref, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", strings.Join(accept, ", "))
	return http.DefaultClient.Do(req)
}
