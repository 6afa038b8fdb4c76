package stack

import (
	"fmt"
	"os"
	"regexp"
	"slices"
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
	ext, err := readExtension(path)
	if err != nil || ext == nil {
		return nil, err
	}
	for name, spec := range ext.Images {
		if !imageName.MatchString(name) {
			return nil, fmt.Errorf("%s:%d: x-swarmlab.images.%s: name must be lower-case letters, digits and dashes", path, ext.lines["images."+name], name)
		}
		if len(spec.Go) == 0 {
			return nil, fmt.Errorf("%s:%d: x-swarmlab.images.%s.go: list at least one Go main package", path, ext.lines["images."+name], name)
		}
	}
	return ext.Images, nil
}

// SecretSpec is a secret the lab generates for a stack:
//
//	x-swarmlab:
//	  secrets:
//	    postgres_password: {generate: password}
//	    edge_pem: {generate: tls}    # self-signed certificate + key, PEM
//
// The stack file reads it as a file secret:
//
//	secrets:
//	  postgres_password: {file: "${SWARMLAB_SECRET_POSTGRES_PASSWORD}"}
type SecretSpec struct {
	Generate string `yaml:"generate"` // password | tls
}

// SecretEnv is the variable holding the path of the generated secret name.
func SecretEnv(name string) string {
	return "SWARMLAB_SECRET_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Secrets reads the x-swarmlab.secrets block of the stack file at path.
func Secrets(path string) (map[string]SecretSpec, error) {
	ext, err := readExtension(path)
	if err != nil || ext == nil {
		return nil, err
	}
	for name, spec := range ext.Secrets {
		if spec.Generate != "password" && spec.Generate != "tls" {
			return nil, fmt.Errorf("%s:%d: x-swarmlab.secrets.%s.generate: %q is not one of password, tls", path, ext.lines["secrets."+name], name, spec.Generate)
		}
	}
	return ext.Secrets, nil
}

type extension struct {
	Images  map[string]ImageSpec
	Secrets map[string]SecretSpec
	lines   map[string]int // "images.vote" -> line of its key
}

// readExtension reads the stack file's x-swarmlab block, strictly; nil if
// there is none. The compose loader checks the rest of the file. Errors
// name the file, the line and the key.
func readExtension(path string) (*extension, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading stack file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, nil
	}
	root := doc.Content[0]
	var block *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "x-swarmlab" {
			block = root.Content[i+1]
		}
	}
	if block == nil {
		return nil, nil
	}
	fail := func(n *yaml.Node, key, format string, args ...any) error {
		return fmt.Errorf("%s:%d: x-swarmlab%s: %s", path, n.Line, key, fmt.Sprintf(format, args...))
	}
	ext := &extension{Images: map[string]ImageSpec{}, Secrets: map[string]SecretSpec{}, lines: map[string]int{}}
	if block.Kind != yaml.MappingNode {
		return nil, fail(block, "", "expected a mapping with images and secrets")
	}
	for i := 0; i+1 < len(block.Content); i += 2 {
		k, v := block.Content[i], block.Content[i+1]
		if k.Value != "images" && k.Value != "secrets" {
			return nil, fail(k, "."+k.Value, "unknown key (want images, secrets)")
		}
		if v.Kind != yaml.MappingNode {
			return nil, fail(k, "."+k.Value, "expected a mapping of names")
		}
		for j := 0; j+1 < len(v.Content); j += 2 {
			name, spec := v.Content[j], v.Content[j+1]
			key := "." + k.Value + "." + name.Value
			if err := strictKeys(spec, k.Value); err != nil {
				return nil, fail(name, key, "%v", err)
			}
			var err error
			if k.Value == "images" {
				var is ImageSpec
				err = spec.Decode(&is)
				ext.Images[name.Value] = is
			} else {
				var ss SecretSpec
				err = spec.Decode(&ss)
				ext.Secrets[name.Value] = ss
			}
			if err != nil {
				return nil, fail(name, key, "%v", err)
			}
			ext.lines[k.Value+"."+name.Value] = name.Line
		}
	}
	return ext, nil
}

// strictKeys rejects keys an image or secret spec does not have.
func strictKeys(spec *yaml.Node, kind string) error {
	allowed := map[string][]string{"images": {"go", "ldflags"}, "secrets": {"generate"}}[kind]
	if spec.Kind != yaml.MappingNode {
		return fmt.Errorf("expected a mapping with %s", strings.Join(allowed, ", "))
	}
	for i := 0; i < len(spec.Content); i += 2 {
		if !slices.Contains(allowed, spec.Content[i].Value) {
			return fmt.Errorf("unknown key %q (want %s)", spec.Content[i].Value, strings.Join(allowed, ", "))
		}
	}
	return nil
}
