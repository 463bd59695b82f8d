package client

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/internal/atomicfile"
)

// This file reads and writes batch files (domain README §8, docs/batch-format.md):
// CSV with a header row, or JSON Lines with the same keys plus "answers".

// BatchColumns are the fixed leading columns of a batch CSV; item code
// columns follow.
var BatchColumns = []string{"response_id", "questionnaire", "province", "collected_at", "channel", "unit",
	"respondent_type", "gender", "birth_year", "ethnicity", "education", "occupation", "residence", "did_procedure"}

// OptionalColumns are columns a batch file may have besides BatchColumns:
// "flags" carries data-quality flags the collecting device raised
// (too_fast, too_soon, identical_run, clock_skew, joined with "+"), as a
// kiosk agent sends them.
var OptionalColumns = []string{"flags"}

// Batch file formats.
const (
	FormatCSV   = "csv"
	FormatJSONL = "jsonl"
)

// BatchFormatOf guesses the format from a file name: .jsonl/.ndjson are JSON
// Lines, everything else CSV.
func BatchFormatOf(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".jsonl", ".ndjson":
		return FormatJSONL
	}
	return FormatCSV
}

// BatchRow is one parsed row of a batch file.
type BatchRow struct {
	// Line is the row's line in the file (1-based; in a CSV the header is line 1).
	Line int64
	// Response is the parsed response; nil when Err is set.
	Response *sipas.Response
	// Err says why the row could not be parsed (a *sipas.Error of kind
	// KindInvalid naming the column).
	Err error
}

// BatchReader reads rows of a batch file one at a time.
type BatchReader struct {
	format string
	// csv
	cr     *csv.Reader
	header []string
	layout *csvLayout // where the columns are, made from header once
	// jsonl
	sc   *bufio.Scanner
	line int64
}

// NewBatchReader reads a batch file of the given format (FormatCSV or
// FormatJSONL). For CSV it reads and checks the header at once.
func NewBatchReader(r io.Reader, format string) (*BatchReader, error) {
	br := &BatchReader{format: format}
	switch format {
	case FormatJSONL:
		br.sc = bufio.NewScanner(r)
		br.sc.Buffer(make([]byte, 64<<10), 4<<20)
		return br, nil
	case FormatCSV:
	default:
		return nil, fmt.Errorf("unknown batch format %q (want csv or jsonl)", format)
	}
	body := stripBOM(r)
	if magic, _ := body.Peek(4); bytes.Equal(magic, []byte("PK\x03\x04")) {
		return nil, errors.New("line 1: this is a zip file, probably an Excel workbook (.xlsx), not CSV: in the spreadsheet choose Save As → \"CSV UTF-8 (comma delimited)\"")
	} else if bytes.Equal(magic, []byte("\xd0\xcf\x11\xe0")) {
		return nil, errors.New("line 1: this is an old Excel workbook (.xls), not CSV: in the spreadsheet choose Save As → \"CSV UTF-8 (comma delimited)\"")
	}
	br.cr = csv.NewReader(body)
	br.cr.FieldsPerRecord = -1
	br.cr.ReuseRecord = false
	h, err := br.cr.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("line 1: the file is empty; want a header row starting %s", strings.Join(BatchColumns[:4], ","))
	}
	if err != nil {
		return nil, fmt.Errorf("line 1: %w (is this a CSV file? save it as \"CSV UTF-8 (comma delimited)\")", err)
	}
	for i := range h {
		h[i] = strings.TrimSpace(h[i])
	}
	if err := checkHeader(h); err != nil {
		return nil, fmt.Errorf("line 1: %w%s", err, headerHint(h))
	}
	br.header = h
	return br, nil
}

func stripBOM(r io.Reader) *bufio.Reader {
	b := bufio.NewReader(r)
	if p, err := b.Peek(3); err == nil && bytes.Equal(p, []byte{0xEF, 0xBB, 0xBF}) {
		_, _ = b.Discard(3)
	}
	return b
}

func checkHeader(h []string) error {
	seen := map[string]bool{}
	for _, c := range h {
		if c == "" {
			return errors.New("the header has an empty column name")
		}
		if seen[c] {
			return fmt.Errorf("column %q appears twice in the header", c)
		}
		seen[c] = true
	}
	for _, need := range []string{"response_id", "questionnaire", "province", "collected_at", "channel"} {
		if !seen[need] {
			return fmt.Errorf("the header lacks column %q; want %s,<item codes>", need, strings.Join(BatchColumns, ","))
		}
	}
	return nil
}

