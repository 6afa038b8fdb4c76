package lab

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/swarmlab/swarmlab/lab/stack"
)

// Secrets are the files a lab generates, once per lab, for the secrets its
// stacks ask for (x-swarmlab): passwords, and certificates for its nodes.
// They are kept in its state directory, and go with it at down.
type Secrets struct{ l *Lab }

// Secrets returns the lab's secrets.
func (l *Lab) Secrets() Secrets { return Secrets{l} }

// Dir is the directory that holds the lab's secrets.
func (s Secrets) Dir() string {
	return filepath.Join(s.l.State().Dir(), "secrets")
}

// Path is where the lab keeps the generated secret name.
func (s Secrets) Path(name string) string {
	return filepath.Join(s.Dir(), name)
}

// Generate makes the secrets a stack file asks for (x-swarmlab) once per
// lab, and returns the variables naming their files. A secret that exists
// is kept: a database initialised with a password must keep it.
func (s Secrets) Generate(ctx context.Context, stackPath string) (map[string]string, error) {
	specs, err := stack.Secrets(stackPath)
	if err != nil || len(specs) == 0 {
		return nil, err
	}
	if err := os.MkdirAll(s.Dir(), 0o700); err != nil {
		return nil, err
	}
	env := map[string]string{}
	for name, spec := range specs {
		path := s.Path(name)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			var data []byte
			switch spec.Generate {
			case "password":
				data, err = password()
			case "tls":
				data, err = s.selfSignedPEM()
			}
			if err != nil {
				return nil, fmt.Errorf("generating secret %s: %w", name, err)
			}
			if err := os.WriteFile(path, data, 0o600); err != nil {
				return nil, err
			}
		}
		env[stack.SecretEnv(name)] = path
	}
	return env, nil
}

func password() ([]byte, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return []byte(base64.RawURLEncoding.EncodeToString(b)), nil
}

// selfSignedPEM makes a certificate for the lab's nodes (names and
// addresses) and localhost, followed by its key: the PEM bundle HAProxy's
// `crt` takes.
func (s Secrets) selfSignedPEM() ([]byte, error) {
	l := s.l
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "swarmlab " + l.name, Organization: []string{"swarmlab"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(90 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	for _, n := range l.cluster.Nodes() {
		tmpl.DNSNames = append(tmpl.DNSNames, n.Name())
		if ip := net.ParseIP(n.Addr()); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return append(out, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})...), nil
}
