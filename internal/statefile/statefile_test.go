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

func TestRead(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	t.Run("a missing file is not found and no error", func(t *testing.T) {
		data, found, err := Read(path)
		if err != nil || found || data != nil {
			t.Fatalf("Read = %q, %v, %v; want nil, false, nil", data, found, err)
		}
	})
	t.Run("an empty file is found", func(t *testing.T) {
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		data, found, err := Read(path)
		if err != nil || !found || len(data) != 0 {
			t.Fatalf("Read = %q, %v, %v; want empty, true, nil", data, found, err)
		}
	})
	t.Run("a directory is an error", func(t *testing.T) {
		if _, found, err := Read(dir); err == nil || found {
			t.Fatalf("Read(dir) found %v, err %v; want an error", found, err)
		}
	})
}

func TestWriteJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	if err := WriteJSON(path, map[string]int{"a": 1}, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "{\n  \"a\": 1\n}\n"; string(got) != want {
		t.Errorf("file holds %q, want %q", got, want)
	}
	if err := WriteJSON(path, func() {}, 0o600); err == nil {
		t.Error("writing a func as JSON succeeded")
	}
	if got2, _ := os.ReadFile(path); string(got2) != string(got) {
		t.Errorf("a failed encode changed the file to %q", got2)
	}
}
