package sipas

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Definition file layout. A questionnaire is a directory holding three CSV
// files (UTF-8, comma, header row):
//
//	questionnaire.csv  key,value: id, title_vi, title_en, method, formula_version
//	formula.csv        code,parent,kind,aggregation,weight,label_vi,label_en
//	items.csv          code,kind,group,role,scale,label_vi,label_en,provenance
//
// and optionally scales.csv (same format as the shared scales file) adding
// scales of its own. A formula node is identified by (kind, code): the
// expectation groups reuse the satisfaction codes. parent names a node of the
// same kind (empty for the root of that kind, at most one root per kind);
// aggregation is mean, weighted_mean or none; an empty weight means 1. An
// item attaches to the node of its kind whose code is the item's group.
const (
	fileMeta    = "questionnaire.csv"
	fileFormula = "formula.csv"
	fileItems   = "items.csv"
	fileScales  = "scales.csv"
)

var (
	headerScales  = []string{"scale", "code", "label_vi", "label_en", "positive"}
	headerItems   = []string{"code", "kind", "group", "role", "scale", "label_vi", "label_en", "provenance"}
	headerFormula = []string{"code", "parent", "kind", "aggregation", "weight", "label_vi", "label_en"}
	headerMeta    = []string{"key", "value"}
	metaKeys      = []string{"id", "title_vi", "title_en", "method", "formula_version"}
)

var (
	reDefID   = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	reCode    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	reScaleID = regexp.MustCompile(`^[A-Z0-9][A-Z0-9_]{0,31}$`)
)

// maxDefProblems bounds how many problems one load reports.
const maxDefProblems = 20

var kindByName = map[string]Kind{
	"assessment":   KindAssessment,
	"satisfaction": KindSatisfaction,
	"expectation":  KindExpectation,
}

var kindNamesLower = map[Kind]string{
	KindAssessment:   "assessment",
	KindSatisfaction: "satisfaction",
	KindExpectation:  "expectation",
}

func (k Kind) String() string {
	if s, ok := kindNamesLower[k]; ok {
		return s
	}
	return "unspecified"
}

var roleByName = map[string]Role{"content": RoleContent, "overall": RoleOverall}

var aggregationByName = map[string]Aggregation{
	"mean":          AggregationMean,
	"weighted_mean": AggregationWeightedMean,
	"none":          AggregationNone,
}

// defProblems collects "file:line: problem" messages of a definition load.
type defProblems struct {
	op   string
	list []string
}

func (p *defProblems) add(file string, line int, format string, args ...any) {
	if len(p.list) >= maxDefProblems {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if line > 0 {
		p.list = append(p.list, fmt.Sprintf("%s:%d: %s", file, line, msg))
	} else {
		p.list = append(p.list, fmt.Sprintf("%s: %s", file, msg))
	}
}

func (p *defProblems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	msg := strings.Join(p.list, "\n")
	if len(p.list) >= maxDefProblems {
		msg += "\n(further problems not shown)"
	}
	return &Error{Kind: KindInvalid, Op: p.op, Reason: "INVALID_DEFINITION", Message: msg}
}

// csvRow is one data row with the line it starts on.
type csvRow struct {
	line   int
	fields []string
}

// readCSV reads a whole CSV file, checks its header is exactly want and
// returns the data rows with their line numbers. Problems are added to p; ok
// is false when the file could not be read as a whole.
func readCSV(r io.Reader, file string, want []string, p *defProblems) (rows []csvRow, ok bool) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err == io.EOF {
		p.add(file, 1, "empty file, want header %q", strings.Join(want, ","))
		return nil, false
	}
	if err != nil {
		addCSVError(p, file, err)
		return nil, false
	}
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff")
	}
	if !equalStrings(header, want) {
		p.add(file, 1, "header is %q, want %q", strings.Join(header, ","), strings.Join(want, ","))
		return nil, false
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			addCSVError(p, file, err)
			return rows, false
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // blank line
		}
		if len(rec) != len(want) {
			p.add(file, line, "%d fields, want %d (%s)", len(rec), len(want), strings.Join(want, ","))
			continue
		}
		for i := range rec {
			rec[i] = strings.TrimSpace(rec[i])
		}
		rows = append(rows, csvRow{line: line, fields: rec})
	}
	return rows, true
}

