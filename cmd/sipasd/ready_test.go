package main

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// readyz returns the HTTP status of /readyz.
func readyz(t *testing.T, d *daemon) int {
	resp, err := http.Get("http://" + d.httpLis.Addr().String() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func waitReady(t *testing.T, d *daemon, want int, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		if readyz(t, d) == want {
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("/readyz did not become %d within %s", want, within)
	return 0
}

// TestReadinessFollowsDiskFull puts the data directory on a small tmpfs,
// fills it, and checks that readiness turns false within seconds and true
// again once space is freed, without a restart. It needs root to mount.
func TestReadinessFollowsDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	d, _, _ := startDaemon(t, dir)
	if code := readyz(t, d); code != http.StatusOK {
		t.Fatalf("/readyz = %d at start", code)
	}
	if resp, err := http.Get("http://" + d.httpLis.Addr().String() + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %v %v", resp, err)
	}
	// Fill the disk.
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	f.Close()
	took := waitReady(t, d, http.StatusServiceUnavailable, 10*time.Second)
	t.Logf("not ready %s after the disk filled", took.Round(time.Millisecond))
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	took = waitReady(t, d, http.StatusOK, 10*time.Second)
	t.Logf("ready again %s after space was freed", took.Round(time.Millisecond))
}