// headerHint says what a header that is not CSV probably is: a workbook
// saved as is, or a file separated by semicolons or tabs (what a spreadsheet
// writes in locales with a decimal comma).
func headerHint(h []string) string {
	first := strings.Join(h, ",")
	switch {
	case !utf8.ValidString(first):
		return " (the header is not UTF-8 text: save the file as \"CSV UTF-8\")"
	case len(h) == 1 && strings.Count(first, ";") > 2:
		return " (the columns are separated by ';': save the file as comma-separated CSV)"
	case len(h) == 1 && strings.Count(first, "\t") > 2:
		return " (the columns are separated by tabs: save the file as comma-separated CSV)"
	}
	return ""
}

// CheckColumns refuses a header column that is neither a batch column nor an
// item of any of the given questionnaires (the ones the file's rows name),
// suggesting the nearest known name: a misspelt column is one error about
// the file, not an error on every row.
func CheckColumns(header []string, qs []*sipas.Questionnaire) error {
	known := map[string]bool{}
	for _, c := range append(BatchColumns[:len(BatchColumns):len(BatchColumns)], OptionalColumns...) {
		known[c] = true
	}
	for _, q := range qs {
		for _, it := range q.Items {
			known[it.Code] = true
		}
	}
	for _, col := range header {
		if known[col] {
			continue
		}
		msg := fmt.Sprintf("line 1: unknown column %q: not a batch column and not an item of %s", col, questionnaireIDs(qs))
		if near := nearest(col, known); near != "" {
			msg += fmt.Sprintf("; did you mean %q?", near)
		}
		return errors.New(msg)
	}
	return nil
}

func questionnaireIDs(qs []*sipas.Questionnaire) string {
	ids := make([]string, len(qs))
	for i, q := range qs {
		ids[i] = q.ID
	}
	if len(ids) == 0 {
		return "any questionnaire"
	}
	return strings.Join(ids, ", ")
}

