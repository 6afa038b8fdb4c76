package stack

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ImageSpec is one image a stack asks the lab to build before deploying it,
// declared in the stack file's top-level extension:
//
//	x-swarmlab:
//	  images:
//	    vote:                      # the stack says image: ${SWARMLAB_IMAGE_VOTE}
//	      go: [./cmd/vote, ./cmd/worker]
//	      ldflags: -X main.version=v1
//
// `docker stack deploy` ignores x- keys, so the file stays a standard compose
// file; there, set SWARMLAB_IMAGE_VOTE to an image you built yourself.
type ImageSpec struct {
	// Go lists main packages, relative to the stack file, built static into
	// a FROM scratch image; the first is its entrypoint.
	Go      []string `yaml:"go"`
	LDFlags string   `yaml:"ldflags"`
}

var imageName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// ImageEnv is the variable a stack file uses for the image called name.
func ImageEnv(name string) string {
	return "SWARMLAB_IMAGE_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Images reads the x-swarmlab.images block of the stack file at path.
func Images(path string) (map[string]ImageSpec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading stack file: %w", err)
	}
	var doc struct {
		Ext struct {
			Images map[string]ImageSpec `yaml:"images"`
		} `yaml:"x-swarmlab"`
	}
	// Only the extension is read here; the compose loader checks the rest.
	var raw map[string]yaml.Node
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	ext, ok := raw["x-swarmlab"]
	if !ok {
		return nil, nil
	}
	out, _ := yaml.Marshal(map[string]*yaml.Node{"x-swarmlab": &ext})
	dec := yaml.NewDecoder(bytes.NewReader(out))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s:%d: x-swarmlab: %v", path, ext.Line, err)
	}
	for name, spec := range doc.Ext.Images {
		if !imageName.MatchString(name) {
			return nil, fmt.Errorf("%s:%d: x-swarmlab.images.%s: name must be lower-case letters, digits and dashes", path, ext.Line, name)
		}
		if len(spec.Go) == 0 {
			return nil, fmt.Errorf("%s:%d: x-swarmlab.images.%s.go: list at least one Go main package", path, ext.Line, name)
		}
	}
	return doc.Ext.Images, nil
}
