// Package export turns index figures (the API's messages) into tables that
// go straight into a report: CSV (UTF-8 with a BOM), XLSX and JSON, each
// with a header block naming the questionnaire, formula version, scope,
// period, boundaries, channel, time of export and disclosure rules. The web
// dashboard and the sipas CLI both write through this package, so a file
// from either has the same columns, states and numbers.
//
// Rules every table follows: numbers are numeric cells (never text, never
// a dash); an interval is two columns (ci_low, ci_high); a tree is a level
// and a parent column, never indentation; labels are full; the three
// states "no data", "suppressed" and "insufficient" are a state column of
// their own, never a value.
package export

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"
)

// Lang selects the language of headers and state labels.
type Lang int

// Languages.
const (
	Vi Lang = iota
	En
)

// ParseLang reads "vi" or "en" (anything else is Vi).
func ParseLang(s string) Lang {
	if s == "en" {
		return En
	}
	return Vi
}

func (l Lang) pick(vi, en string) string {
	if l == En {
		return en
	}
	return vi
}

// Kind is the type of a column's cells.
type Kind int

// Column kinds.
const (
	Text Kind = iota
	Number
	Integer
)

// Column is one column of a table: a stable key (the JSON field and what
// scripts select by) and its header in both languages.
type Column struct {
	Key    string
	Vi, En string
	Kind   Kind
}

// Meta is one line of a table's header block.
type Meta struct {
	Key    string
	Vi, En string
	Value  string
}

// Table is one exportable table. Rows hold, per column, a string (Text), a
// float64 or *float64 (Number), an int64, int32 or int (Integer), or nil
// for an empty cell.
type Table struct {
	// Name is the table's file stem and sheet name, e.g. "ranking".
	Name    string
	TitleVi string
	TitleEn string
	Meta    []Meta
	Columns []Column
	Rows    [][]any
}

// Title is the table's title in l.
func (t *Table) Title(l Lang) string { return l.pick(t.TitleVi, t.TitleEn) }

// Add appends a row.
func (t *Table) Add(cells ...any) { t.Rows = append(t.Rows, cells) }

// cell normalises a cell to string, float64, int64 or nil.
func cell(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case *float64:
		if x == nil {
			return nil
		}
		return *x
	case *int64:
		if x == nil {
			return nil
		}
		return *x
	case float64, int64, string:
		return x
	case int:
		return int64(x)
	case int32:
		return int64(x)
	}
	return fmt.Sprint(v)
}

// numberText formats a number for CSV: full precision, '.' decimal point.
func numberText(v any) string {
	switch x := v.(type) {
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case int64:
		return strconv.FormatInt(x, 10)
	}
	return ""
}

