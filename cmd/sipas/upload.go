package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/client"
	"github.com/sipas-vn/sipas/questionnaires"
)

func init() {
	register(command{name: "upload", summary: "validate and upload a batch file (CSV or JSON Lines) of responses", run: runUpload})
}

// uploadReport is the machine form of an upload's outcome (--format json).
type uploadReport struct {
	File        string                 `json:"file"`
	BatchID     string                 `json:"batch_id,omitempty"`
	Rows        int                    `json:"rows"`
	Invalid     int                    `json:"invalid"`
	IDsAssigned int                    `json:"ids_assigned"`
	Uploaded    bool                   `json:"uploaded"`
	Sent        int64                  `json:"sent"`
	Accepted    int64                  `json:"accepted"`
	Duplicate   int64                  `json:"duplicate"`
	Rejected    int64                  `json:"rejected"`
	Amended     int64                  `json:"amended"`
	Rejections  []client.ItemRejection `json:"rejections"`
	// RowOutcomes is every row's outcome (new, amended, unchanged, rejected), with --amend.
	RowOutcomes []client.RowOutcome `json:"row_outcomes,omitempty"`
	Warnings    []string            `json:"warnings,omitempty"`
	Seconds     float64             `json:"seconds"`
	RowsPerSec  float64             `json:"rows_per_second"`
	Interrupted string              `json:"interrupted,omitempty"`
}

