package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestTagOnlyTests(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"p.go":      "package p\n",
		"a_test.go": "package p\n\nimport \"testing\"\n\nfunc TestUnit(t *testing.T) {}\n",
		"b_integration_test.go": `//go:build integration

package p

import "testing"

func TestMain(m *testing.M)              { m.Run() }
func TestInt(t *testing.T)                {}
func Test_int2(t *testing.T)              {}
func Testify(t *testing.T)                {} // not a test: lower case after Test
func helper(t *testing.T)                 {}
func BenchmarkInt(b *testing.B)           {}
func FuzzInt(f *testing.F)                {}
func ExampleInt()                         {}
type s struct{}
func (s) TestMethod(t *testing.T)         {}
`,
		// Selected only without the tag: its tests are the unit run's.
		"c_test.go": "//go:build !integration\n\npackage p\n\nimport \"testing\"\n\nfunc TestNotInt(t *testing.T) {}\n",
		// An external test package, tagged.
		"d_integration_test.go": "//go:build integration\n\npackage p_test\n\nimport \"testing\"\n\nfunc TestExternal(t *testing.T) {}\n",
		// Marked as bringing up labs, but only without the tag: not counted.
		"e_test.go": "//go:build !integration\n\n//swarmlab:labs\n\npackage p\n",
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, labs, err := tagOnlyTests(dir, []string{"integration"})
	if err != nil {
		t.Fatal(err)
	}
	if labs {
		t.Error("labs = true without a tagged file carrying " + labsDirective)
	}
	want := []string{"ExampleInt", "FuzzInt", "TestExternal", "TestInt", "Test_int2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("tagOnlyTests = %q, want %q", got, want)
	}
	if p := runPattern(got[:2]); p != "^(ExampleInt|FuzzInt)$" {
		t.Errorf("runPattern = %q", p)
	}

	// A package with no tagged test file has none.
	if got, _, err := tagOnlyTests(dir, []string{"other"}); err != nil || len(got) != 0 {
		t.Errorf("with tag other: %q, %v", got, err)
	}

	// A tagged file that carries the directive makes the package's tests "labs".
	marked := "//go:build integration\n\n//swarmlab:labs\n\npackage p\n\nimport \"testing\"\n\nfunc TestLab(t *testing.T) {}\n"
	if err := os.WriteFile(filepath.Join(dir, "f_integration_test.go"), []byte(marked), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, labs, err := tagOnlyTests(dir, []string{"integration"}); err != nil || !labs || len(got) != 6 {
		t.Errorf("with a marked file: %q, labs %v, %v", got, labs, err)
	}
}
