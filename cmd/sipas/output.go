package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// table is tabular output that prints as an aligned table, CSV or JSON
// (an array of objects keyed by the header names).
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
		if err := cw.WriteAll(t.rows); err != nil {
			return err
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
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func itoa(n int) string { return fmt.Sprint(n) }
