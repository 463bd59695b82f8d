// Package atomicfile replaces files durably: a reader sees the old content or
// the new, never part of it, and the new content survives a crash once
// WriteFile returns.
package atomicfile

import (
	"os"
	"path/filepath"
)

// WriteFile replaces path with data, with the given permissions: a
// temporary file in the same directory (created 0600, set to mode before any
// byte is written), fsync, rename over path, fsync of the directory.
func WriteFile(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