func runUpload(ctx context.Context, e *env, args []string) error {
	var c common
	var assignIDs, skipInvalid, dryRun bool
	var progressMode, qdir, format string
	var amend amendFlags
	fs := newFlags(e, "upload", "sipas upload [flags] FILE.csv|FILE.jsonl",
		"sipas upload --token-file team.token testdata/example-48.csv",
		"sipas upload --assign-ids survey-2026.csv      # write UUIDv7 ids into rows without one, then upload",
		"sipas upload --skip-invalid --format json survey.csv")
	c.register(fs, e)
	fs.BoolVar(&assignIDs, "assign-ids", false, "give rows without response_id a UUIDv7, written into FILE (durably) before uploading")
	fs.BoolVar(&skipInvalid, "skip-invalid", false, "upload the valid rows even when some rows fail validation (they are reported)")
	fs.BoolVar(&dryRun, "dry-run", false, "validate FILE locally and upload nothing")
	fs.StringVar(&progressMode, "progress", "auto", "auto (bar on a terminal, else a line every few seconds), bar, plain or none")
	fs.StringVar(&qdir, "questionnaires", "", "directory of extra questionnaire definitions for local validation")
	fs.StringVar(&format, "input-format", "", "csv or jsonl (default: from the file name; .jsonl/.ndjson are JSON Lines)")
	amend.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := amend.check(); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"give one batch file, e.g. sipas upload survey.csv"}
	}
	if err := checkFormat(c.format); err != nil {
		return err
	}
	switch progressMode {
	case "auto", "bar", "plain", "none":
	default:
		return usageError{"--progress must be auto, bar, plain or none"}
	}
	path := fs.Arg(0)
	if format == "" {
		format = client.BatchFormatOf(path)
	}
	if format != client.FormatCSV && format != client.FormatJSONL {
		return usageError{"--input-format must be csv or jsonl"}
	}
	cat, reg, err := questionnaires.Load(qdir)
	if err != nil {
		return err
	}

	// Pass 1: parse and validate every row; nothing is sent yet.
	rep := &uploadReport{File: path, Rejections: []client.ItemRejection{}}
	check, err := validateBatch(path, format, cat, reg, time.Now(), assignIDs)
	if err != nil {
		return err
	}
	if len(check.unknown) > 0 {
		// A version this tool does not carry may be one the server loaded
		// (sipasd --questionnaires): validate against the server's definition.
		if cat, err = withServerQuestionnaires(ctx, e, &c, cat, check.unknown); err != nil {
			return err
		}
		if check, err = validateBatch(path, format, cat, reg, time.Now(), assignIDs); err != nil {
			return err
		}
	}
	rep.Rows, rep.Invalid = check.rows, len(check.invalid)
	for _, line := range check.lines {
		rep.Rejections = append(rep.Rejections, check.invalid[line])
	}
	if rep.Rows == 0 {
		return rejectedError{fmt.Sprintf("%s holds no rows", path)}
	}
	if rep.Invalid > 0 {
		printRejections(e.stderr, path, rep.Rejections, c.format)
	}
	if dryRun || (rep.Invalid > 0 && !skipInvalid) {
		rep.Seconds = 0
		if err := writeUploadReport(e, rep, c.format); err != nil {
			return err
		}
		if rep.Invalid == 0 {
			return nil
		}
		msg := fmt.Sprintf("%d of %d rows of %s are invalid; nothing was uploaded", rep.Invalid, rep.Rows, path)
		if !dryRun {
			msg += ". Fix them, or pass --skip-invalid to upload the valid rows"
		}
		if check.missingIDs > 0 && !assignIDs {
			msg += fmt.Sprintf("; %d rows have no response_id: pass --assign-ids to write ids into the file first", check.missingIDs)
		}
		return rejectedError{msg}
	}

	// Ids first, into the file, so the file stays the durable record.
	if check.missingIDs > 0 && assignIDs {
		n, err := client.AssignIDs(path, format)
		if err != nil {
			return fmt.Errorf("assigning ids in %s: %w", path, err)
		}
		rep.IDsAssigned = n
		fmt.Fprintf(e.stderr, "sipas: wrote %d new response ids into %s\n", n, path)
	}
	toSend := rep.Rows - rep.Invalid
	if toSend == 0 {
		_ = writeUploadReport(e, rep, c.format)
		return rejectedError{fmt.Sprintf("every row of %s is invalid; nothing was uploaded", path)}
	}

	cl, err := c.dial(e)
	if err != nil {
		return err
	}
	defer cl.Close()

	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	br, err := client.NewBatchReader(f, format)
	if err != nil {
		return err
	}
	var readErr error
	items := iter.Seq[client.BatchItem](func(yield func(client.BatchItem) bool) {
		for {
			row, err := br.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				readErr = err
				return
			}
			if _, bad := check.invalid[row.Line]; bad || row.Err != nil || row.Response.ID == "" {
				continue
			}
			if !yield(client.BatchItem{Line: row.Line, Response: row.Response}) {
				return
			}
		}
	})
	prog := newUploadProgress(e, progressMode, toSend)
	batchID, _ := uuid.NewV7()
	opts := client.UploadOptions{BatchID: batchID.String(), Progress: prog.update, Amend: amend.on, AmendReason: amend.reason,
		OnRetry: func(attempt int, d time.Duration, err error) {
			prog.note(fmt.Sprintf("sipas: upload interrupted (%s); resending unacknowledged rows in %s (attempt %d)",
				sipas.KindOf(err), d.Round(100*time.Millisecond), attempt+1))
		}}
	sum, uerr := cl.Upload(ctx, items, opts)
	prog.finish()
	if uerr == nil && readErr != nil {
		uerr = fmt.Errorf("reading %s: %w", path, readErr)
	}
	rep.Uploaded = true
	if sum != nil {
		rep.BatchID = sum.BatchID
		rep.Sent, rep.Accepted, rep.Duplicate, rep.Rejected, rep.Amended = sum.Items, sum.Accepted, sum.Duplicate, sum.Rejected, sum.Amended
		rep.RowOutcomes = sum.Rows
		rep.Rejections = append(rep.Rejections, sum.Rejects...)
		rep.Warnings = sum.Warnings
		rep.Seconds = sum.Duration.Seconds()
		if rep.Seconds > 0 {
			rep.RowsPerSec = float64(sum.Accepted+sum.Duplicate+sum.Rejected) / rep.Seconds
		}
	}
	sort.SliceStable(rep.Rejections, func(i, j int) bool { return rep.Rejections[i].Line < rep.Rejections[j].Line })
	if uerr != nil {
		rep.Interrupted = uerr.Error()
	}
	if sum != nil && sum.Rejected > 0 {
		printRejections(e.stderr, path, sum.Rejects, c.format)
		conflictHint(e.stderr, sum.Rejects, amend.on)
	}
	if err := writeUploadReport(e, rep, c.format); err != nil {
		return err
	}
	if uerr != nil {
		if errors.Is(uerr, context.Canceled) {
			return interruptedError{fmt.Sprintf("upload interrupted; %d rows acknowledged. Run the same command again: acknowledged rows come back as duplicate", rep.Accepted+rep.Duplicate+rep.Rejected)}
		}
		return uerr
	}
	if rep.Rejected > 0 || rep.Invalid > 0 {
		return rejectedError{fmt.Sprintf("%d rows rejected by the server, %d invalid rows skipped; the other rows are stored", rep.Rejected, rep.Invalid)}
	}
	return nil
}

