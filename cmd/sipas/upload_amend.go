package main

import (
	"flag"
	"fmt"
	"io"
	"sort"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/client"
)

// amendFlags are upload's --amend and --reason: re-upload a corrected file,
// each row whose id is stored with other content becoming a new version of
// that response (issue 16 item 5).
type amendFlags struct {
	on     bool
	reason string
}

func (a *amendFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&a.on, "amend", false, "apply a corrected file: rows stored with other content are amended (new version), unchanged rows are duplicates, new rows are stored; the report gives each row's outcome")
	fs.StringVar(&a.reason, "reason", "", "with --amend (required): why the file is corrected, kept in the audit log")
}

func (a *amendFlags) check() error {
	switch {
	case a.on && a.reason == "":
		return usageError{"--amend needs --reason: say why the rows are corrected, e.g. --reason \"answers keyed wrong on sheet 12\""}
	case !a.on && a.reason != "":
		return usageError{"--reason goes with --amend"}
	}
	return nil
}

// writeRowOutcomes prints each row's outcome of an upload with --amend
// (table and CSV; JSON has them in the report's rows).
func writeRowOutcomes(e *env, rep *uploadReport, format string) error {
	if rep.RowOutcomes == nil || format == "json" {
		return nil
	}
	rows := append([]client.RowOutcome(nil), rep.RowOutcomes...)
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Line < rows[j].Line })
	if format == "table" {
		fmt.Fprintf(e.stdout, "\n%d amended, %d unchanged, %d new, %d rejected\n", rep.Amended, rep.Duplicate, rep.Accepted, rep.Rejected)
	} else {
		fmt.Fprintln(e.stdout)
	}
	t := &table{header: []string{"line", "response_id", "outcome"}}
	for _, r := range rows {
		t.add(fmt.Sprint(r.Line), r.ResponseID, r.Outcome)
	}
	return t.write(e.stdout, format)
}

// conflictHint says what to do about rows refused because their id is
// stored with other content.
func conflictHint(w io.Writer, rejects []client.ItemRejection, amending bool) {
	n := 0
	for _, r := range rejects {
		if r.Reason == sipas.ErrResponseConflict.Reason {
			n++
		}
	}
	if n == 0 || amending {
		return
	}
	fmt.Fprintf(w, "sipas: %d rows have a response_id that is already stored with other content (RESPONSE_ID_CONFLICT).\n"+
		"  To store the corrected rows as new versions, run the same command again with --amend --reason \"why\";\n"+
		"  to take a response out of the figures instead, run sipas responses withdraw RESPONSE_ID --reason \"why\".\n", n)
}
