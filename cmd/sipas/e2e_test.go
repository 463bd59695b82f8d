package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sipas-vn/sipas/internal/sipasdtest"
)

// End-to-end tests through the real binaries: sipasd on loopback with a
// temporary data directory, driven by the sipas command.

var binDir string

func TestMain(m *testing.M) {
	dir, cleanup, err := sipasdtest.Build("sipasd", "sipas")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	cleanup()
	os.Exit(code)
}

type daemon = sipasdtest.Daemon

func startDaemon(t *testing.T, dir, addr string) *daemon {
	t.Helper()
	return sipasdtest.Start(t, filepath.Join(binDir, "sipasd"), dir, addr)
}

// result of one sipas run.
type result struct {
	stdout, stderr string
	code           int
}

// sipasCmd runs the sipas binary against addr with stdin.
func sipasCmd(t *testing.T, addr, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "sipas"), args...)
	cmd.Env = append(os.Environ(), "SIPAS_SERVER="+addr, "SIPAS_TOKEN=", "SIPAS_TOKEN_FILE=")
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

func mustCode(t *testing.T, r result, want int, what string) {
	t.Helper()
	if r.code != want {
		t.Fatalf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", what, r.code, want, r.stdout, r.stderr)
	}
}

// credentialFile creates a credential with the CLI, which writes its token to
// a new 0600 file (--out) and prints only the path.
func credentialFile(t *testing.T, d *daemon, args ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "token")
	r := sipasCmd(t, d.Addr, "", append([]string{"admin", "credentials", "create", "--token-file", d.AdminTokenFile(), "--format", "json", "--out", path}, args...)...)
	mustCode(t, r, 0, "credentials create")
	var c struct {
		Token     string `json:"token"`
		TokenFile string `json:"token_file"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &c); err != nil || c.TokenFile != path || c.Token != "" {
		t.Fatalf("credentials create --out printed %q (%v): want the path and no token", r.stdout, err)
	}
	b, err := os.ReadFile(path)
	if err != nil || !strings.HasPrefix(string(b), "sps_") || strings.Contains(r.stdout+r.stderr, strings.TrimSpace(string(b))) {
		t.Fatalf("token file %q (%v), or the token was printed", b, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v, want 0600", fi.Mode().Perm())
	}
	return path
}

// TestCredentialsCreateOutRefusesExistingFile: --out never overwrites a
// file (it may hold a live token), and a refused --out creates no credential.
func TestCredentialsCreateOutRefusesExistingFile(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "127.0.0.1:0")
	list := func() string {
		r := sipasCmd(t, d.Addr, "", "admin", "credentials", "list", "--token-file", d.AdminTokenFile(), "--format", "csv")
		mustCode(t, r, 0, "credentials list")
		return r.stdout
	}
	before := list()
	existing := filepath.Join(t.TempDir(), "kiosk.token")
	if err := os.WriteFile(existing, []byte("sps_keep\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := sipasCmd(t, d.Addr, "", "admin", "credentials", "create", "--token-file", d.AdminTokenFile(), "--role", "analyst", "--provinces", "all", "--out", existing)
	mustCode(t, r, 2, "credentials create --out onto an existing file")
	if b, _ := os.ReadFile(existing); string(b) != "sps_keep\n" || !strings.Contains(r.stderr, "exists") {
		t.Fatalf("existing file now %q; stderr %q", b, r.stderr)
	}
	if after := list(); after != before {
		t.Fatalf("a refused --out still created a credential:\nbefore %s\nafter %s", before, after)
	}
	// Flags after the positional-free command line, and a table output that
	// names the file but never prints the token.
	path := filepath.Join(t.TempDir(), "analyst.token")
	r = sipasCmd(t, d.Addr, "", "admin", "credentials", "create", "--role", "analyst", "--provinces", "all", "--out", path, "--token-file", d.AdminTokenFile())
	mustCode(t, r, 0, "credentials create --out (table)")
	tok, _ := os.ReadFile(path)
	if !strings.Contains(r.stdout, path) || len(tok) < 10 || strings.Contains(r.stdout, strings.TrimSpace(string(tok))) {
		t.Fatalf("table output %q: want the path, not the token", r.stdout)
	}
}

func uploadJSON(t *testing.T, r result) uploadReport {
	t.Helper()
	var rep uploadReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("upload --format json printed %q: %v (stderr %s)", r.stdout, err, r.stderr)
	}
	return rep
}

// exampleRows reads testdata/example-48.csv.
func exampleRows(t *testing.T) [][]string {
	t.Helper()
	f, err := os.Open("../../testdata/example-48.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func writeCSV(t *testing.T, recs [][]string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "batch.csv")
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	if err := w.WriteAll(recs); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestE2EUploadAndIndex(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "127.0.0.1:0")
	team := credentialFile(t, d, "--role", "surveyor", "--provinces", "48")
	example := "../../testdata/example-48.csv"

	// 1. The example file goes in.
	r := sipasCmd(t, d.Addr, "", "upload", "--token-file", team, "--format", "json", example)
	mustCode(t, r, 0, "upload example")
	rep := uploadJSON(t, r)
	if rep.Rows != 30 || rep.Accepted != 30 || rep.Duplicate != 0 || rep.Rejected != 0 {
		t.Fatalf("first upload: %+v", rep)
	}
	// 2. Again: all duplicate, nothing counted twice.
	r = sipasCmd(t, d.Addr, "", "upload", "--token-file", team, "--format", "json", example)
	mustCode(t, r, 0, "re-upload example")
	if rep = uploadJSON(t, r); rep.Accepted != 0 || rep.Duplicate != 30 {
		t.Fatalf("re-upload: %+v", rep)
	}
	if rows, _ := sipasdtest.Counts(t, d.Dir); rows != 30 {
		t.Fatalf("stored %d, want 30", rows)
	}
	// An admin reads the exact counts (issue 16 item 4); a surveyor may not.
	r = sipasCmd(t, d.Addr, "", "admin", "counts", "--token-file", d.AdminTokenFile(), "--year", "2026", "--province", "48", "--format", "json")
	mustCode(t, r, 0, "admin counts")
	var counts []struct {
		Questionnaire, Province, Month, Channel string
		Responses                               int64
	}
	if err := json.Unmarshal([]byte(r.stdout), &counts); err != nil {
		t.Fatalf("admin counts printed %q: %v", r.stdout, err)
	}
	var total int64
	for _, c := range counts {
		if c.Questionnaire != "sipas-2023" || c.Province != "48" || !strings.HasPrefix(c.Month, "2026-") {
			t.Errorf("admin counts row %+v", c)
		}
		total += c.Responses
	}
	if total != 30 {
		t.Errorf("admin counts: %d responses, want 30: %s", total, r.stdout)
	}
	r = sipasCmd(t, d.Addr, "", "admin", "counts", "--token-file", team, "--year", "2026")
	mustCode(t, r, 4, "admin counts as surveyor")

	// 3. A file with 2 bad rows: exit 3 and nothing uploaded...
	recs := exampleRows(t)
	bad := [][]string{recs[0]}
	for _, rec := range recs[1:11] {
		rec = append([]string(nil), rec...)
		rec[0] = uuid.Must(uuid.NewV7()).String()
		bad = append(bad, rec)
	}
	bad[3][14+2] = "7" // line 4: answer code outside SAT5
	bad[7][2] = "99"   // line 8: no such province
	path := writeCSV(t, bad)
	r = sipasCmd(t, d.Addr, "", "upload", "--token-file", team, path)
	mustCode(t, r, exitRejected, "upload with bad rows")
	for _, want := range []string{":4: INVALID_ANSWER_CODE", ":8: "} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if rows, _ := sipasdtest.Counts(t, d.Dir); rows != 30 {
		t.Fatalf("a refused file stored rows: %d", rows)
	}
	// ...and with --skip-invalid the 8 good rows go in (exit 3: some were refused).
	r = sipasCmd(t, d.Addr, "", "upload", "--token-file", team, "--skip-invalid", "--format", "json", path)
	mustCode(t, r, exitRejected, "upload --skip-invalid")
	rep = uploadJSON(t, r)
	if rep.Accepted != 8 || rep.Invalid != 2 || len(rep.Rejections) != 2 || rep.Rejections[0].Line != 4 || rep.Rejections[1].Line != 8 {
		t.Fatalf("--skip-invalid: %+v", rep)
	}
	if rows, _ := sipasdtest.Counts(t, d.Dir); rows != 38 {
		t.Fatalf("stored %d, want 38", rows)
	}

	// 4. Rows without ids: refused unless --assign-ids, which writes ids into the file first.
	noIDs := [][]string{recs[0]}
	for _, rec := range recs[11:16] {
		rec = append([]string(nil), rec...)
		rec[0] = ""
		noIDs = append(noIDs, rec)
	}
	path = writeCSV(t, noIDs)
	r = sipasCmd(t, d.Addr, "", "upload", "--token-file", team, path)
	mustCode(t, r, exitRejected, "upload without ids")
	if !strings.Contains(r.stderr, "--assign-ids") {
		t.Errorf("no hint about --assign-ids: %s", r.stderr)
	}
	r = sipasCmd(t, d.Addr, "", "upload", "--token-file", team, "--assign-ids", "--format", "json", path)
	mustCode(t, r, 0, "upload --assign-ids")
	if rep = uploadJSON(t, r); rep.Accepted != 5 || rep.IDsAssigned != 5 {
		t.Fatalf("--assign-ids: %+v", rep)
	}
	r = sipasCmd(t, d.Addr, "", "upload", "--token-file", team, "--format", "json", path)
	mustCode(t, r, 0, "re-upload after --assign-ids")
	if rep = uploadJSON(t, r); rep.Duplicate != 5 {
		t.Fatalf("the ids written into the file were not the ones uploaded: %+v", rep)
	}

	// 5. JSON Lines.
	jl := filepath.Join(t.TempDir(), "batch.jsonl")
	line := func(id string, code int) string {
		return fmt.Sprintf(`{"response_id":%q,"questionnaire":"sipas-2023","province":"48","collected_at":"2026-04-02","channel":"phone","gender":"female","answers":{"V23.HL.29":%d,"V23.HL.31":4}}`, id, code)
	}
	os.WriteFile(jl, []byte(line(uuid.Must(uuid.NewV7()).String(), 5)+"\n\n"+line(uuid.Must(uuid.NewV7()).String(), 3)+"\n"), 0o644)
	r = sipasCmd(t, d.Addr, "", "upload", "--token-file", team, "--format", "json", jl)
	mustCode(t, r, 0, "upload jsonl")
	if rep = uploadJSON(t, r); rep.Accepted != 2 {
		t.Fatalf("jsonl: %+v", rep)
	}

	// 6. The index over what went in.
	analyst := credentialFile(t, d, "--role", "analyst", "--provinces", "all")
	r = sipasCmd(t, d.Addr, "", "index", "rank", "--token-file", analyst, "--year", "2026", "--format", "json")
	mustCode(t, r, 0, "index rank")
	// JSON is an object: the header block as metadata, then the rows.
	var ranking struct {
		Metadata map[string]string `json:"metadata"`
		Rows     []struct {
			ID     string   `json:"id"`
			Value  *float64 `json:"value"`
			CILow  *float64 `json:"ci_low"`
			CIHigh *float64 `json:"ci_high"`
			N      *int64   `json:"n"`
			State  string   `json:"state"`
		} `json:"rows"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &ranking); err != nil {
		t.Fatalf("index rank output %q: %v", r.stdout, err)
	}
	if m := ranking.Metadata; m["period"] != "2026" || m["questionnaire"] != "sipas-2023" || m["formula_version"] == "" || m["boundaries"] != "as_collected" ||
		m["channel"] != "all" || !strings.Contains(m["disclosure"], "k=") {
		t.Errorf("index rank metadata %v", m)
	}
	found := false
	for _, p := range ranking.Rows {
		if p.ID == "48" {
			found = true
			if p.N == nil || *p.N != 45 || p.Value == nil || *p.Value <= 0 || *p.Value > 100 || p.CILow == nil || p.CIHigh == nil || p.State != "ok" {
				t.Errorf("province 48: %+v, want n 45, a value and its interval", p)
			}
		}
	}
	if !found {
		t.Errorf("province 48 missing from the ranking: %s", r.stdout)
	}

	// The tree of the province, as JSON, CSV and a table: level and parent
	// columns, full labels, numbers as numbers.
	r = sipasCmd(t, d.Addr, "", "index", "show", "--token-file", analyst, "--province", "48", "--year", "2026", "--format", "json")
	mustCode(t, r, 0, "index show")
	var show struct {
		Metadata map[string]string `json:"metadata"`
		Rows     []struct {
			Code   string   `json:"code"`
			Level  int      `json:"level"`
			Parent string   `json:"parent"`
			Value  *float64 `json:"value"`
			N      *int64   `json:"n"`
			CILow  *float64 `json:"ci_low"`
			CIHigh *float64 `json:"ci_high"`
		} `json:"rows"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &show); err != nil {
		t.Fatalf("index show output %q: %v", r.stdout, err)
	}
	sipasRoot, children := false, 0
	for _, n := range show.Rows {
		if n.Code == "SIPAS" && n.Level == 0 {
			sipasRoot = true
			if n.Value == nil || n.N == nil || *n.N != 45 || n.CILow == nil || n.CIHigh == nil {
				t.Errorf("SIPAS row %+v: want a value, n 45 and an interval", n)
			}
		}
		if n.Parent == "SIPAS" && n.Level == 1 && (n.Code == "CS" || n.Code == "DV") {
			children++
		}
	}
	if !sipasRoot || children != 2 || show.Metadata["respondents"] != "45" {
		t.Errorf("index show: no SIPAS root with children CS and DV, or respondents != 45: %s", r.stdout)
	}
	r = sipasCmd(t, d.Addr, "", "index", "show", "--token-file", analyst, "--province", "48", "--year", "2026", "--format", "csv")
	mustCode(t, r, 0, "index show csv")
	if !strings.HasPrefix(r.stdout, "\uFEFF") || strings.Contains(r.stdout, "…") || strings.Contains(r.stdout, "—") ||
		!strings.Contains(r.stdout, "Mức độ hài lòng chung đối với việc xây dựng, tổ chức thực hiện chính sách công") {
		t.Errorf("index show csv: want a BOM, full labels and no dashes in place of numbers:\n%.1500s", r.stdout)
	}
	r = sipasCmd(t, d.Addr, "", "index", "show", "--token-file", analyst, "--province", "48", "--year", "2026", "--format", "csv", "--lang", "vi")
	mustCode(t, r, 0, "index show csv vi")
	if !strings.Contains(r.stdout, "Bộ câu hỏi,sipas-2023") || !strings.Contains(r.stdout, "Cận dưới 95%") {
		t.Errorf("index show csv --lang vi: no Vietnamese header block and headers:\n%.800s", r.stdout)
	}
	r = sipasCmd(t, d.Addr, "", "index", "show", "--token-file", analyst, "--province", "48", "--year", "2026")
	mustCode(t, r, 0, "index show table")
	if !strings.Contains(r.stdout, "SIPAS") || !strings.Contains(r.stdout, "V23.HL.31") {
		t.Errorf("index show table lacks the tree: %s", r.stdout)
	}
	// A series over the months: empty months are "no data", not "suppressed".
	r = sipasCmd(t, d.Addr, "", "index", "series", "--token-file", analyst, "--province", "48", "--from", "2026-01", "--to", "2026-12", "--format", "json")
	mustCode(t, r, 0, "index series")
	var pts struct {
		Rows []struct {
			Period string `json:"period"`
			State  string `json:"state"`
		} `json:"rows"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &pts); err != nil || len(pts.Rows) != 12 || pts.Rows[0].Period != "2026-01" {
		t.Errorf("index series: %v %s", err, r.stdout)
	}
	// The example's rows fall in March and April (April below k): the
	// other ten months have no data and must say so. March is withheld too
	// (complementary suppression): the year is published, and the year
	// minus March would be April.
	states := map[string]string{}
	for _, p := range pts.Rows {
		states[p.Period] = p.State
	}
	for _, p := range pts.Rows {
		want := "no_data"
		if p.Period == "2026-03" || p.Period == "2026-04" {
			want = "suppressed"
		}
		if p.State != want {
			t.Errorf("index series %s: state %q, want %q (all states %v)", p.Period, p.State, want, states)
		}
	}
	r = sipasCmd(t, d.Addr, "", "index", "weak", "--token-file", analyst, "--province", "48", "--year", "2026")
	mustCode(t, r, 0, "index weak")
	if !strings.Contains(r.stdout, "Lowest values") {
		t.Errorf("index weak: %s", r.stdout)
	}
	// A surveyor may not read indices: exit code 4.
	r = sipasCmd(t, d.Addr, "", "index", "rank", "--token-file", team, "--year", "2026")
	mustCode(t, r, 4, "index rank as surveyor")
}

