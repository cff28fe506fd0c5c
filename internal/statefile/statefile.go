// Package statefile writes the daemon's state files (leases, prefix
// history, stable secrets) so that a crash or power cut at any moment leaves
// either the old file or the new one, never a torn one.
package statefile

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// Write replaces path with data atomically: a temporary file beside it is
// written, fsynced and given perm, renamed over path, and the directory is
// fsynced so the rename itself survives a power cut. Missing parent
// directories are created (0755).
func Write(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return err
	}
	if err := os.Chmod(tmp, perm); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	// Not every filesystem can sync a directory; the rename is done either way.
	_ = d.Sync()
	return nil
}

// WriteJSON writes v as indented JSON with a final newline, atomically as
// Write does.
func WriteJSON(path string, v any, perm fs.FileMode) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return Write(path, append(data, '\n'), perm)
}

// Read returns the contents of path. A file that does not exist is no
// error, it is the first start: Read then returns found false.
func Read(path string) (data []byte, found bool, err error) {
	data, err = os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return data, true, nil
}