// batchCheck is what pass 1 found.
type batchCheck struct {
	rows       int
	missingIDs int
	// unknown are questionnaire ids the local catalog lacks.
	unknown map[string]bool
	invalid map[int64]client.ItemRejection
	lines   []int64 // invalid lines in order
}

// validateBatch parses and validates every row of a batch file locally.
func validateBatch(path, format string, cat *sipas.Catalog, reg *sipas.Registry, now time.Time, assignIDs bool) (*batchCheck, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br, err := client.NewBatchReader(f, format)
	if err != nil {
		return nil, fileError{path, err}
	}
	named := map[string]*sipas.Questionnaire{} // the questionnaires the rows name
	chk := &batchCheck{invalid: map[int64]client.ItemRejection{}, unknown: map[string]bool{}}
	type seen struct {
		line int64
		hash [32]byte
	}
	ids := map[string]seen{}
	bad := func(line int64, id string, err error) {
		rj := client.ItemRejection{Line: line, ResponseID: id, Reason: "INVALID_ARGUMENT", Message: err.Error()}
		var de *sipas.Error
		if errors.As(err, &de) {
			rj.Reason, rj.Message = de.Reason, de.Message
			if len(de.Violations) > 0 {
				rj.Reason, rj.Field = de.Violations[0].Reason, de.Violations[0].Field
				var parts []string
				for _, v := range de.Violations {
					parts = append(parts, v.Field+": "+v.Description)
				}
				rj.Message = strings.Join(parts, "; ")
			}
		}
		chk.invalid[line] = rj
		chk.lines = append(chk.lines, line)
	}
	for {
		row, err := br.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fileError{path, err}
		}
		chk.rows++
		if row.Err != nil {
			bad(row.Line, "", row.Err)
			continue
		}
		r := row.Response
		if q := cat.Get(r.QuestionnaireID); q != nil {
			named[q.ID] = q
		}
		missing := r.ID == ""
		if missing {
			chk.missingIDs++
			tmp, _ := uuid.NewV7()
			r.ID = tmp.String()
		}
		acc, err := sipas.Validate(cat, reg, r, now)
		if err != nil {
			if cat.Get(r.QuestionnaireID) == nil && r.QuestionnaireID != "" {
				chk.unknown[r.QuestionnaireID] = true
			}
			if missing {
				r.ID = ""
			}
			bad(row.Line, r.ID, err)
			continue
		}
		if missing {
			if !assignIDs {
				bad(row.Line, "", sipas.Invalid("validate", sipas.Violation{Field: "response_id", Reason: "MISSING_RESPONSE_ID",
					Description: "response_id is empty; run with --assign-ids to write UUIDv7 ids into the file before uploading"}))
			}
			continue
		}
		if prev, ok := ids[r.ID]; ok {
			if prev.hash != acc.Hash {
				bad(row.Line, r.ID, sipas.Invalid("validate", sipas.Violation{Field: "response_id", Reason: "RESPONSE_ID_CONFLICT",
					Description: fmt.Sprintf("response_id repeats line %d with other content", prev.line)}))
			}
			continue
		}
		ids[r.ID] = seen{row.Line, acc.Hash}
	}
	if len(chk.unknown) == 0 && br.Header() != nil {
		qs := make([]*sipas.Questionnaire, 0, len(named))
		for _, q := range named {
			qs = append(qs, q)
		}
		sort.Slice(qs, func(i, j int) bool { return qs[i].ID < qs[j].ID })
		if err := client.CheckColumns(br.Header(), qs); err != nil {
			return nil, fileError{path, err}
		}
	}
	return chk, nil
}