// TestE2EKioskSimulateSurvivesKill builds a backlog in a kiosk outbox while
// the server is down, then SIGKILLs the draining kiosk process midway and
// runs it again: every response arrives exactly once.
func TestE2EKioskSimulateSurvivesKill(t *testing.T) {
	const total = 3000
	dataDir := t.TempDir()
	addr := sipasdtest.FreeAddr(t)
	d := startDaemon(t, dataDir, addr)
	r := sipasCmd(t, addr, "", "admin", "units", "create", "--token-file", d.AdminTokenFile(), "--id", "dn-haichau",
		"--name", "Bộ phận Một cửa phường Hải Châu", "--province", "48")
	mustCode(t, r, 0, "units create")
	kiosk := credentialFile(t, d, "--role", "kiosk", "--unit", "dn-haichau")
	d.Stop()

	outboxes := t.TempDir()
	sim := func(extra ...string) []string {
		return append([]string{"kiosk", "simulate", "--token-file", kiosk, "--outbox-dir", outboxes, "--format", "json"}, extra...)
	}
	r = sipasCmd(t, addr, "", sim("--kiosks", "2", "--count", fmt.Sprint(total/2), "--rate", "0", "--duration", "0", "--drain-timeout", "0")...)
	mustCode(t, r, 0, "simulate while the server is down")
	var out struct {
		Total struct{ Submitted, Acknowledged, Dead, Pending int64 } `json:"total"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("simulate output %q: %v", r.stdout, err)
	}
	if out.Total.Submitted != total || out.Total.Pending != total {
		t.Fatalf("backlog: %+v", out.Total)
	}

	d = startDaemon(t, dataDir, addr)
	cmd := exec.Command(filepath.Join(binDir, "sipas"), sim("--count", "0", "--duration", "0", "--drain-timeout", "60s")...)
	cmd.Env = append(os.Environ(), "SIPAS_SERVER="+addr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if n, _ := sipasdtest.Counts(t, dataDir); n >= total/4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	killedAt, _ := sipasdtest.Counts(t, dataDir)
	if killedAt >= total {
		t.Logf("the drain finished before the kill (%d stored)", killedAt)
	}

	r = sipasCmd(t, addr, "", sim("--count", "0", "--duration", "0", "--drain-timeout", "60s")...)
	mustCode(t, r, 0, "drain after the kill")
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatal(err)
	}
	if out.Total.Pending != 0 || out.Total.Dead != 0 {
		t.Fatalf("after drain: %+v", out.Total)
	}
	rows, distinct := sipasdtest.Counts(t, dataDir)
	if rows != total || distinct != total {
		t.Fatalf("server holds %d rows (%d distinct), want exactly %d (kiosk killed at %d)", rows, distinct, total, killedAt)
	}
	t.Logf("kiosk process SIGKILLed with %d of %d stored; after restart all %d stored once", killedAt, total, total)
}

func TestE2EKioskInteractive(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "127.0.0.1:0")
	r := sipasCmd(t, d.Addr, "", "admin", "units", "create", "--token-file", d.AdminTokenFile(), "--id", "dn-k1",
		"--name", "Một cửa", "--province", "48")
	mustCode(t, r, 0, "units create")
	kiosk := credentialFile(t, d, "--role", "kiosk", "--unit", "dn-k1")
	var in strings.Builder
	// Response 1: 23 answers, with one invalid answer re-asked.
	in.WriteString("7\n")
	for i := range 23 {
		fmt.Fprintf(&in, "%d\n", []int{5, 4, 3, 8, 9, 4}[i%6])
	}
	// Response 2: only the first two answered, the rest skipped.
	in.WriteString("4\n5\n" + strings.Repeat("\n", 21))
	// Response 3: nothing answered: not recorded. Then a citizen's q (no
	// PIN: refused), then the operator's q and PIN; the rest of the input is
	// never read.
	in.WriteString(strings.Repeat("\n", 23) + "q\n0000\nq\n4321\n" + strings.Repeat("5\n", 23))
	outbox := filepath.Join(t.TempDir(), "kiosk.db")
	r = sipasCmd(t, d.Addr, in.String(), "kiosk", "--token-file", kiosk, "--outbox", outbox, "--operator-pin", "4321")
	mustCode(t, r, 0, "kiosk")
	if strings.Count(r.stdout, "Only an operator can quit") != 1 {
		t.Errorf("a wrong PIN must not quit, and the right one must: %s", r.stdout)
	}
	for _, want := range []string{"Rất hài lòng", "Câu trả lời không hợp lệ", "Xin cảm ơn", "[23/23]"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("kiosk output lacks %q", want)
		}
	}
	if !strings.Contains(r.stderr, "2 responses recorded") || !strings.Contains(r.stderr, "0 waiting") {
		t.Errorf("kiosk summary: %s", r.stderr)
	}
	if rows, _ := sipasdtest.Counts(t, d.Dir); rows != 2 {
		t.Fatalf("stored %d, want 2", rows)
	}

	// The scripted example of --help saves one response.
	r = sipasCmd(t, d.Addr, strings.Repeat("4\n", 23), "kiosk", "--token-file", kiosk, "--outbox", filepath.Join(t.TempDir(), "k2.db"))
	mustCode(t, r, 0, "kiosk, the --help example")
	if rows, _ := sipasdtest.Counts(t, d.Dir); rows != 3 {
		t.Fatalf("the --help example: stored %d, want 3", rows)
	}
	r = sipasCmd(t, d.Addr, "", "kiosk", "--help")
	if !strings.Contains(r.stderr, "yes 4 | head -n 23 | sipas kiosk") {
		t.Errorf("--help lacks the scripted example: %s", r.stderr)
	}
}

// TestE2EUploadServerOnlyQuestionnaire: a file of a questionnaire version
// the server loaded with --questionnaires (and this tool does not carry) is
// validated against the server's definition and uploaded.
func TestE2EUploadServerOnlyQuestionnaire(t *testing.T) {
	extra := t.TempDir()
	if err := os.CopyFS(filepath.Join(extra, "sipas-2024"), os.DirFS(filepath.Join("..", "..", "questionnaires", "testdata", "sipas-2024"))); err != nil {
		t.Fatal(err)
	}
	d := sipasdtest.Start(t, filepath.Join(binDir, "sipasd"), t.TempDir(), "127.0.0.1:0", "--questionnaires", extra)
	team := credentialFile(t, d, "--role", "surveyor", "--provinces", "48")
	recs := [][]string{{"response_id", "questionnaire", "province", "collected_at", "channel", "V24.HL.31", "V24.HL.32"}}
	for i := range 5 {
		recs = append(recs, []string{uuid.Must(uuid.NewV7()).String(), "sipas-2024", "48", "2026-03-14", "field", fmt.Sprint(1 + i%5), "4"})
	}
	recs = append(recs, []string{uuid.Must(uuid.NewV7()).String(), "sipas-2024", "48", "2026-03-14", "field", "7", "4"}) // bad code
	path := writeCSV(t, recs)
	r := sipasCmd(t, d.Addr, "", "upload", "--token-file", team, "--format", "json", path)
	mustCode(t, r, 3, "upload with one bad row")
	if rep := uploadJSON(t, r); rep.Invalid != 1 || len(rep.Rejections) != 1 || rep.Rejections[0].Line != 7 || rep.Rejections[0].Reason != "INVALID_ANSWER_CODE" {
		t.Fatalf("want only line 7 refused for its code against the server's definition: %s", r.stdout)
	}
	r = sipasCmd(t, d.Addr, "", "upload", "--token-file", team, "--format", "json", "--skip-invalid", path)
	mustCode(t, r, 3, "upload --skip-invalid")
	if rep := uploadJSON(t, r); rep.Accepted != 5 {
		t.Fatalf("accepted %d, want 5: %+v", rep.Accepted, rep)
	}
	// A version nobody knows is reported per row.
	recs[1][1] = "sipas-2099"
	r = sipasCmd(t, d.Addr, "", "upload", "--token-file", team, "--dry-run", writeCSV(t, recs[:2]))
	mustCode(t, r, 3, "unknown questionnaire")
	if !strings.Contains(r.stderr, "UNKNOWN_QUESTIONNAIRE") {
		t.Fatalf("unknown questionnaire not reported: %s", r.stderr)
	}
}

// TestE2EUploadInterruptedAndResumed stops an upload with Ctrl-C halfway,
// then runs the same command again: exit 130 first, then every row stored
// exactly once, the ones acknowledged before coming back as duplicates.
func TestE2EUploadInterruptedAndResumed(t *testing.T) {
	dataDir := t.TempDir()
	d := startDaemon(t, dataDir, "127.0.0.1:0")
	team := credentialFile(t, d, "--role", "surveyor", "--provinces", "48")
	const rows = 30000
	recs := [][]string{{"response_id", "questionnaire", "province", "collected_at", "channel"}}
	for j := 29; j <= 51; j++ {
		recs[0] = append(recs[0], fmt.Sprintf("V23.HL.%02d", j))
	}
	for i := range rows {
		rec := []string{uuid.Must(uuid.NewV7()).String(), "sipas-2023", "48", "2026-03-14", "field"}
		for j := 29; j <= 51; j++ {
			rec = append(rec, fmt.Sprint(1+(i+j)%5))
		}
		recs = append(recs, rec)
	}
	path := writeCSV(t, recs)
	cmd := exec.Command(filepath.Join(binDir, "sipas"), "upload", "--token-file", team, "--progress", "none", path)
	cmd.Env = append(os.Environ(), "SIPAS_SERVER="+d.Addr, "SIPAS_TOKEN=", "SIPAS_TOKEN_FILE=")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if n, _ := sipasdtest.Counts(t, dataDir); n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing stored after 30 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 || !strings.Contains(errb.String(), "Run the same command again") {
		t.Fatalf("interrupted upload: %v, stderr %q; want exit 130 and how to go on", err, errb.String())
	}
	before, _ := sipasdtest.Counts(t, dataDir)
	if before >= rows {
		t.Skipf("the upload finished (%d rows) before the interrupt landed", before)
	}
	r := sipasCmd(t, d.Addr, "", "upload", "--token-file", team, "--format", "json", "--progress", "none", path)
	mustCode(t, r, 0, "resumed upload")
	rep := uploadJSON(t, r)
	n, distinct := sipasdtest.Counts(t, dataDir)
	if n != rows || distinct != rows || rep.Accepted+rep.Duplicate != rows || rep.Duplicate < int64(before) {
		t.Fatalf("after resuming: %d rows (%d distinct), report %+v; %d stored before; want %d once each", n, distinct, rep, before, rows)
	}
	t.Logf("interrupted after %d of %d rows; the rerun found %d duplicates and accepted %d", before, rows, rep.Duplicate, rep.Accepted)
}

// TestCredentialsRevokeByPrefix: a credential id may be given by a unique
// prefix, as 'credentials list' shows ids; unknown or too short prefixes are
// usage errors that revoke nothing.
func TestCredentialsRevokeByPrefix(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "127.0.0.1:0")
	path := filepath.Join(t.TempDir(), "analyst.token")
	r := sipasCmd(t, d.Addr, "", "admin", "credentials", "create", "--token-file", d.AdminTokenFile(), "--role", "analyst", "--provinces", "all", "--out", path, "--format", "json")
	mustCode(t, r, 0, "credentials create")
	var c struct{ ID string }
	if err := json.Unmarshal([]byte(r.stdout), &c); err != nil || len(c.ID) != 36 {
		t.Fatalf("create printed %q: %v", r.stdout, err)
	}
	mustCode(t, sipasCmd(t, d.Addr, "", "admin", "credentials", "revoke", "--token-file", d.AdminTokenFile(), c.ID[:3]), 2, "revoke by a 3-character prefix")
	mustCode(t, sipasCmd(t, d.Addr, "", "admin", "credentials", "revoke", "--token-file", d.AdminTokenFile(), "zzzzzzzz"), 2, "revoke by an unknown prefix")
	mustCode(t, sipasCmd(t, d.Addr, "", "index", "rank", "--token-file", path, "--year", "2026"), 0, "the analyst reads before revocation")
	r = sipasCmd(t, d.Addr, "", "admin", "credentials", "revoke", c.ID[:8], "--token-file", d.AdminTokenFile(), "--format", "csv")
	mustCode(t, r, 0, "revoke by an 8-character prefix")
	if !strings.Contains(r.stdout, c.ID) {
		t.Fatalf("revoke output %q does not name %s", r.stdout, c.ID)
	}
	mustCode(t, sipasCmd(t, d.Addr, "", "index", "rank", "--token-file", path, "--year", "2026"), 4, "the revoked analyst reads")
}

// TestUploadFileErrorsAreReportedOnce: a problem in the local file is one
// file error naming the file, with exit 3, no hint about the server, and
// nothing stored.
func TestUploadFileErrorsAreReportedOnce(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "127.0.0.1:0")
	team := credentialFile(t, d, "--role", "surveyor", "--provinces", "48")
	recs := exampleRows(t)
	semicolons := filepath.Join(t.TempDir(), "semicolons.csv")
	var b strings.Builder
	for _, r := range recs {
		b.WriteString(strings.Join(r, ";") + "\n")
	}
	if err := os.WriteFile(semicolons, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	workbook := filepath.Join(t.TempDir(), "survey.csv")
	if err := os.WriteFile(workbook, []byte("PK\x03\x04\x14\x00\x06\x00binary workbook"), 0o644); err != nil {
		t.Fatal(err)
	}
	rename := func(from, to string) string {
		out := append([][]string{slices.Clone(recs[0])}, recs[1:]...)
		i := slices.Index(out[0], from)
		if i < 0 {
			t.Fatalf("no column %s", from)
		}
		out[0][i] = to
		return writeCSV(t, out)
	}
	for _, tc := range []struct {
		name, path, want string
	}{
		{"semicolons", semicolons, "separated by ';'"},
		{"xlsx", workbook, "Excel workbook"},
		{"misspelt item", rename(recs[0][len(recs[0])-1], recs[0][len(recs[0])-1]+"x"), "did you mean"},
		{"misspelt unit", rename("unit", "unti"), `did you mean "unit"`},
		{"no channel", rename("channel", "chanel"), `lacks column "channel"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := sipasCmd(t, d.Addr, "", "upload", tc.path, "--token-file", team)
			mustCode(t, r, 3, "upload "+tc.name)
			if lines := strings.Count(strings.TrimSpace(r.stderr), "\n") + 1; lines != 1 || !strings.Contains(r.stderr, tc.path) || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr %q: want one line naming %s and saying %q", r.stderr, tc.path, tc.want)
			}
			if strings.Contains(r.stderr, "sipasd") || strings.Contains(r.stderr, "hint") {
				t.Errorf("stderr %q blames the server", r.stderr)
			}
		})
	}
	if rows, _ := sipasdtest.Counts(t, d.Dir); rows != 0 {
		t.Fatalf("%d responses stored from bad files", rows)
	}
}

