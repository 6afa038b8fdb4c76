package common

import "testing"

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"iptables":     "iptables",
		"a b":          "'a b'",
		"it's":         `'it'\''s'`,
		"":             "''",
		"$(rm -rf /)":  "'$(rm -rf /)'",
		"10.0.0.5:22":  "10.0.0.5:22",
		"-n":           "-n",
		"x;y":          "'x;y'",
		"/var/log/a b": "'/var/log/a b'",
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}