func addCSVError(p *defProblems, file string, err error) {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		p.add(file, pe.Line, "%v", pe.Err)
		return
	}
	p.add(file, 0, "%v", err)
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if strings.TrimSpace(a[i]) != b[i] {
			return false
		}
	}
	return true
}

func openCSV(fsys fs.FS, name, display string, want []string, p *defProblems) ([]csvRow, bool) {
	f, err := fsys.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			p.add(display, 0, "missing file")
		} else {
			p.add(display, 0, "%v", err)
		}
		return nil, false
	}
	defer f.Close()
	return readCSV(f, display, want, p)
}

// LoadScales reads a scales file (scale,code,label_vi,label_en,positive).
// Rows with scale "*" describe the codes 8 and 9 valid on every item; they
// must say positive = excluded and are not added to any scale.
func LoadScales(fsys fs.FS, name string) (map[string]*Scale, error) {
	p := &defProblems{op: "load scales"}
	scales := loadScalesInto(fsys, name, name, nil, p)
	if err := p.err(); err != nil {
		return nil, err
	}
	return scales, nil
}

// loadScalesInto reads the scales file name of fsys; scales already in
// existing may not be redefined.
func loadScalesInto(fsys fs.FS, name, display string, existing map[string]*Scale, p *defProblems) map[string]*Scale {
	rows, _ := openCSV(fsys, name, display, headerScales, p)
	out := make(map[string]*Scale)
	for _, row := range rows {
		f := row.fields
		id, codeS, lvi, len_, pos := f[0], f[1], f[2], f[3], f[4]
		code, err := strconv.Atoi(codeS)
		if err != nil {
			p.add(display, row.line, "answer code %q is not an integer", codeS)
			continue
		}
		if id == "*" {
			if (code != CodeDontKnow && code != CodeNotApplicable) || pos != "excluded" {
				p.add(display, row.line, "scale \"*\" may only list codes 8 and 9 with positive = excluded")
			}
			continue
		}
		if !reScaleID.MatchString(id) {
			p.add(display, row.line, "invalid scale id %q (want upper-case letters, digits, _)", id)
			continue
		}
		if _, dup := existing[id]; dup {
			p.add(display, row.line, "scale %q is already defined in the shared scales", id)
			continue
		}
		if code == CodeDontKnow || code == CodeNotApplicable {
			p.add(display, row.line, "scale %q lists code %d, which is reserved for every item (8 don't know, 9 not applicable)", id, code)
			continue
		}
		if code < 0 || code > 99 {
			p.add(display, row.line, "answer code %d out of range 0..99", code)
			continue
		}
		var positive bool
		switch pos {
		case "true":
			positive = true
		case "false":
		default:
			p.add(display, row.line, "positive is %q, want true or false", pos)
			continue
		}
		if lvi == "" || len_ == "" {
			p.add(display, row.line, "label_vi and label_en are required")
		}
		s := out[id]
		if s == nil {
			s = &Scale{ID: id}
			out[id] = s
		}
		dup := false
		for _, c := range s.Codes {
			if c.Code == code {
				dup = true
			}
		}
		if dup {
			p.add(display, row.line, "duplicate code %d in scale %q", code, id)
			continue
		}
		s.Codes = append(s.Codes, ScaleCode{Code: code, LabelVi: lvi, LabelEn: len_, Positive: positive})
	}
	for id, s := range out {
		if len(s.Codes) < 2 {
			p.add(display, 0, "scale %q has fewer than 2 codes", id)
		}
	}
	return out
}