// Neutralise makes a text cell safe to open in a spreadsheet: a cell that
// starts with =, +, - or @ (or a tab or carriage return, which some
// spreadsheets skip before such a character) would be read as a formula, so
// it gets a leading apostrophe. Numeric cells are written as numbers and
// never pass through here.
func Neutralise(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// metaLines is the header block with the export time appended.
func (t *Table) metaLines(l Lang, now time.Time) [][2]string {
	out := make([][2]string, 0, len(t.Meta)+2)
	out = append(out, [2]string{l.pick("Bảng", "Table"), t.Title(l)})
	for _, m := range t.Meta {
		out = append(out, [2]string{l.pick(m.Vi, m.En), m.Value})
	}
	out = append(out, [2]string{l.pick("Thời điểm xuất", "Exported at"), now.Format(time.RFC3339)})
	return out
}

// WriteCSV writes the table as CSV: a UTF-8 byte order mark (so that Excel
// reads Vietnamese correctly), the header block as two-cell lines, an empty
// line, the column headers, then the rows. Text cells are neutralised.
func (t *Table) WriteCSV(w io.Writer, l Lang, now time.Time) error {
	var buf bytes.Buffer
	buf.WriteString("\uFEFF")
	cw := csv.NewWriter(&buf)
	for _, m := range t.metaLines(l, now) {
		if err := cw.Write([]string{Neutralise(m[0]), Neutralise(m[1])}); err != nil {
			return err
		}
	}
	if err := cw.Write([]string{""}); err != nil {
		return err
	}
	head := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		head[i] = Neutralise(l.pick(c.Vi, c.En))
	}
	if err := cw.Write(head); err != nil {
		return err
	}
	rec := make([]string, len(t.Columns))
	for _, r := range t.Rows {
		for i := range t.Columns {
			rec[i] = ""
			if i >= len(r) {
				continue
			}
			switch v := cell(r[i]).(type) {
			case string:
				rec[i] = Neutralise(v)
			case nil:
			default:
				rec[i] = numberText(v)
			}
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// WriteXLSX writes the table as an XLSX workbook of one sheet: the header
// block, an empty row, the bold column headers (frozen), then the rows with
// numbers as numeric cells (two decimals shown, full precision kept).
func (t *Table) WriteXLSX(w io.Writer, l Lang, now time.Time) error {
	f := excelize.NewFile()
	defer f.Close()
	sheet := t.Name
	if sheet == "" {
		sheet = "data"
	}
	if len(sheet) > 31 {
		sheet = sheet[:31]
	}
	if err := f.SetSheetName("Sheet1", sheet); err != nil {
		return err
	}
	bold, err := f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}})
	if err != nil {
		return err
	}
	dec := "0.00"
	num, err := f.NewStyle(&excelize.Style{CustomNumFmt: &dec})
	if err != nil {
		return err
	}
	sw, err := f.NewStreamWriter(sheet)
	if err != nil {
		return err
	}
	// Column widths: room for full labels, numbers at a glance. The first
	// column also holds the header block's names.
	for i, c := range t.Columns {
		w := 12.0
		switch {
		case strings.Contains(c.Key, "label") || c.Key == "name":
			w = 60
		case c.Kind == Text:
			w = 16
		}
		if i == 0 {
			w = max(w, 24)
		}
		if err := sw.SetColWidth(i+1, i+1, w); err != nil {
			return err
		}
	}
	meta := t.metaLines(l, now)
	headRow := len(meta) + 2 // the header block, an empty row, the column headers
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: headRow, TopLeftCell: fmt.Sprintf("A%d", headRow+1), ActivePane: "bottomLeft"}); err != nil {
		return err
	}
	row := 1
	for _, m := range meta {
		cellName, _ := excelize.CoordinatesToCellName(1, row)
		if err := sw.SetRow(cellName, []any{excelize.Cell{StyleID: bold, Value: m[0]}, m[1]}); err != nil {
			return err
		}
		row++
	}
	row++
	head := make([]any, len(t.Columns))
	for i, c := range t.Columns {
		head[i] = excelize.Cell{StyleID: bold, Value: l.pick(c.Vi, c.En)}
	}
	cellName, _ := excelize.CoordinatesToCellName(1, row)
	if err := sw.SetRow(cellName, head); err != nil {
		return err
	}
	row++
	vals := make([]any, len(t.Columns))
	for _, r := range t.Rows {
		for i := range t.Columns {
			vals[i] = nil
			if i >= len(r) {
				continue
			}
			switch v := cell(r[i]).(type) {
			case float64:
				vals[i] = excelize.Cell{StyleID: num, Value: v}
			case nil:
			default:
				vals[i] = v
			}
		}
		cellName, _ := excelize.CoordinatesToCellName(1, row)
		if err := sw.SetRow(cellName, vals); err != nil {
			return err
		}
		row++
	}
	if err := sw.Flush(); err != nil {
		return err
	}
	return f.Write(w)
}

// WriteJSON writes the table as one JSON object: "table", "title",
// "metadata" (the header block by key), "exported_at", "columns" and "rows"
// (objects keyed by column key; numbers as JSON numbers, empty cells null).
func (t *Table) WriteJSON(w io.Writer, now time.Time) error {
	meta := make(map[string]string, len(t.Meta))
	for _, m := range t.Meta {
		meta[m.Key] = m.Value
	}
	cols := make([]map[string]string, len(t.Columns))
	for i, c := range t.Columns {
		kind := "text"
		switch c.Kind {
		case Number:
			kind = "number"
		case Integer:
			kind = "integer"
		}
		cols[i] = map[string]string{"key": c.Key, "label_vi": c.Vi, "label_en": c.En, "type": kind}
	}
	rows := make([]orderedRow, len(t.Rows))
	for i, r := range t.Rows {
		rows[i] = orderedRow{cols: t.Columns, cells: r}
	}
	out := struct {
		Table      string              `json:"table"`
		Title      string              `json:"title"`
		TitleEn    string              `json:"title_en"`
		Metadata   map[string]string   `json:"metadata"`
		ExportedAt string              `json:"exported_at"`
		Columns    []map[string]string `json:"columns"`
		Rows       []orderedRow        `json:"rows"`
	}{t.Name, t.TitleVi, t.TitleEn, meta, now.Format(time.RFC3339), cols, rows}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}

// orderedRow marshals a row as an object with keys in column order.
type orderedRow struct {
	cols  []Column
	cells []any
}

func (r orderedRow) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, c := range r.cols {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(c.Key)
		b.Write(k)
		b.WriteByte(':')
		var v any
		if i < len(r.cells) {
			v = cell(r.cells[i])
		}
		enc, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		b.Write(enc)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Format is an export file format.
type Format string

// Formats.
const (
	CSV  Format = "csv"
	XLSX Format = "xlsx"
	JSON Format = "json"
)

// ContentType is the MIME type of a format.
func (f Format) ContentType() string {
	switch f {
	case CSV:
		return "text/csv; charset=utf-8"
	case XLSX:
		return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	}
	return "application/json; charset=utf-8"
}

// Write writes t in format f.
func (t *Table) Write(w io.Writer, f Format, l Lang, now time.Time) error {
	switch f {
	case CSV:
		return t.WriteCSV(w, l, now)
	case XLSX:
		return t.WriteXLSX(w, l, now)
	case JSON:
		return t.WriteJSON(w, now)
	}
	return fmt.Errorf("unknown export format %q (want csv, xlsx or json)", f)
}
