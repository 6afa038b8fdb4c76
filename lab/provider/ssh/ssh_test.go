package ssh

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	xssh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/swarmlab/swarmlab/lab/topology"
)

func TestPartitionScriptDropsOnlySwarmPortsOfPeers(t *testing.T) {
	s := partitionScript([]string{"10.0.0.6", "10.0.0.7"})
	for _, want := range []string{
		"iptables -N SWARMLAB-PARTITION",
		"-A SWARMLAB-PARTITION -s 10.0.0.6 -p tcp -m multiport --dports 2377,7946 -j DROP",
		"-A SWARMLAB-PARTITION -d 10.0.0.7 -p udp -m multiport --dports 7946,4789 -j DROP",
		"-I INPUT 1 -m comment --comment swarmlab-partition -j SWARMLAB-PARTITION",
		"-I OUTPUT 1 -m comment --comment swarmlab-partition -j SWARMLAB-PARTITION",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("partition script lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "10.0.0.5") || strings.Contains(s, "-j DROP\n$SUDO iptables -A SWARMLAB-PARTITION -s 0.0.0.0") {
		t.Errorf("partition script names a non-peer:\n%s", s)
	}
	// It starts by healing, so that partitioning twice leaves one set of rules.
	if !strings.HasPrefix(s, healScript) {
		t.Error("partition script does not start from a healed host")
	}
}

func writeKey(t *testing.T, dir, passphrase string) (string, xssh.PublicKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = xssh.MarshalPrivateKey(priv, "")
	} else {
		block, err = xssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "id")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sp, _ := xssh.NewPublicKey(pub)
	return path, sp
}

func node(key, known string) topology.Node {
	return topology.Node{Name: "m1", SSH: &topology.SSH{Address: "10.0.0.5", Port: 22, User: "admin", IdentityFile: key, KnownHosts: known}}
}

func TestClientConfigChecksHostKeysOfTheKnownType(t *testing.T) {
	dir := t.TempDir()
	key, hostKey := writeKey(t, dir, "")
	known := filepath.Join(dir, "known_hosts")
	os.WriteFile(known, []byte(knownhosts.Line([]string{"10.0.0.5"}, hostKey)+"\n"), 0o600)
	cfg, err := clientConfig(node(key, known), "10.0.0.5:22")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.HostKeyAlgorithms) != 1 || cfg.HostKeyAlgorithms[0] != xssh.KeyAlgoED25519 {
		t.Errorf("host key algorithms %v, want the one known_hosts holds (ssh-ed25519)", cfg.HostKeyAlgorithms)
	}
	if cfg.User != "admin" {
		t.Errorf("user %q", cfg.User)
	}
	if err := cfg.HostKeyCallback("10.0.0.5:22", &net.TCPAddr{}, hostKey); err != nil {
		t.Errorf("the known key is refused: %v", err)
	}
	_, other := writeKey(t, t.TempDir(), "")
	if err := cfg.HostKeyCallback("10.0.0.5:22", &net.TCPAddr{}, other); err == nil {
		t.Error("another key is accepted")
	}
}

func TestClientConfigErrors(t *testing.T) {
	dir := t.TempDir()
	key, _ := writeKey(t, dir, "")
	known := filepath.Join(dir, "known_hosts")
	os.WriteFile(known, []byte("\n"), 0o600)
	_, err := clientConfig(node(key, known), "10.0.0.5:22")
	if err == nil || !strings.Contains(err.Error(), "has no key for 10.0.0.5") || !strings.Contains(err.Error(), "ssh-keyscan") {
		t.Errorf("unknown host: %v, want it to say how to add the key", err)
	}

	pdir := t.TempDir()
	pkey, _ := writeKey(t, pdir, "secret")
	_, err = clientConfig(node(pkey, known), "10.0.0.5:22")
	if err == nil || !strings.Contains(err.Error(), "passphrase") {
		t.Errorf("key with a passphrase: %v", err)
	}

	bad := filepath.Join(dir, "bad")
	secret := "-----BEGIN OPENSSH PRIVATE KEY-----\nTOPSECRETMATERIAL\n-----END OPENSSH PRIVATE KEY-----\n"
	os.WriteFile(bad, []byte(secret), 0o600)
	_, err = clientConfig(node(bad, known), "10.0.0.5:22")
	if err == nil || strings.Contains(err.Error(), "TOPSECRET") {
		t.Errorf("unreadable key: %v (it must not quote the key)", err)
	}

	n := node(key, filepath.Join(dir, "nope"))
	n.SSH.InsecureIgnoreHostKey = true
	if _, err := clientConfig(n, "10.0.0.5:22"); err != nil {
		t.Errorf("insecureIgnoreHostKey still reads known_hosts: %v", err)
	}
}