// LoadQuestionnaire reads the questionnaire definition in directory dir of
// fsys. scales are the shared scales; a scales.csv in dir may add scales of
// its own. source is recorded in Questionnaire.Source ("embedded" or the
// directory it was loaded from) and names the files in error messages: a
// malformed definition fails with messages such as
// "testdata/sipas-2024/items.csv:12: unknown scale \"SAT6\"". For the
// embedded definitions (source "embedded" or empty) files are named
// "questionnaires/<dir>/<file>".
func LoadQuestionnaire(fsys fs.FS, dir string, scales map[string]*Scale, source string) (*Questionnaire, error) {
	prefix := source
	if source == "" || source == "embedded" {
		prefix = path.Join("questionnaires", dir)
	}
	display := func(file string) string { return strings.TrimPrefix(path.Join(prefix, file), "./") }
	p := &defProblems{op: "load questionnaire"}
	def := QuestionnaireDef{Source: source, Scales: make(map[string]*Scale, len(scales))}

	// Scales: shared plus the directory's own.
	for id, s := range scales {
		def.Scales[id] = s
	}
	if _, err := fs.Stat(fsys, path.Join(dir, fileScales)); err == nil {
		for id, s := range loadScalesInto(fsys, path.Join(dir, fileScales), display(fileScales), scales, p) {
			def.Scales[id] = s
		}
	}

	loadMeta(fsys, dir, display(fileMeta), &def, p)
	def.Nodes = loadFormula(fsys, dir, display(fileFormula), p)
	def.Items = loadItems(fsys, dir, display(fileItems), p)
	return newQuestionnaire(def, defFiles{meta: display(fileMeta), formula: display(fileFormula), items: display(fileItems)}, false, p)
}

// QuestionnaireDef is a questionnaire definition in memory: what the
// definition files hold (see the file layout above), with names already
// read into their types. The CSV loader (LoadQuestionnaire) and the API
// conversion (a client rebuilding a server's questionnaire) both build
// their questionnaires from one through NewQuestionnaire's checks.
type QuestionnaireDef struct {
	ID, TitleVi, TitleEn, Method, FormulaVersion string
	// Source is recorded in Questionnaire.Source.
	Source string
	// Nodes are the formula nodes, in any order; a node's parent is the
	// node of the same kind with the code Parent ("" for the root of its
	// kind). Children are kept in the order given.
	Nodes []NodeDef
	// Items are the questions, in questionnaire order.
	Items []ItemDef
	// Scales are the scales items may name, by id.
	Scales map[string]*Scale
}

// NodeDef defines one formula node.
type NodeDef struct {
	Code, Parent     string
	Kind             Kind
	Aggregation      Aggregation
	Weight           float64 // within the parent; must be greater than 0
	LabelVi, LabelEn string
	// Line is where the node was defined (a line of formula.csv), named in
	// messages; 0 when it did not come from a file.
	Line int
}

// ItemDef defines one item.
type ItemDef struct {
	Code       string
	Kind       Kind
	Group      string // code of the node of the same kind it belongs to
	Role       Role
	Scale      string // id of one of QuestionnaireDef.Scales
	LabelVi    string
	LabelEn    string
	Provenance string
	Line       int // as NodeDef.Line, for items.csv
}

// NewQuestionnaire checks a definition and builds the questionnaire: the
// same checks as LoadQuestionnaire (codes, labels, one root per kind, known
// parents and groups, no cycles, known scales, something to average), with
// every problem in one KindInvalid error.
func NewQuestionnaire(def QuestionnaireDef) (*Questionnaire, error) {
	p := &defProblems{op: "new questionnaire"}
	return newQuestionnaire(def, defFiles{meta: "questionnaire", formula: "formula", items: "items"}, true, p)
}

// defFiles names the parts of a definition in messages.
type defFiles struct{ meta, formula, items string }