// nearest returns the known name closest to s by edit distance (ignoring
// case), if it is close enough: at most 2 edits, or a third of its letters.
func nearest(s string, known map[string]bool) string {
	best, bestD := "", max(2, len(s)/3)+1
	for k := range known {
		if d := editDistance(strings.ToLower(s), strings.ToLower(k)); d < bestD || d == bestD && k < best {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of two short ASCII names.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Header returns the CSV header (nil for JSON Lines).
func (br *BatchReader) Header() []string { return br.header }

// Next returns the next row, or io.EOF after the last. A row that cannot be
// parsed comes back with Err set; an error return means the file itself is
// unreadable (e.g. a broken CSV quote) and reading cannot go on.
func (br *BatchReader) Next() (BatchRow, error) {
	if br.format == FormatJSONL {
		for br.sc.Scan() {
			br.line++
			b := bytes.TrimSpace(br.sc.Bytes())
			if len(b) == 0 {
				continue
			}
			r, err := parseJSONLRow(b)
			return BatchRow{Line: br.line, Response: r, Err: err}, nil
		}
		if err := br.sc.Err(); err != nil {
			return BatchRow{}, fmt.Errorf("line %d: %w", br.line+1, err)
		}
		return BatchRow{}, io.EOF
	}
	rec, err := br.cr.Read()
	if err != nil {
		return BatchRow{}, err
	}
	line, _ := br.cr.FieldPos(0)
	if len(rec) != len(br.header) {
		return BatchRow{Line: int64(line), Err: rowError("row", "WRONG_FIELD_COUNT",
			fmt.Sprintf("the row has %d fields, the header %d", len(rec), len(br.header)))}, nil
	}
	if br.layout == nil {
		br.layout = newCSVLayout(br.header)
	}
	r, perr := parseCSVRow(br.layout, rec)
	return BatchRow{Line: int64(line), Response: r, Err: perr}, nil
}

func rowError(field, reason, desc string) error {
	return sipas.Invalid("parse batch row", sipas.Violation{Field: field, Reason: reason, Description: desc})
}

// enumAliases are other spellings teams key in: Vietnamese, with or without
// diacritics, and American English; each maps to the API's number.
var enumAliases = map[string]map[string]int{
	"gender": {"m": 1, "nam": 1, "f": 2, "nữ": 2, "nu": 2, "khác": 3, "khac": 3},
	"ethnicity": {"dân tộc kinh": 1, "dan toc kinh": 1, "khác": 2, "khac": 2,
		"dân tộc khác": 2, "dan toc khac": 2, "dân tộc thiểu số": 2, "dan toc thieu so": 2},
	"residence": {"thành thị": 1, "thanh thi": 1, "đô thị": 1, "do thi": 1, "nông thôn": 2, "nong thon": 2},
	"respondent_type": {"organization": 2, "người dân": 1, "nguoi dan": 1, "cá nhân": 1, "ca nhan": 1,
		"công dân": 1, "cong dan": 1, "tổ chức": 2, "to chuc": 2, "doanh nghiệp": 2, "doanh nghiep": 2},
}

// enum value names per column, in the API's numbering (index = value).
var enumNames = map[string][]string{
	"gender":          {"", "male", "female", "other"},
	"ethnicity":       {"", "kinh", "other"},
	"education":       {"", "none", "primary", "lower_secondary", "upper_secondary", "vocational", "university", "postgraduate"},
	"occupation":      {"", "farmer", "worker", "business", "public_employee", "student", "retired", "unemployed", "other"},
	"residence":       {"", "urban", "rural"},
	"respondent_type": {"", "citizen", "organisation"},
	"channel":         {"", "kiosk", "field", "post", "online", "phone"},
}

func parseEnum(col, v string) (int, error) {
	v = strings.ToLower(strings.TrimSpace(v))
	if v == "" {
		return 0, nil
	}
	names := enumNames[col]
	for i, n := range names {
		if i > 0 && n == v {
			return i, nil
		}
	}
	if i, ok := enumAliases[col][v]; ok {
		return i, nil
	}
	if i, err := strconv.Atoi(v); err == nil && i > 0 && i < len(names) {
		return i, nil // the API's number
	}
	// The value itself is not echoed: it may be a demographic.
	return 0, rowError(col, "INVALID_ENUM", col+" must be one of "+strings.Join(names[1:], ", ")+" or empty")
}

// EnumName returns the batch-file name of an enum value of a column, "" for 0.
func EnumName(col string, v int) string {
	names := enumNames[col]
	if v <= 0 || v >= len(names) {
		return ""
	}
	return names[v]
}

func parseBool(v string) (*bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "":
		return nil, nil
	case "yes", "true", "1", "y", "có", "co":
		t := true
		return &t, nil
	case "no", "false", "0", "n", "không", "khong":
		f := false
		return &f, nil
	}
	return nil, rowError("did_procedure", "INVALID_BOOL", "did_procedure must be yes, no, true, false, 1, 0 or empty")
}

// ParseCollectedAt parses RFC 3339 or YYYY-MM-DD (midnight, Vietnam time).
// A date-time without offset is read as Vietnam time.
func ParseCollectedAt(v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	// Vietnamese spreadsheets write dates day first (02/01/2006): accepted,
	// never month first.
	for _, layout := range []string{"2006-01-02", "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04",
		"2/1/2006", "2/1/2006 15:04", "2/1/2006 15:04:05"} {
		if t, err := time.ParseInLocation(layout, v, sipas.VietnamZone); err == nil {
			return t, nil
		}
	}
	return time.Time{}, rowError("collected_at", "INVALID_TIME", "collected_at must be RFC 3339 (2026-03-14T09:30:00+07:00), YYYY-MM-DD or DD/MM/YYYY")
}

// fields is one row as column → cell, answers apart.
type rowFields struct {
	get     func(col string) (string, bool)
	answers map[string]int
}

func buildResponse(f rowFields) (*sipas.Response, error) {
	var vs []sipas.Violation
	addErr := func(err error) {
		var de *sipas.Error
		if errors.As(err, &de) {
			vs = append(vs, de.Violations...)
		}
	}
	s := func(col string) string { v, _ := f.get(col); return strings.TrimSpace(v) }
	r := &sipas.Response{
		ID:              strings.ToLower(s("response_id")),
		QuestionnaireID: s("questionnaire"),
		ProvinceCode:    s("province"),
		UnitID:          s("unit"),
		Answers:         f.answers,
	}
	if t, err := ParseCollectedAt(s("collected_at")); err != nil {
		addErr(err)
	} else {
		r.CollectedAt = t
	}
	if ch, err := parseEnum("channel", s("channel")); err != nil {
		addErr(err)
	} else {
		r.Channel = sipas.Channel(ch)
	}
	if fl, ok := sipas.ParseFlags(s("flags")); ok {
		r.Flags = fl
	} else {
		vs = append(vs, sipas.Violation{Field: "flags", Reason: "INVALID_FLAG",
			Description: "flags must be empty or too_fast, too_soon, identical_run, clock_skew joined with +"})
	}
	d := &r.Demographics
	enums := []struct {
		col string
		set func(int)
	}{
		{"gender", func(v int) { d.Gender = sipas.Gender(v) }},
		{"ethnicity", func(v int) { d.Ethnicity = sipas.Ethnicity(v) }},
		{"education", func(v int) { d.Education = sipas.Education(v) }},
		{"occupation", func(v int) { d.Occupation = sipas.Occupation(v) }},
		{"residence", func(v int) { d.Residence = sipas.Residence(v) }},
		{"respondent_type", func(v int) { d.RespondentType = sipas.RespondentType(v) }},
	}
	for _, e := range enums {
		v, err := parseEnum(e.col, s(e.col))
		if err != nil {
			addErr(err)
			continue
		}
		e.set(v)
	}
	if by := s("birth_year"); by != "" {
		n, err := strconv.Atoi(by)
		if err != nil {
			vs = append(vs, sipas.Violation{Field: "birth_year", Reason: "INVALID_BIRTH_YEAR", Description: "birth_year must be a four-digit year or empty"})
		} else {
			d.BirthYear = n
		}
	}
	if b, err := parseBool(s("did_procedure")); err != nil {
		addErr(err)
	} else {
		d.DidProcedure = b
	}
	if len(vs) > 0 {
		return nil, sipas.Invalid("parse batch row", vs...)
	}
	return r, nil
}

// csvLayout is where the columns of a CSV header are: the fixed columns by
// name, and the item columns.
type csvLayout struct {
	fixed map[string]int // BatchColumns present, by name
	items []int          // positions of the item columns
	codes []string       // their item codes
}

func newCSVLayout(header []string) *csvLayout {
	l := &csvLayout{fixed: make(map[string]int, len(BatchColumns))}
	fixed := map[string]bool{}
	for _, c := range BatchColumns {
		fixed[c] = true
	}
	for _, c := range OptionalColumns {
		fixed[c] = true
	}
	for i, h := range header {
		if fixed[h] {
			l.fixed[h] = i
			continue
		}
		l.items = append(l.items, i)
		l.codes = append(l.codes, h)
	}
	return l
}

func parseCSVRow(l *csvLayout, rec []string) (*sipas.Response, error) {
	idx := l.fixed
	answers := make(map[string]int, len(l.items))
	var vs []sipas.Violation
	for j, i := range l.items {
		h := l.codes[j]
		cell := strings.TrimSpace(rec[i])
		if cell == "" {
			continue
		}
		n, err := strconv.Atoi(cell)
		if err != nil {
			vs = append(vs, sipas.Violation{Field: "answers[" + h + "]", Reason: "INVALID_ANSWER_CODE",
				Description: "answer of item " + h + " must be a whole number (the answer code) or empty"})
			continue
		}
		answers[h] = n
	}
	r, err := buildResponse(rowFields{get: func(col string) (string, bool) {
		i, ok := idx[col]
		if !ok {
			return "", false
		}
		return rec[i], true
	}, answers: answers})
	if err != nil {
		var de *sipas.Error
		if errors.As(err, &de) {
			vs = append(vs, de.Violations...)
		}
	}
	if len(vs) > 0 {
		return nil, sipas.Invalid("parse batch row", vs...)
	}
	return r, nil
}

func parseJSONLRow(b []byte) (*sipas.Response, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, rowError("row", "INVALID_JSON", "the line is not a JSON object")
	}
	str := map[string]string{}
	for k, v := range raw {
		if k == "answers" {
			continue
		}
		var sv any
		if err := json.Unmarshal(v, &sv); err != nil {
			continue
		}
		switch x := sv.(type) {
		case string:
			str[k] = x
		case float64:
			str[k] = strconv.FormatFloat(x, 'f', -1, 64)
		case bool:
			str[k] = strconv.FormatBool(x)
		}
	}
	answers := map[string]int{}
	if a, ok := raw["answers"]; ok {
		var m map[string]*int
		if err := json.Unmarshal(a, &m); err != nil {
			return nil, rowError("answers", "INVALID_ANSWERS", `"answers" must be an object of item code to whole-number answer code`)
		}
		for k, v := range m {
			if v != nil {
				answers[k] = *v
			}
		}
	}
	return buildResponse(rowFields{get: func(col string) (string, bool) { v, ok := str[col]; return v, ok }, answers: answers})
}

// AssignIDs gives every row of the batch file at path that has an empty
// response_id a fresh UUIDv7, rewriting the file durably: a temporary file in
// the same directory, fsync, rename over the original, fsync of the
// directory. It returns how many ids it wrote; with none missing the file is
// left untouched. Line numbers do not change.
func AssignIDs(path, format string) (int, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var out bytes.Buffer
	var n int
	switch format {
	case FormatCSV:
		n, err = assignCSV(src, &out)
	case FormatJSONL:
		n, err = assignJSONL(src, &out)
	default:
		err = fmt.Errorf("unknown batch format %q", format)
	}
	if err != nil || n == 0 {
		return 0, err
	}
	return n, WriteFileAtomic(path, out.Bytes())
}

func assignCSV(src []byte, out *bytes.Buffer) (int, error) {
	hasBOM := bytes.HasPrefix(src, []byte{0xEF, 0xBB, 0xBF})
	cr := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(src, []byte{0xEF, 0xBB, 0xBF})))
	cr.FieldsPerRecord = -1
	recs, err := cr.ReadAll()
	if err != nil {
		return 0, err
	}
	if len(recs) == 0 {
		return 0, nil
	}
	col := -1
	for i, h := range recs[0] {
		if strings.TrimSpace(h) == "response_id" {
			col = i
		}
	}
	if col < 0 {
		return 0, errors.New("line 1: the header lacks column \"response_id\"")
	}
	n := 0
	for _, rec := range recs[1:] {
		if col < len(rec) && strings.TrimSpace(rec[col]) == "" {
			id, err := uuid.NewV7()
			if err != nil {
				return 0, err
			}
			rec[col] = id.String()
			n++
		}
	}
	if n == 0 {
		return 0, nil
	}
	if hasBOM {
		out.Write([]byte{0xEF, 0xBB, 0xBF})
	}
	cw := csv.NewWriter(out)
	cw.UseCRLF = bytes.Contains(src, []byte("\r\n"))
	if err := cw.WriteAll(recs); err != nil {
		return 0, err
	}
	return n, nil
}

