package stack

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeStack(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "stack.yml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExtensionIsRead(t *testing.T) {
	p := writeStack(t, `version: "3.8"
x-swarmlab:
  images:
    vote: {go: [./cmd/vote], ldflags: "-X main.version=v1"}
  secrets:
    pg: {generate: password}
    edge-pem: {generate: tls}
services:
  vote: {image: "${SWARMLAB_IMAGE_VOTE}"}
`)
	imgs, err := Images(p)
	if err != nil || len(imgs) != 1 || imgs["vote"].Go[0] != "./cmd/vote" || imgs["vote"].LDFlags == "" {
		t.Fatalf("Images = %+v, %v", imgs, err)
	}
	secrets, err := Secrets(p)
	if err != nil || secrets["pg"].Generate != "password" || secrets["edge-pem"].Generate != "tls" {
		t.Fatalf("Secrets = %+v, %v", secrets, err)
	}
	if ImageEnv("echo-v2") != "SWARMLAB_IMAGE_ECHO_V2" || SecretEnv("edge-pem") != "SWARMLAB_SECRET_EDGE_PEM" {
		t.Error("variable names")
	}
}

func TestNoExtensionIsFine(t *testing.T) {
	p := writeStack(t, "version: \"3.8\"\nservices:\n  web: {image: nginx}\n")
	if imgs, err := Images(p); err != nil || imgs != nil {
		t.Fatalf("Images = %v, %v", imgs, err)
	}
}

func TestBadExtensionNamesFileAndLine(t *testing.T) {
	for name, body := range map[string]string{
		"unknown key":      "services: {}\nx-swarmlab:\n  imagez: {}\n",
		"no packages":      "services: {}\nx-swarmlab:\n  images:\n    vote: {}\n",
		"unknown spec key": "services: {}\nx-swarmlab:\n  images:\n    vote: {goo: [./x]}\n",
		"bad generator":    "services: {}\nx-swarmlab:\n  secrets:\n    pg: {generate: rot13}\n",
		"bad image name":   "services: {}\nx-swarmlab:\n  images:\n    Vote: {go: [./x]}\n",
	} {
		t.Run(name, func(t *testing.T) {
			p := writeStack(t, body)
			_, err1 := Images(p)
			_, err2 := Secrets(p)
			err := err1
			if err == nil {
				err = err2
			}
			want := p + ":4: x-swarmlab."
			if name == "unknown key" {
				want = p + ":3: x-swarmlab.imagez"
			}
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("want an error at %s, got %v / %v", want, err1, err2)
			}
		})
	}
}

// Every problem in the block is reported at once, sorted by line, each with
// the line and path of the key it is about. Decoding problems are the
// block's, reported by both readers; each check is its own reader's.
func TestBadExtensionReportsEveryProblem(t *testing.T) {
	p := writeStack(t, `services: {}
x-swarmlab:
  images:
    Vote: {go: [./x]}
    api:
      goo: [./x]
    web: {go: ./x}
  secrets:
    pg: {generate: rot13}
`)
	all := []string{
		p + ":4: x-swarmlab.images.Vote: name must be lower-case letters, digits and dashes",
		p + `:6: x-swarmlab.images.api.goo: unknown field (did you mean "go"?) (expected one of go, ldflags)`,
		p + `:7: x-swarmlab.images.web.go: expected a list, found the string "./x"`,
		p + `:9: x-swarmlab.secrets.pg.generate: "rot13" is not one of password, tls`,
	}
	if _, err := Images(p); err == nil || err.Error() != strings.Join(all[:3], "\n") {
		t.Errorf("Images:\n%v\nwant:\n%s", err, strings.Join(all[:3], "\n"))
	}
	if _, err := Secrets(p); err == nil || err.Error() != strings.Join(all[1:], "\n") {
		t.Errorf("Secrets:\n%v\nwant:\n%s", err, strings.Join(all[1:], "\n"))
	}
}