// buildQuestionnaire checks def and builds the questionnaire, adding
// problems to p. checkMeta checks the id, titles, method and formula
// version (the CSV loader checks questionnaire.csv itself, with lines).
func newQuestionnaire(def QuestionnaireDef, files defFiles, checkMeta bool, p *defProblems) (*Questionnaire, error) {
	q := &Questionnaire{ID: def.ID, TitleVi: def.TitleVi, TitleEn: def.TitleEn, Method: def.Method,
		FormulaVersion: def.FormulaVersion, Source: def.Source, itemsByCode: make(map[string]*Item)}
	if checkMeta {
		for _, f := range []struct{ key, v string }{{"id", def.ID}, {"title_vi", def.TitleVi}, {"title_en", def.TitleEn},
			{"method", def.Method}, {"formula_version", def.FormulaVersion}} {
			if f.v == "" {
				p.add(files.meta, 0, "empty value for %q", f.key)
			}
		}
		if def.ID != "" && !reDefID.MatchString(def.ID) {
			p.add(files.meta, 0, "invalid id %q (want lower-case letters, digits, '.', '_', '-')", def.ID)
		}
	}
	nodes := buildFormula(q, def.Nodes, files.formula, p)
	buildItems(q, def.Items, def.Scales, nodes, files.items, files.formula, p)
	if err := p.err(); err != nil {
		return nil, err
	}
	for _, it := range q.Items {
		q.sortedCodes = append(q.sortedCodes, it.Code)
		it.slotOf = slotTable(it)
	}
	sort.Strings(q.sortedCodes)
	q.sortedItems = make([]*Item, len(q.sortedCodes))
	for i, c := range q.sortedCodes {
		q.sortedItems[i] = q.itemsByCode[c]
	}
	return q, nil
}

func loadMeta(fsys fs.FS, dir, file string, q *QuestionnaireDef, p *defProblems) {
	rows, ok := openCSV(fsys, path.Join(dir, fileMeta), file, headerMeta, p)
	if !ok {
		return
	}
	seen := make(map[string]bool)
	for _, row := range rows {
		k, v := row.fields[0], row.fields[1]
		if seen[k] {
			p.add(file, row.line, "duplicate key %q", k)
			continue
		}
		seen[k] = true
		if v == "" {
			p.add(file, row.line, "empty value for %q", k)
			continue
		}
		switch k {
		case "id":
			if !reDefID.MatchString(v) {
				p.add(file, row.line, "invalid id %q (want lower-case letters, digits, '.', '_', '-')", v)
			}
			q.ID = v
		case "title_vi":
			q.TitleVi = v
		case "title_en":
			q.TitleEn = v
		case "method":
			q.Method = v
		case "formula_version":
			q.FormulaVersion = v
		default:
			p.add(file, row.line, "unknown key %q (want one of %s)", k, strings.Join(metaKeys, ", "))
		}
	}
	for _, k := range metaKeys {
		if !seen[k] {
			p.add(file, 0, "missing key %q", k)
		}
	}
}

type nodeKey struct {
	kind Kind
	code string
}

type nodeRow struct {
	node   *Node
	parent string
	line   int
}

