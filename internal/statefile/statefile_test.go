package statefile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "lease.json")
	t.Run("a missing directory is created and the file holds the data", func(t *testing.T) {
		if err := Write(path, []byte("one"), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != "one" {
			t.Fatalf("read %q, %v", got, err)
		}
		fi, _ := os.Stat(path)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("mode %o, want 600", fi.Mode().Perm())
		}
	})
	t.Run("a second write replaces the file and leaves no temporary behind", func(t *testing.T) {
		if err := Write(path, []byte("two"), 0o644); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(path)
		if string(got) != "two" {
			t.Errorf("read %q", got)
		}
		entries, _ := os.ReadDir(filepath.Dir(path))
		if len(entries) != 1 {
			t.Errorf("directory holds %d entries, want only the file", len(entries))
		}
	})
	t.Run("a failed write leaves the old file intact", func(t *testing.T) {
		if err := Write(filepath.Join(path, "not-a-dir", "x"), []byte("three"), 0o644); err == nil {
			t.Fatal("writing below a file succeeded")
		}
		got, _ := os.ReadFile(path)
		if string(got) != "two" {
			t.Errorf("read %q", got)
		}
	})
}
