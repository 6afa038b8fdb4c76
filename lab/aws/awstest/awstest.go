// Package awstest helps tests of code that loads the AWS SDK's default
// configuration.
package awstest

import (
	"os"
	"path/filepath"
	"testing"
)

// NoCredentials leaves the SDK's default chain nothing to find for the rest
// of the test: no credential variables, empty shared config and credential
// files, and the instance metadata service switched off (there is no
// network to ask it over). The region is set, so only credentials are
// missing.
func NoCredentials(t testing.TB) {
	t.Helper()
	dir := t.TempDir()
	for _, k := range []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"} {
		t.Setenv(k, "") // restores the variable after the test
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_REGION", "eu-west-1")
}
