// Package workflows holds no code: its tests lint the repository's GitHub
// Actions workflows (.github/workflows) with actionlint, in process, as part
// of the unit tests (go test ./...). actionlint is a Go tool dependency of
// the module, so the same linter runs from the command line with
//
//	go tool actionlint -shellcheck= -pyflakes=
//
// shellcheck and pyflakes are not run: the `run:` scripts are not linted
// beyond what actionlint itself checks.
package workflows
