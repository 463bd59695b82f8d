package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/sipas-vn/sipas/export"
)

// table is tabular output that prints as an aligned table (control
// characters escaped), CSV (cells that a spreadsheet would read as a
// formula neutralised) or JSON (an array of objects keyed by the header
// names). Index figures are written through package export instead.
type table struct {
	header []string
	rows   [][]string
	// objects, when set, is what JSON output prints instead of rows.
	objects any
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(w io.Writer, format string) error {
	switch format {
	case "csv":
		cw := csv.NewWriter(w)
		if err := cw.Write(t.header); err != nil {
			return err
		}
		for _, r := range t.rows {
			safe := make([]string, len(r))
			for i, c := range r {
				safe[i] = export.Neutralise(c)
			}
			if err := cw.Write(safe); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	case "json":
		if t.objects != nil {
			return writeJSON(w, t.objects)
		}
		objs := make([]map[string]string, 0, len(t.rows))
		for _, r := range t.rows {
			o := make(map[string]string, len(t.header))
			for i, h := range t.header {
				if i < len(r) {
					o[h] = r[i]
				}
			}
			objs = append(objs, o)
		}
		return writeJSON(w, objs)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.ToUpper(strings.Join(t.header, "\t")))
	for _, r := range t.rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = escapeControl(c)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// escapeControl shows control characters (including tabs, newlines, escape
// sequences and Unicode bidirectional controls) as Go escapes, so that a
// stored name cannot break the table's columns or drive the terminal.
func escapeControl(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if isControl(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isControl(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029'
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func itoa(n int) string { return fmt.Sprint(n) }
