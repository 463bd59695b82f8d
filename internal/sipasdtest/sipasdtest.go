// Package sipasdtest runs the real sipasd binary for end-to-end tests: it
// builds the binaries once per test process, starts the server as a child
// process on loopback with a temporary data directory, and reads what tests
// check from the database file afterwards.
package sipasdtest

import (
	"bufio"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3" // reading the server's database file
)

// Build builds the named commands of this module (e.g. "sipasd", "sipas")
// into a new temporary directory and returns it and a function that removes
// it. Call it from TestMain.
func Build(commands ...string) (dir string, cleanup func(), err error) {
	dir, err = os.MkdirTemp("", "sipasdtest-")
	if err != nil {
		return "", nil, err
	}
	args := []string{"build", "-tags", "sqlite_omit_load_extension", "-o", dir + string(os.PathSeparator)}
	for _, c := range commands {
		args = append(args, "github.com/sipas-vn/sipas/cmd/"+c)
	}
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("building %v: %w", commands, err)
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

// FreeAddr returns a loopback address with a port nobody listens on now.
func FreeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Daemon is a running sipasd child process.
type Daemon struct {
	t    testing.TB
	Dir  string // its --data-dir
	Addr string // its gRPC address
	cmd  *exec.Cmd
}

// Start starts bin (a sipasd binary) with its data in dir, serving gRPC on
// addr ("127.0.0.1:0" for any port), with the rate limit off and quiet
// logs, and waits until it serves. It is killed when the test ends.
func Start(t testing.TB, bin, dir, addr string, extraArgs ...string) *Daemon {
	t.Helper()
	args := append([]string{"--data-dir", dir, "--grpc-addr", addr, "--http-addr", "127.0.0.1:0",
		"--rate-limit", "0", "--log-level", "error", "--shutdown-grace", "2s"}, extraArgs...)
	cmd := exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "sipasd: serving gRPC on "); ok {
				got <- strings.Fields(a)[0]
			}
		}
	}()
	d := &Daemon{t: t, Dir: dir, cmd: cmd}
	select {
	case d.Addr = <-got:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("sipasd did not start in 30 s")
	}
	t.Cleanup(d.Kill)
	return d
}

// Kill ends the server with SIGKILL (a crash).
func (d *Daemon) Kill() { d.signal(syscall.SIGKILL) }

// Stop ends the server with SIGTERM (a graceful stop) and waits for it.
func (d *Daemon) Stop() { d.signal(syscall.SIGTERM) }

func (d *Daemon) signal(sig syscall.Signal) {
	if d.cmd.ProcessState == nil {
		_ = d.cmd.Process.Signal(sig)
		_ = d.cmd.Wait()
	}
}

// AdminTokenFile is the file where the first start wrote the admin token.
func (d *Daemon) AdminTokenFile() string { return filepath.Join(d.Dir, "admin.token") }

// AdminToken returns the first admin's token.
func (d *Daemon) AdminToken() string {
	b, err := os.ReadFile(d.AdminTokenFile())
	if err != nil {
		d.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// Counts returns the stored responses and distinct response ids, read from
// the database file of a server's data directory (running or not).
func Counts(t testing.TB, dataDir string) (rows, distinct int) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dataDir, "sipas.db")+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`SELECT count(*), count(DISTINCT response_id) FROM responses`).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	return rows, distinct
}
