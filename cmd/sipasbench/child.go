package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/sipas-vn/sipas/client"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// buildTags are the tags `make build` uses.
const buildTags = "sqlite_omit_load_extension"

// moduleRoot returns the directory of the main module's go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the sipas module: run from the module root")
	}
	return filepath.Dir(mod), nil
}

// binary builds ./cmd/<name> once into the temporary directory.
func (b *bench) binary(name string) (string, error) {
	if p, ok := b.bins[name]; ok {
		return p, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(b.tmp, "bin", name)
	err = b.timed("build "+name, func() error {
		cmd := exec.Command("go", "build", "-tags", buildTags, "-o", out, "./cmd/"+name)
		cmd.Dir = root
		if msg, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/%s: %w\n%s", name, err, msg)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	b.bins[name] = out
	return out, nil
}

// child is a sipasd process on loopback with its own data directory.
type child struct {
	cmd      *exec.Cmd
	dir      string
	addr     string
	httpAddr string
	adminTok string
	started  time.Time     // when the process was started
	ready    time.Duration // from start to its "serving" line
	exited   chan struct{}
	waitErr  error

	mu     sync.Mutex
	maxRSS int64 // largest VmRSS sampled, KiB
	stopS  chan struct{}
	doneS  chan struct{}
}

// startServer starts sipasd with a fresh data directory, the per-credential
// rate limit disabled, and waits for its gRPC address.
func (b *bench) startServer(name string) (*child, error) {
	dir, err := os.MkdirTemp(b.tmp, name+"-")
	if err != nil {
		return nil, err
	}
	return b.startServerIn(dir, 0, b.profileFlags()...)
}

// startServerIn starts sipasd on the data directory dir (which may hold a
// database already) with extra flags, and waits for its gRPC address.
func (b *bench) startServerIn(dir string, cacheMiB int, extra ...string) (*child, error) {
	bin, err := b.binary("sipasd")
	if err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(dir+".log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	// --rate-limit 0 disables the per-credential limiter.
	args := []string{"--data-dir", dir, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
		"--rate-limit", "0", "--shutdown-grace", "30s"}
	if cacheMiB > 0 {
		args = append(args, "--cell-cache-mib", strconv.Itoa(cacheMiB))
	}
	cmd := exec.Command(bin, append(args, extra...)...)
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	c := &child{cmd: cmd, dir: dir, started: t0, exited: make(chan struct{}), stopS: make(chan struct{}), doneS: make(chan struct{})}
	addrc := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		const prefix = "sipasd: serving gRPC on "
		for sc.Scan() {
			line := sc.Text()
			if rest, ok := strings.CutPrefix(line, prefix); ok {
				// "ADDR (mode), HTTP on ADDR, data in DIR"
				var a [2]string
				if f := strings.Fields(rest); len(f) > 0 {
					a[0] = f[0]
				}
				if _, h, ok := strings.Cut(rest, "HTTP on "); ok {
					a[1], _, _ = strings.Cut(h, ",")
				}
				addrc <- a
			}
		}
	}()
	go func() {
		c.waitErr = cmd.Wait()
		logf.Close()
		close(c.exited)
	}()
	select {
	case a := <-addrc:
		c.addr, c.httpAddr = a[0], a[1]
		c.ready = time.Since(c.started)
	case <-c.exited:
		return nil, fmt.Errorf("sipasd exited before serving: %v (log %s.log)", c.waitErr, dir)
	case <-time.After(60 * time.Second):
		c.kill()
		return nil, errors.New("sipasd did not report its address within 60s")
	}
	tok, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		c.kill()
		return nil, err
	}
	c.adminTok = strings.TrimSpace(string(tok))
	go c.sample()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// cpuTime returns the CPU time (user + system) the child has used so far.
func (c *child) cpuTime() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.pid()))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may hold spaces) in parentheses;
	// utime and stime are fields 14 and 15, in clock ticks of 1/100 s.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", c.pid())
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat", c.pid())
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// cpuTimeOrZero is cpuTime for explanations: 0 when it cannot be read.
func (c *child) cpuTimeOrZero() time.Duration {
	d, _ := c.cpuTime()
	return d
}

// selfCPUTime returns the CPU time this process has used so far.
func selfCPUTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// kill ends the child at once (error paths). After stop it does nothing,
// so callers may defer it.
func (c *child) kill() {
	_ = c.cmd.Process.Kill()
	<-c.exited
}

// sample records the largest VmRSS every 50 ms until the child stops.
func (c *child) sample() {
	defer close(c.doneS)
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		if st, err := procStatus(c.pid()); err == nil {
			c.mu.Lock()
			c.maxRSS = max(c.maxRSS, st["VmRSS"])
			c.mu.Unlock()
		}
		select {
		case <-t.C:
		case <-c.stopS:
			return
		case <-c.exited:
			return
		}
	}
}