// loadFormula reads formula.csv into node definitions; a row whose kind,
// aggregation or weight cannot be read is reported and left out.
func loadFormula(fsys fs.FS, dir, file string, p *defProblems) []NodeDef {
	rows, ok := openCSV(fsys, path.Join(dir, fileFormula), file, headerFormula, p)
	if !ok {
		return nil
	}
	var defs []NodeDef
	for _, row := range rows {
		f := row.fields
		code, parent, kindS, aggS, wS, lvi, len_ := f[0], f[1], f[2], f[3], f[4], f[5], f[6]
		bad := false
		kind, okK := kindByName[kindS]
		if !okK {
			p.add(file, row.line, "unknown kind %q (want assessment, satisfaction or expectation)", kindS)
			bad = true
		}
		agg, okA := aggregationByName[aggS]
		if !okA {
			p.add(file, row.line, "unknown aggregation %q (want mean, weighted_mean or none)", aggS)
			bad = true
		}
		weight := 1.0
		if wS != "" {
			w, err := strconv.ParseFloat(wS, 64)
			if err != nil || math.IsNaN(w) || math.IsInf(w, 0) {
				p.add(file, row.line, "weight %q is not a number", wS)
				bad = true
			} else if w <= 0 {
				p.add(file, row.line, "weight %q must be greater than 0", wS)
				bad = true
			}
			weight = w
		}
		if bad {
			continue
		}
		defs = append(defs, NodeDef{Code: code, Parent: parent, Kind: kind, Aggregation: agg, Weight: weight,
			LabelVi: lvi, LabelEn: len_, Line: row.line})
	}
	return defs
}

// buildFormula checks the node definitions, links the tree, and fills
// q.Roots and q.Nodes. It returns the nodes by (kind, code).
func buildFormula(q *Questionnaire, defs []NodeDef, file string, p *defProblems) map[nodeKey]*Node {
	nodes := make(map[nodeKey]*Node)
	var order []nodeRow
	lineOf := make(map[*Node]int)
	for _, d := range defs {
		code, parent := d.Code, d.Parent
		bad := false
		if !reCode.MatchString(code) {
			p.add(file, d.Line, "invalid node code %q", code)
			bad = true
		}
		kindS, okK := kindNamesLower[d.Kind]
		if !okK {
			p.add(file, d.Line, "node %q has no kind (want assessment, satisfaction or expectation)", code)
			bad = true
		}
		if _, okA := aggregationNames[d.Aggregation]; !okA {
			p.add(file, d.Line, "node %q has no aggregation (want mean, weighted_mean or none)", code)
			bad = true
		}
		if !(d.Weight > 0) || math.IsInf(d.Weight, 0) {
			p.add(file, d.Line, "weight %v of node %q must be a number greater than 0", d.Weight, code)
			bad = true
		}
		if d.LabelVi == "" || d.LabelEn == "" {
			p.add(file, d.Line, "label_vi and label_en are required")
		}
		if parent == code && code != "" {
			p.add(file, d.Line, "node %s %q is its own parent (cycle)", kindS, code)
			bad = true
		}
		if bad {
			continue
		}
		k := nodeKey{d.Kind, code}
		if _, dup := nodes[k]; dup {
			p.add(file, d.Line, "duplicate node %s %q", kindS, code)
			continue
		}
		n := &Node{Code: code, Kind: d.Kind, Aggregation: d.Aggregation, Weight: d.Weight, LabelVi: d.LabelVi, LabelEn: d.LabelEn}
		nodes[k] = n
		lineOf[n] = d.Line
		order = append(order, nodeRow{node: n, parent: parent, line: d.Line})
	}
	// Link parents.
	roots := make(map[Kind]*Node)
	for _, nr := range order {
		n := nr.node
		if nr.parent == "" {
			if r := roots[n.Kind]; r != nil {
				p.add(file, nr.line, "second root %q of kind %s (the root is %q, line %d); give it a parent", n.Code, n.Kind, r.Code, lineOf[r])
				continue
			}
			roots[n.Kind] = n
			continue
		}
		par := nodes[nodeKey{n.Kind, nr.parent}]
		if par == nil {
			p.add(file, nr.line, "unknown parent %q: no %s node with that code", nr.parent, n.Kind)
			continue
		}
		n.Parent = par
		par.Children = append(par.Children, n)
	}
	// Cycles: every node must reach a root.
	reported := make(map[*Node]bool)
	for _, nr := range order {
		n := nr.node
		seen := map[*Node]bool{}
		path := []string{}
		for m := n; m != nil; m = m.Parent {
			if seen[m] {
				if !reported[m] {
					for x := range seen {
						reported[x] = true
					}
					p.add(file, lineOf[m], "cycle in formula tree: %s -> %s", strings.Join(path, " -> "), m.Code)
				}
				break
			}
			seen[m] = true
			path = append(path, m.Code)
		}
	}
	// Order: roots in kind order, preorder, children in file order.
	for _, k := range []Kind{KindAssessment, KindSatisfaction, KindExpectation} {
		r := roots[k]
		if r == nil {
			continue
		}
		q.Roots = append(q.Roots, r)
		var walk func(n *Node)
		walk = func(n *Node) {
			n.Index = len(q.Nodes)
			q.Nodes = append(q.Nodes, n)
			for _, c := range n.Children {
				walk(c)
			}
		}
		walk(r)
	}
	return nodes
}

