// Package golden keeps the expected output of tests in files (testdata/…):
// File reads one, and under the -update flag first rewrites it from what
// the code produces now.
//
// It is test-only code: import it from _test.go files only.
package golden

import (
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ from the current output")

// File returns the content of the golden file at path, failing the test
// when it cannot be read. With -update it writes got there first, so the
// test then compares got with itself and the diff of the file in git shows
// what changed.
func File(t testing.TB, path, got string) string {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the golden file (run with -update to create it): %v", err)
	}
	return string(want)
}