// TestQuestionnaireTemplateUploads: the template has every item column of
// the served definition, and a row keyed into it uploads as is.
func TestQuestionnaireTemplateUploads(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "127.0.0.1:0")
	team := credentialFile(t, d, "--role", "surveyor", "--provinces", "48")
	path := filepath.Join(t.TempDir(), "survey.csv")
	mustCode(t, sipasCmd(t, d.Addr, "", "questionnaire", "template", "sipas-2023", "--out", path, "--token-file", team), 0, "template")
	mustCode(t, sipasCmd(t, d.Addr, "", "questionnaire", "template", "sipas-2023", "--out", path, "--token-file", team), 2, "template onto an existing file")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(recs) != 1 {
		t.Fatalf("template: %d records, %v; want the header only", len(recs), err)
	}
	r := sipasCmd(t, d.Addr, "", "questionnaire", "show", "sipas-2023", "--format", "json", "--token-file", team)
	mustCode(t, r, 0, "questionnaire show")
	var items []struct{ Code string }
	if err := json.Unmarshal([]byte(r.stdout), &items); err != nil || len(items) < 100 {
		t.Fatalf("questionnaire show: %d items, %v", len(items), err)
	}
	header := recs[0]
	if len(header) != 14+len(items) {
		t.Fatalf("template header has %d columns, want 14 fixed + %d items", len(header), len(items))
	}
	for i, it := range items {
		if header[14+i] != it.Code {
			t.Fatalf("column %d is %q, want item %q", 14+i, header[14+i], it.Code)
		}
	}
	// One keyed row, answering one item, goes in.
	row := make([]string, len(header))
	copy(row, []string{uuid.Must(uuid.NewV7()).String(), "sipas-2023", "48", "2026-03-14", "field"})
	row[14] = "1"
	writeRows := append([][]string{header}, row)
	mustCode(t, sipasCmd(t, d.Addr, "", "upload", writeCSV(t, writeRows), "--token-file", team), 0, "upload a keyed template row")
	if rows, _ := sipasdtest.Counts(t, d.Dir); rows != 1 {
		t.Fatalf("%d rows stored, want 1", rows)
	}
}