func printRejections(w io.Writer, path string, rs []client.ItemRejection, format string) {
	if format == "json" {
		return // the JSON summary carries them
	}
	const max = 50
	for i, r := range rs {
		if i == max {
			fmt.Fprintf(w, "… and %d more (use --format json for all)\n", len(rs)-max)
			break
		}
		fmt.Fprintf(w, "%s:%d: %s: %s\n", path, r.Line, r.Reason, r.Message)
	}
}

func writeUploadReport(e *env, rep *uploadReport, format string) error {
	if format == "json" {
		return writeJSON(e.stdout, rep)
	}
	t := &table{header: []string{"rows", "invalid", "sent", "accepted", "duplicate", "rejected", "seconds", "rows_per_second"}}
	t.add(itoa(rep.Rows), itoa(rep.Invalid), fmt.Sprint(rep.Sent), fmt.Sprint(rep.Accepted), fmt.Sprint(rep.Duplicate),
		fmt.Sprint(rep.Rejected), fmt.Sprintf("%.2f", rep.Seconds), fmt.Sprintf("%.0f", rep.RowsPerSec))
	if err := t.write(e.stdout, format); err != nil {
		return err
	}
	if format == "table" && len(rep.Warnings) > 0 {
		fmt.Fprintf(e.stdout, "\n%d warnings, e.g. %s\n", len(rep.Warnings), rep.Warnings[0])
	}
	return writeRowOutcomes(e, rep, format)
}

// uploadProgress shows progress on stderr: a bar on a terminal, else a
// plain line every few seconds.
type uploadProgress struct {
	e     *env
	bar   *progressbar.ProgressBar
	plain bool
	total int
	start time.Time
	last  time.Time
	acked int64
}

func newUploadProgress(e *env, mode string, total int) *uploadProgress {
	p := &uploadProgress{e: e, total: total, start: time.Now(), last: time.Now()}
	tty := false
	if f, ok := e.stderr.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	switch {
	case mode == "bar" || (mode == "auto" && tty):
		p.bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(e.stderr),
			progressbar.OptionSetDescription("uploading"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("rows"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionFullWidth(),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(e.stderr) }))
	case mode == "plain" || mode == "auto":
		p.plain = true
	}
	return p
}

func (p *uploadProgress) update(u client.UploadProgress) {
	p.acked = u.Acknowledged
	if p.bar != nil {
		_ = p.bar.Set64(u.Acknowledged)
		return
	}
	if p.plain && time.Since(p.last) >= 2*time.Second {
		p.last = time.Now()
		p.line()
	}
}

func (p *uploadProgress) line() {
	el := time.Since(p.start).Seconds()
	rate := float64(p.acked) / max(el, 1e-9)
	eta := "?"
	if rate > 0 {
		eta = (time.Duration(float64(int64(p.total)-p.acked)/rate) * time.Second).Round(time.Second).String()
	}
	fmt.Fprintf(p.e.stderr, "sipas: upload: %d/%d rows acknowledged, %.0f rows/s, eta %s\n", p.acked, p.total, rate, eta)
}

func (p *uploadProgress) note(msg string) {
	if p.bar != nil {
		_ = p.bar.Clear()
	}
	fmt.Fprintln(p.e.stderr, msg)
}

func (p *uploadProgress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
		return
	}
	if p.plain {
		p.line()
	}
}

// withServerQuestionnaires adds to cat the definitions of the given
// questionnaire ids that the server has. Ids the server does not know stay
// unknown, and their rows are reported as such.
func withServerQuestionnaires(ctx context.Context, e *env, c *common, cat *sipas.Catalog, ids map[string]bool) (*sipas.Catalog, error) {
	cl, err := c.dial(e)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	qs := cat.List()
	for id := range ids {
		q, err := cl.Questionnaire(ctx, id)
		if sipas.KindOf(err) == sipas.KindNotFound {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading questionnaire %s from the server: %w", id, err)
		}
		qs = append(qs, q)
	}
	return sipas.NewCatalog(qs...)
}
