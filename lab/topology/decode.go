package topology

import (
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"github.com/swarmlab/swarmlab/lab/internal/yamlstrict"
)

// parse decodes data. It returns a nil topology when the document as a whole
// is unusable; otherwise a (possibly partial) topology and any field errors.
// The fields, their keys and kinds are the Topology struct's, read from its
// tags by yamlstrict.
func parse(data []byte, filename string) (*Topology, Errors) {
	root, issue := decodeDocument(data)
	if issue != nil {
		return nil, Errors{fromStrict(filename, *issue)}
	}
	t := &Topology{source: filename, dir: absDir(filename)}
	res := yamlstrict.Decode(root, t, yamlstrict.Options{Budget: yamlstrict.Budget(data)})
	t.lines = res.Lines
	errs := make(Errors, len(res.Issues))
	for i, issue := range res.Issues {
		errs[i] = fromStrict(filename, issue)
	}
	if !res.Decoded {
		return nil, errs
	}
	sortIssues(errs)
	return t, errs
}

// decodeDocument returns the root node of the single document in data.
func decodeDocument(data []byte) (*yaml.Node, *yamlstrict.Issue) {
	docs, issue := yamlstrict.Documents(data, 2)
	switch {
	case issue != nil:
		return nil, issue
	case len(docs) == 0:
		return nil, &yamlstrict.Issue{Msg: "file is empty (expected a Topology document)"}
	case len(docs) > 1:
		return nil, &yamlstrict.Issue{Line: docs[1].Line, Msg: "found more than one YAML document (expected exactly one Topology document per file)"}
	}
	doc := docs[0]
	if len(doc.Content) == 0 || yamlstrict.IsNull(doc.Content[0]) {
		return nil, &yamlstrict.Issue{Line: doc.Line, Msg: "document is empty (expected a Topology document)"}
	}
	return doc.Content[0], nil
}

func fromStrict(file string, i yamlstrict.Issue) Issue {
	return Issue{File: file, Line: i.Line, Path: i.Path, Msg: i.Msg}
}

func absDir(filename string) string {
	dir, err := filepath.Abs(filepath.Dir(filename))
	if err != nil {
		return filepath.Dir(filename)
	}
	return dir
}