// loadItems reads items.csv into item definitions; a row whose kind or
// role cannot be read is reported and left out.
func loadItems(fsys fs.FS, dir, file string, p *defProblems) []ItemDef {
	rows, ok := openCSV(fsys, path.Join(dir, fileItems), file, headerItems, p)
	if !ok {
		return nil
	}
	defs := make([]ItemDef, 0, len(rows))
	for _, row := range rows {
		f := row.fields
		code, kindS, group, roleS, scaleS, lvi, len_, prov := f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]
		kind, okK := kindByName[kindS]
		if !okK {
			p.add(file, row.line, "unknown kind %q (want assessment, satisfaction or expectation)", kindS)
		}
		role, okR := roleByName[roleS]
		if !okR {
			p.add(file, row.line, "unknown role %q (want content or overall)", roleS)
		}
		defs = append(defs, ItemDef{Code: code, Kind: kind, Group: group, Role: role, Scale: scaleS,
			LabelVi: lvi, LabelEn: len_, Provenance: prov, Line: row.line})
	}
	if len(rows) == 0 {
		p.add(file, 0, "no items")
	}
	return defs
}

// buildItems checks the item definitions and adds the items to q and to
// their groups.
func buildItems(q *Questionnaire, defs []ItemDef, scales map[string]*Scale, nodes map[nodeKey]*Node, file, formulaFile string, p *defProblems) {
	lineOf := make(map[string]int)
	used := make(map[string]*Scale)
	for _, d := range defs {
		code, group := d.Code, d.Group
		bad := false
		if !reCode.MatchString(code) {
			p.add(file, d.Line, "invalid item code %q (want letters, digits, '.', '_', '-')", code)
			bad = true
		} else if l, dup := lineOf[code]; dup {
			p.add(file, d.Line, "duplicate item code %q (first on line %d)", code, l)
			bad = true
		}
		kindS, okK := kindNamesLower[d.Kind]
		if !okK {
			bad = true // reported by the loader, or:
			if d.Line == 0 {
				p.add(file, d.Line, "item %q has no kind (want assessment, satisfaction or expectation)", code)
			}
		}
		if d.Role != RoleContent && d.Role != RoleOverall {
			bad = true
			if d.Line == 0 {
				p.add(file, d.Line, "item %q has no role (want content or overall)", code)
			}
		}
		scale := scales[d.Scale]
		if scale == nil {
			p.add(file, d.Line, "unknown scale %q", d.Scale)
			bad = true
		}
		var node *Node
		if okK {
			node = nodes[nodeKey{d.Kind, group}]
			if node == nil {
				p.add(file, d.Line, "unknown group %q: no %s node with that code in %s", group, kindS, path.Base(formulaFile))
				bad = true
			}
		}
		if d.LabelVi == "" || d.LabelEn == "" {
			p.add(file, d.Line, "label_vi and label_en are required")
		}
		if bad {
			if code != "" {
				if _, dup := lineOf[code]; !dup {
					lineOf[code] = d.Line
				}
			}
			continue
		}
		lineOf[code] = d.Line
		it := &Item{
			Code: code, Kind: d.Kind, Group: group, Node: node, Role: d.Role, Scale: scale,
			LabelVi: d.LabelVi, LabelEn: d.LabelEn, Provenance: d.Provenance,
			Index: len(q.Items), Slot: q.Slots,
		}
		q.Slots += len(scale.Codes) + 2
		q.Items = append(q.Items, it)
		q.itemsByCode[code] = it
		node.Items = append(node.Items, it)
		used[scale.ID] = scale
	}
	if len(defs) == 0 && file != "" && len(p.list) == 0 {
		p.add(file, 0, "no items")
	}
	for id := range used {
		q.Scales = append(q.Scales, used[id])
	}
	sort.Slice(q.Scales, func(i, j int) bool { return q.Scales[i].ID < q.Scales[j].ID })
	// A node that averages must have something to average.
	for _, n := range q.Nodes {
		if n.Aggregation == AggregationNone {
			continue
		}
		content := len(n.Children)
		for _, it := range n.Items {
			if it.Role == RoleContent {
				content++
			}
		}
		if content == 0 && len(p.list) == 0 {
			p.add(formulaFile, 0, "%s node %q has aggregation %s but no child nodes and no content items",
				n.Kind, n.Code, aggregationNames[n.Aggregation])
		}
	}
}

