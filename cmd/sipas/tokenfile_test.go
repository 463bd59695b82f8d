package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestItem6CLIWarnsAboutTokenFileReadableByOthers (issue 16): the command
// still runs, and says how to fix the file's mode; a private file gets no
// warning.
func TestItem6CLIWarnsAboutTokenFileReadableByOthers(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "127.0.0.1:0")
	tok, err := os.ReadFile(d.AdminTokenFile())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(path, tok, 0o600); err != nil {
		t.Fatal(err)
	}
	r := sipasCmd(t, d.Addr, "", "admin", "units", "list", "--token-file", path)
	mustCode(t, r, 0, "units list with a private token file")
	if strings.Contains(r.stderr, "warning") {
		t.Fatalf("warning for a 0600 token file: %q", r.stderr)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	r = sipasCmd(t, d.Addr, "", "admin", "units", "list", "--token-file", path)
	mustCode(t, r, 0, "units list with a world-readable token file")
	if !strings.Contains(r.stderr, "warning: token file "+path) || !strings.Contains(r.stderr, "chmod 600") {
		t.Fatalf("no warning for a 0644 token file: %q", r.stderr)
	}
	if strings.Contains(r.stderr, strings.TrimSpace(string(tok))) {
		t.Fatal("the warning shows the token")
	}
}