// memory returns VmHWM (peak resident set, the kernel's own high-water
// mark), the largest sampled VmRSS and the current VmRSS, in MiB.
func (c *child) memory() (hwm, maxSampled, now float64, err error) {
	st, err := procStatus(c.pid())
	if err != nil {
		return 0, 0, 0, err
	}
	c.mu.Lock()
	m := max(c.maxRSS, st["VmRSS"])
	c.mu.Unlock()
	return float64(st["VmHWM"]) / 1024, float64(m) / 1024, float64(st["VmRSS"]) / 1024, nil
}

// procStatus reads the kB fields of /proc/PID/status.
func procStatus(pid int) (map[string]int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 2 && f[1] == "kB" {
			if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
				out[k] = n
			}
		}
	}
	return out, nil
}

// stop sends SIGTERM (graceful stop: in-flight calls finish, the store
// checkpoints the WAL into the database file) and waits for the exit.
func (c *child) stop() error {
	close(c.stopS)
	<-c.doneS
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-c.exited:
	case <-time.After(90 * time.Second):
		c.kill()
		return errors.New("sipasd did not stop within 90s of SIGTERM")
	}
	return c.waitErr
}

// dbBytes is the size of the database file plus its WAL (empty after a
// graceful stop).
func (c *child) dbBytes() (int64, error) {
	var total int64
	for _, f := range []string{"sipas.db", "sipas.db-wal"} {
		st, err := os.Stat(filepath.Join(c.dir, f))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, err
		}
		total += st.Size()
	}
	return total, nil
}

// countRows counts the stored responses (after the child has stopped).
func (c *child) countRows() (int64, error) {
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(c.dir, "sipas.db")+"?mode=ro")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int64
	err = db.QueryRow("SELECT count(*) FROM responses").Scan(&n)
	return n, err
}

// dial connects to the child with a token.
func (c *child) dial(token string) (*client.Client, error) {
	return client.Dial(client.Options{Server: c.addr, Token: token, Timeout: 30 * time.Second})
}

// adminClient connects with the first admin's token.
func (c *child) adminClient() (*client.Client, error) { return c.dial(c.adminTok) }

// newSurveyor issues a surveyor credential for every province.
// startWithSurveyor starts a child sipasd and issues it a surveyor
// credential for every province; defer the child's kill.
func (b *bench) startWithSurveyor(name, note string) (*child, string, error) {
	c, err := b.startServer(name)
	if err != nil {
		return nil, "", err
	}
	admin, err := c.adminClient()
	if err != nil {
		c.kill()
		return nil, "", err
	}
	defer admin.Close()
	tok, err := newSurveyor(admin, note)
	if err != nil {
		c.kill()
		return nil, "", err
	}
	return c, tok, nil
}

func newSurveyor(admin *client.Client, note string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := admin.Admin.CreateCredential(ctx, &sipasv1.CreateCredentialRequest{
		Credential: &sipasv1.Credential{Role: sipasv1.Role_ROLE_SURVEYOR, AllProvinces: true, Description: note},
		Ttl:        durationpb.New(24 * time.Hour),
	})
	if err != nil {
		return "", fmt.Errorf("create surveyor credential: %w", err)
	}
	return resp.Token, nil
}

// newKiosk creates a unit in a province and a kiosk credential bound to it.
func newKiosk(admin *client.Client, unitID, province string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.Admin.CreateUnit(ctx, &sipasv1.CreateUnitRequest{Unit: &sipasv1.Unit{
		UnitId: unitID, DisplayName: "Bộ phận một cửa " + unitID, ProvinceCode: province}}); err != nil {
		return "", fmt.Errorf("create unit %s: %w", unitID, err)
	}
	resp, err := admin.Admin.CreateCredential(ctx, &sipasv1.CreateCredentialRequest{
		Credential: &sipasv1.Credential{Role: sipasv1.Role_ROLE_KIOSK, UnitId: unitID, Description: "bench kiosk " + unitID},
	})
	if err != nil {
		return "", fmt.Errorf("create kiosk credential: %w", err)
	}
	return resp.Token, nil
}

// metricValues reads the unlabelled samples whose names start with prefix
// from the child's /metrics (empty when it cannot).
func (c *child) metricValues(prefix string) map[string]float64 {
	vals := map[string]float64{}
	if c.httpAddr == "" {
		return vals
	}
	resp, err := http.Get("http://" + c.httpAddr + "/metrics")
	if err != nil {
		return vals
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && strings.HasPrefix(f[0], prefix) {
			if v, err := strconv.ParseFloat(f[1], 64); err == nil {
				vals[f[0]] = v
			}
		}
	}
	return vals
}

// commitStats reads the group-commit histograms from the child's /metrics:
// commits so far, mean responses per commit and mean commit time.
func (c *child) commitStats() string {
	vals := c.metricValues("sipas_commit_")
	n := vals["sipas_commit_batch_size_count"]
	if n == 0 {
		return "no commits in /metrics"
	}
	return fmt.Sprintf("%.0f group commits, %.1f responses and %.1f ms per commit on average",
		n, vals["sipas_commit_batch_size_sum"]/n, 1000*vals["sipas_commit_duration_seconds_sum"]/n)
}