var aggregationNames = map[Aggregation]string{
	AggregationMean:         "mean",
	AggregationWeightedMean: "weighted_mean",
	AggregationNone:         "none",
}

// String returns the aggregation's name as written in formula.csv.
func (a Aggregation) String() string {
	if s, ok := aggregationNames[a]; ok {
		return s
	}
	return "unspecified"
}

// String returns the role's name as written in items.csv.
func (r Role) String() string {
	switch r {
	case RoleContent:
		return "content"
	case RoleOverall:
		return "overall"
	}
	return "unspecified"
}

// Node returns the formula node of the given kind and code, or nil.
func (q *Questionnaire) Node(kind Kind, code string) *Node {
	for _, n := range q.Nodes {
		if n.Kind == kind && n.Code == code {
			return n
		}
	}
	return nil
}

// Root returns the root of the formula tree of the given kind, or nil.
func (q *Questionnaire) Root(kind Kind) *Node {
	for _, n := range q.Roots {
		if n.Kind == kind {
			return n
		}
	}
	return nil
}

// CountItems returns the number of items of the given kind.
func (q *Questionnaire) CountItems(kind Kind) int {
	n := 0
	for _, it := range q.Items {
		if it.Kind == kind {
			n++
		}
	}
	return n
}

// Catalog is the set of known questionnaire definitions, by id.
type Catalog struct {
	byID map[string]*Questionnaire
	list []*Questionnaire
}

// NewCatalog returns a catalog of qs. Duplicate ids are refused.
func NewCatalog(qs ...*Questionnaire) (*Catalog, error) {
	c := &Catalog{byID: make(map[string]*Questionnaire, len(qs))}
	for _, q := range qs {
		if q == nil {
			return nil, Errorf(KindInvalid, "new catalog", "nil questionnaire")
		}
		if prev, dup := c.byID[q.ID]; dup {
			return nil, Errorf(KindInvalid, "new catalog", "duplicate questionnaire id %q (from %s and %s)", q.ID, prev.Source, q.Source)
		}
		c.byID[q.ID] = q
		c.list = append(c.list, q)
	}
	sort.Slice(c.list, func(i, j int) bool { return c.list[i].ID < c.list[j].ID })
	return c, nil
}

// Get returns the questionnaire with the given id, or nil.
func (c *Catalog) Get(id string) *Questionnaire {
	if c == nil {
		return nil
	}
	return c.byID[id]
}

// List returns every questionnaire, sorted by id. The slice is shared: do
// not modify it.
func (c *Catalog) List() []*Questionnaire {
	if c == nil {
		return nil
	}
	return c.list
}