// TestE2EIndexFlaggedLeftOutAndIncluded: `sipas index rank|series|weak`
// leave flagged responses out by default and say how many; with
// --include-flagged they count them and say so.
func TestE2EIndexFlaggedLeftOutAndIncluded(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "127.0.0.1:0")
	team := credentialFile(t, d, "--role", "surveyor", "--provinces", "48")
	analyst := credentialFile(t, d, "--role", "analyst", "--provinces", "all")
	recs := exampleRows(t)
	recs[0] = append(recs[0], "flags")
	for i := 1; i < len(recs); i++ {
		fl := ""
		if i%6 == 0 { // 5 of 30
			fl = "too_fast+identical_run"
		}
		recs[i] = append(recs[i], fl)
	}
	r := sipasCmd(t, d.Addr, "", "upload", "--token-file", team, "--format", "json", writeCSV(t, recs))
	mustCode(t, r, 0, "upload with flags")
	if rep := uploadJSON(t, r); rep.Accepted != 30 {
		t.Fatalf("upload: %+v", rep)
	}
	for _, args := range [][]string{
		{"index", "rank", "--year", "2026"},
		{"index", "series", "--province", "48", "--from", "2026", "--to", "2026"},
		{"index", "weak", "--province", "48", "--year", "2026"},
	} {
		r := sipasCmd(t, d.Addr, "", append(args, "--token-file", analyst)...)
		mustCode(t, r, 0, strings.Join(args, " "))
		if !strings.Contains(r.stdout, "5 flagged responses left out (--include-flagged counts them)") {
			t.Errorf("%s does not say 5 flagged responses were left out:\n%s", strings.Join(args, " "), r.stdout)
		}
		r = sipasCmd(t, d.Addr, "", append(args, "--token-file", analyst, "--include-flagged")...)
		mustCode(t, r, 0, strings.Join(args, " ")+" --include-flagged")
		if !strings.Contains(r.stdout, "5 flagged responses included") {
			t.Errorf("%s --include-flagged does not say 5 flagged responses were included:\n%s", strings.Join(args, " "), r.stdout)
		}
	}
	// The ranking's n follows: 25 without, 30 with.
	for _, c := range []struct {
		extra []string
		n     int
	}{{nil, 25}, {[]string{"--include-flagged"}, 30}} {
		r := sipasCmd(t, d.Addr, "", append([]string{"index", "rank", "--year", "2026", "--format", "json", "--token-file", analyst}, c.extra...)...)
		mustCode(t, r, 0, "index rank json")
		if !strings.Contains(r.stdout, fmt.Sprintf(`"n": %d`, c.n)) && !strings.Contains(r.stdout, fmt.Sprintf(`"n":%d`, c.n)) {
			t.Errorf("index rank %v: no row with n %d in %s", c.extra, c.n, r.stdout)
		}
	}
}
