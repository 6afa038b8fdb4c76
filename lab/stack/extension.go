package stack

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/swarmlab/swarmlab/lab/internal/yamlstrict"
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
	for _, name := range slices.Sorted(maps.Keys(ext.Images)) {
		spec := ext.Images[name]
		at := yamlstrict.Join("x-swarmlab.images", name)
		if !imageName.MatchString(name) {
			ext.errorf(at, "name must be lower-case letters, digits and dashes")
		}
		if len(spec.Go) == 0 {
			ext.errorf(at+".go", "list at least one Go main package")
		}
	}
	if err := ext.err(); err != nil {
		return nil, err
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
	for _, name := range slices.Sorted(maps.Keys(ext.Secrets)) {
		spec := ext.Secrets[name]
		if spec.Generate != "password" && spec.Generate != "tls" {
			ext.errorf(yamlstrict.Join("x-swarmlab.secrets", name)+".generate", "%q is not one of password, tls", spec.Generate)
		}
	}
	if err := ext.err(); err != nil {
		return nil, err
	}
	return ext.Secrets, nil
}

// extension is the x-swarmlab block, as yamlstrict decodes it.
type extension struct {
	Images  map[string]ImageSpec  `yaml:"images"`
	Secrets map[string]SecretSpec `yaml:"secrets"`

	file   string
	lines  map[string]int // "x-swarmlab.images.vote" -> line of its key
	issues []yamlstrict.Issue
}

// readExtension reads the stack file's x-swarmlab block, strictly; nil if
// there is none. The compose loader checks the rest of the file. Problems in
// the block are kept for ext.err, to be reported with those the caller finds.
func readExtension(path string) (*extension, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading stack file: %w", err)
	}
	// Only the first document, as the compose loader reads it.
	docs, issue := yamlstrict.Documents(data, 1)
	if issue != nil {
		return nil, errors.New(issue.Format(path))
	}
	if len(docs) == 0 || len(docs[0].Content) == 0 || docs[0].Content[0].Kind != yaml.MappingNode {
		return nil, nil
	}
	root := docs[0].Content[0]
	var block *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "x-swarmlab" {
			block = root.Content[i+1]
		}
	}
	if block == nil {
		return nil, nil
	}
	ext := &extension{file: path}
	res := yamlstrict.Decode(block, ext, yamlstrict.Options{Path: "x-swarmlab", Budget: yamlstrict.Budget(data)})
	ext.lines, ext.issues = res.Lines, res.Issues
	return ext, nil
}

// errorf records a problem found after decoding, at the line of path or,
// when path was not written (an image without go), of its nearest parent.
func (ext *extension) errorf(path, format string, args ...any) {
	ext.issues = append(ext.issues, yamlstrict.Issue{Line: yamlstrict.LineOf(ext.lines, path), Path: path, Msg: fmt.Sprintf(format, args...)})
}

// err is every problem in the block, one a line, sorted by line; nil if
// there are none.
func (ext *extension) err() error {
	if len(ext.issues) == 0 {
		return nil
	}
	slices.SortStableFunc(ext.issues, func(a, b yamlstrict.Issue) int { return a.Line - b.Line })
	msgs := make([]string, len(ext.issues))
	for i, issue := range ext.issues {
		msgs[i] = issue.Format(ext.file)
	}
	return errors.New(strings.Join(msgs, "\n"))
}
