package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// adminTotal sums `sipas admin counts` for province 48 in 2026.
func adminTotal(t *testing.T, d *daemon) int64 {
	t.Helper()
	r := sipasCmd(t, d.Addr, "", "admin", "counts", "--token-file", d.AdminTokenFile(), "--year", "2026", "--province", "48", "--format", "json")
	mustCode(t, r, 0, "admin counts")
	var counts []struct{ Responses int64 }
	if err := json.Unmarshal([]byte(r.stdout), &counts); err != nil {
		t.Fatalf("admin counts printed %q: %v", r.stdout, err)
	}
	var n int64
	for _, c := range counts {
		n += c.Responses
	}
	return n
}

// TestItem5CorrectionsWithATrailCLI (issue 16 item 5) through the real
// binaries: a re-uploaded corrected file is refused row by row as
// RESPONSE_ID_CONFLICT with advice on what to do; with --amend it amends
// the changed rows, reports each row as amended, unchanged or new and
// counts each response once; a response is withdrawn by its sender (not by
// another team), idempotently; its history lists the versions; a closed
// period refuses changes until an admin reopens it; all of it is audited.
func TestItem5CorrectionsWithATrailCLI(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "127.0.0.1:0")
	team := credentialFile(t, d, "--role", "surveyor", "--provinces", "48")
	other := credentialFile(t, d, "--role", "surveyor", "--provinces", "48")
	example := "../../testdata/example-48.csv"
	mustCode(t, sipasCmd(t, d.Addr, "", "upload", "--token-file", team, example), 0, "upload example")

	// Lines 2 and 3 corrected (one answer each), and a new row.
	recs := exampleRows(t)
	fixed := make([][]string, len(recs))
	for i := range recs {
		fixed[i] = append([]string(nil), recs[i]...)
	}
	col := 14 // V23.HL.01
	for _, i := range []int{1, 2} {
		if fixed[i][col] == "1" {
			fixed[i][col] = "2"
		} else {
			fixed[i][col] = "1"
		}
	}
	added := append([]string(nil), recs[5]...)
	added[0] = uuid.Must(uuid.NewV7()).String()
	onlyFixed := writeCSV(t, fixed)
	withNew := writeCSV(t, append(fixed, added))

	r := sipasCmd(t, d.Addr, "", "upload", "--token-file", team, onlyFixed)
	mustCode(t, r, exitRejected, "re-upload of a corrected file without --amend")
	for _, want := range []string{":2: RESPONSE_ID_CONFLICT", ":3: RESPONSE_ID_CONFLICT", "--amend", "sipas responses withdraw"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	mustCode(t, sipasCmd(t, d.Addr, "", "upload", "--token-file", team, "--amend", withNew), exitUsage, "--amend without --reason")
	// Another team may not amend the first team's rows.
	r = sipasCmd(t, d.Addr, "", "upload", "--token-file", other, "--amend", "--reason", "not ours", "--format", "json", onlyFixed)
	mustCode(t, r, exitRejected, "amend by another team")
	if rep := uploadJSON(t, r); rep.Amended != 0 || rep.Rejected != 2 || rep.Rejections[0].Reason != "NOT_SENDER" {
		t.Fatalf("amend by another team: %+v", rep)
	}

	r = sipasCmd(t, d.Addr, "", "upload", "--token-file", team, "--amend", "--reason", "sheet 12 keyed wrong", "--format", "json", withNew)
	mustCode(t, r, 0, "upload --amend")
	rep := uploadJSON(t, r)
	if rep.Amended != 2 || rep.Duplicate != 28 || rep.Accepted != 1 || rep.Rejected != 0 || len(rep.RowOutcomes) != 31 {
		t.Fatalf("upload --amend: %+v", rep)
	}
	outcome := map[int64]string{}
	for _, o := range rep.RowOutcomes {
		outcome[o.Line] = o.Outcome
	}
	if outcome[2] != "amended" || outcome[3] != "amended" || outcome[4] != "unchanged" || outcome[32] != "new" {
		t.Fatalf("row outcomes %v", outcome)
	}
	// The table form says it per row too; a second run changes nothing.
	r = sipasCmd(t, d.Addr, "", "upload", "--token-file", team, "--amend", "--reason", "again", withNew)
	mustCode(t, r, 0, "upload --amend again")
	if !strings.Contains(r.stdout, "0 amended, 31 unchanged, 0 new, 0 rejected") {
		t.Fatalf("second --amend run printed:\n%s", r.stdout)
	}
	if n := adminTotal(t, d); n != 31 {
		t.Fatalf("after amendments the counts hold %d responses, want 31 (each once)", n)
	}

	id := recs[1][0]
	mustCode(t, sipasCmd(t, d.Addr, "", "responses", "withdraw", id, "--token-file", team), exitUsage, "withdraw without --reason")
	mustCode(t, sipasCmd(t, d.Addr, "", "responses", "withdraw", id, "--reason", "x", "--token-file", other), exitAuth, "withdraw by another team")
	r = sipasCmd(t, d.Addr, "", "responses", "withdraw", id, "--reason", "interview keyed twice", "--token-file", team)
	mustCode(t, r, 0, "withdraw")
	if !strings.Contains(r.stdout, "withdrawn") {
		t.Errorf("withdraw printed %q", r.stdout)
	}
	r = sipasCmd(t, d.Addr, "", "responses", "withdraw", id, "--reason", "retry", "--token-file", team)
	mustCode(t, r, 0, "withdraw again")
	if !strings.Contains(r.stdout, "already withdrawn") {
		t.Errorf("second withdraw printed %q", r.stdout)
	}
	if n := adminTotal(t, d); n != 30 {
		t.Fatalf("after a withdrawal the counts hold %d responses, want 30", n)
	}
	r = sipasCmd(t, d.Addr, "", "responses", "history", id, "--token-file", d.AdminTokenFile(), "--format", "json")
	mustCode(t, r, 0, "history")
	var hist struct {
		Withdrawn bool
		Versions  []struct {
			Version    int
			ReplacedBy string `json:"replaced_by"`
			Reason     string
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &hist); err != nil || !hist.Withdrawn || len(hist.Versions) != 2 ||
		hist.Versions[0].ReplacedBy != "amendment" || hist.Versions[0].Reason != "sheet 12 keyed wrong" ||
		hist.Versions[1].ReplacedBy != "withdrawal" || hist.Versions[1].Version != 2 {
		t.Fatalf("history %s (%v)", r.stdout, err)
	}

	// Closing 2026 freezes it.
	r = sipasCmd(t, d.Addr, "", "admin", "periods", "close", "2026", "--reason", "published", "--token-file", d.AdminTokenFile())
	mustCode(t, r, 0, "periods close")
	mustCode(t, sipasCmd(t, d.Addr, "", "admin", "periods", "close", "2026", "--token-file", team), exitAuth, "periods close as surveyor")
	late := append([]string(nil), recs[6]...)
	late[0] = uuid.Must(uuid.NewV7()).String()
	r = sipasCmd(t, d.Addr, "", "upload", "--token-file", team, writeCSV(t, [][]string{recs[0], late}))
	mustCode(t, r, exitRejected, "upload into a closed period")
	if !strings.Contains(r.stderr, "PERIOD_CLOSED") {
		t.Errorf("stderr lacks PERIOD_CLOSED:\n%s", r.stderr)
	}
	r = sipasCmd(t, d.Addr, "", "responses", "withdraw", recs[3][0], "--reason", "x", "--token-file", team)
	if r.code == 0 || !strings.Contains(r.stderr, "closed") {
		t.Fatalf("withdraw in a closed period: exit %d, stderr %s", r.code, r.stderr)
	}
	if n := adminTotal(t, d); n != 30 {
		t.Fatalf("a closed period changed: %d responses", n)
	}
	r = sipasCmd(t, d.Addr, "", "admin", "periods", "list", "--token-file", d.AdminTokenFile(), "--format", "csv")
	mustCode(t, r, 0, "periods list")
	if !strings.Contains(r.stdout, "2026,") || !strings.Contains(r.stdout, "published") {
		t.Errorf("periods list:\n%s", r.stdout)
	}
	mustCode(t, sipasCmd(t, d.Addr, "", "admin", "periods", "reopen", "2026", "--token-file", d.AdminTokenFile()), exitUsage, "reopen without --reason")
	mustCode(t, sipasCmd(t, d.Addr, "", "admin", "periods", "reopen", "2026", "--reason", "late batch", "--token-file", d.AdminTokenFile()), 0, "reopen")
	mustCode(t, sipasCmd(t, d.Addr, "", "responses", "withdraw", recs[3][0], "--reason", "x", "--token-file", team), 0, "withdraw after reopening")

	r = sipasCmd(t, d.Addr, "", "admin", "audit", "--token-file", d.AdminTokenFile(), "--format", "csv")
	mustCode(t, r, 0, "audit")
	for _, want := range []string{"response.amend", "response.withdraw", "period.close", "period.reopen", "sheet 12 keyed wrong", "responses/" + id} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("audit log lacks %q", want)
		}
	}
}
