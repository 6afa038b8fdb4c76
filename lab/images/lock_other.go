//go:build !unix

package images

import "errors"

// lockFile is not available here: BuildGo then builds in a fresh directory.
func lockFile(string) (func(), error) { return nil, errors.New("file locks are not supported here") }