func assignJSONL(src []byte, out *bytes.Buffer) (int, error) {
	n := 0
	lines := bytes.SplitAfter(src, []byte("\n"))
	for i, l := range lines {
		body := bytes.TrimRight(l, "\r\n")
		eol := l[len(body):]
		trim := bytes.TrimSpace(body)
		if len(trim) == 0 {
			out.Write(l)
			continue
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(trim, &raw); err != nil {
			return 0, fmt.Errorf("line %d: not a JSON object", i+1)
		}
		var id string
		if v, ok := raw["response_id"]; ok {
			_ = json.Unmarshal(v, &id)
		}
		if strings.TrimSpace(id) != "" {
			out.Write(l)
			continue
		}
		u, err := uuid.NewV7()
		if err != nil {
			return 0, err
		}
		raw["response_id"], _ = json.Marshal(u.String())
		b, err := json.Marshal(raw)
		if err != nil {
			return 0, err
		}
		out.Write(b)
		if len(eol) == 0 && i < len(lines)-1 {
			eol = []byte("\n")
		}
		out.Write(eol)
		n++
	}
	return n, nil
}

// WriteFileAtomic replaces path with data durably: a temporary file in the
// same directory, fsync, rename, fsync of the directory. The file keeps its
// mode.
func WriteFileAtomic(path string, data []byte) error {
	mode := os.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	return atomicfile.WriteFile(path, data, mode)
}

// WriteBatchCSV writes responses as a batch CSV with the given item columns
// (all items answered in any response when nil).
func WriteBatchCSV(w io.Writer, items []string, rs []*sipas.Response) error {
	if items == nil {
		seen := map[string]bool{}
		for _, r := range rs {
			for c := range r.Answers {
				if !seen[c] {
					seen[c] = true
					items = append(items, c)
				}
			}
		}
		sort.Strings(items)
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(append(append([]string{}, BatchColumns...), items...)); err != nil {
		return err
	}
	for _, r := range rs {
		d := r.Demographics
		rec := []string{r.ID, r.QuestionnaireID, r.ProvinceCode, "", EnumName("channel", int(r.Channel)), r.UnitID,
			EnumName("respondent_type", int(d.RespondentType)), EnumName("gender", int(d.Gender)), "",
			EnumName("ethnicity", int(d.Ethnicity)), EnumName("education", int(d.Education)),
			EnumName("occupation", int(d.Occupation)), EnumName("residence", int(d.Residence)), ""}
		if !r.CollectedAt.IsZero() {
			rec[3] = r.CollectedAt.In(sipas.VietnamZone).Format(time.RFC3339)
		}
		if d.BirthYear != 0 {
			rec[8] = strconv.Itoa(d.BirthYear)
		}
		if d.DidProcedure != nil {
			rec[13] = map[bool]string{true: "yes", false: "no"}[*d.DidProcedure]
		}
		for _, c := range items {
			if v, ok := r.Answers[c]; ok {
				rec = append(rec, strconv.Itoa(v))
			} else {
				rec = append(rec, "")
			}
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
