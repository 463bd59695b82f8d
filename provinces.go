package sipas

import (
	"fmt"
	"io"
	"sort"
	"time"
)

var headerProvinces = []string{"code", "name_vi", "name_en", "valid_from", "valid_to", "merged_into_code"}

const dateLayout = "2006-01-02"

// Registry is the province registry: every province row with its validity
// and the merger map. It is immutable after LoadRegistry.
type Registry struct {
	all    []*Province            // sorted by code, then ValidFrom
	byCode map[string][]*Province // sorted by ValidFrom
	byID   map[string]*Province
	view   *provinces // built once by LoadRegistry, read by every query
}

// LoadRegistry reads a provinces file
// (code,name_vi,name_en,valid_from,valid_to,merged_into_code); name names it
// in error messages. A row with valid_to must name merged_into_code, and a
// row with that code must be valid on the day after valid_to: that row is
// the Successor. Rows of one code may not overlap.
func LoadRegistry(r io.Reader, name string) (*Registry, error) {
	p := &defProblems{op: "load provinces"}
	rows, _ := readCSV(r, name, headerProvinces, p)
	reg := &Registry{byCode: make(map[string][]*Province), byID: make(map[string]*Province)}
	merged := make(map[*Province]string)
	lineOf := make(map[*Province]int)
	for _, row := range rows {
		f := row.fields
		code, nvi, nen, fromS, toS, into := f[0], f[1], f[2], f[3], f[4], f[5]
		if !validProvinceCode(code) {
			p.add(name, row.line, "invalid province code %q (want two digits)", code)
			continue
		}
		if nvi == "" || nen == "" {
			p.add(name, row.line, "name_vi and name_en are required")
		}
		from, err := time.ParseInLocation(dateLayout, fromS, VietnamZone)
		if err != nil {
			p.add(name, row.line, "valid_from %q is not a date (YYYY-MM-DD)", fromS)
			continue
		}
		var to time.Time
		if toS != "" {
			to, err = time.ParseInLocation(dateLayout, toS, VietnamZone)
			if err != nil {
				p.add(name, row.line, "valid_to %q is not a date (YYYY-MM-DD)", toS)
				continue
			}
			if to.Before(from) {
				p.add(name, row.line, "valid_to %s is before valid_from %s", toS, fromS)
				continue
			}
			if into == "" {
				p.add(name, row.line, "a province with valid_to needs merged_into_code")
				continue
			}
			if !validProvinceCode(into) {
				p.add(name, row.line, "invalid merged_into_code %q (want two digits)", into)
				continue
			}
		} else if into != "" {
			p.add(name, row.line, "merged_into_code %q without valid_to", into)
			continue
		}
		pr := &Province{ID: code + "@" + fromS, Code: code, NameVi: nvi, NameEn: nen, ValidFrom: from, ValidTo: to}
		if _, dup := reg.byID[pr.ID]; dup {
			p.add(name, row.line, "duplicate province %s", pr.ID)
			continue
		}
		reg.byID[pr.ID] = pr
		reg.byCode[code] = append(reg.byCode[code], pr)
		reg.all = append(reg.all, pr)
		lineOf[pr] = row.line
		if into != "" {
			merged[pr] = into
		}
	}
	for code, ps := range reg.byCode {
		sort.Slice(ps, func(i, j int) bool { return ps[i].ValidFrom.Before(ps[j].ValidFrom) })
		for i := 1; i < len(ps); i++ {
			prev := ps[i-1]
			if prev.ValidTo.IsZero() || !prev.ValidTo.Before(ps[i].ValidFrom) {
				p.add(name, lineOf[ps[i]], "province code %s: validity overlaps the row on line %d", code, lineOf[prev])
			}
		}
	}
	for _, pr := range reg.all {
		into, ok := merged[pr]
		if !ok {
			continue
		}
		next := pr.ValidTo.AddDate(0, 0, 1)
		s := reg.find(into, next)
		if s == nil {
			p.add(name, lineOf[pr], "merged_into_code %s: no province with that code is valid on %s", into, next.Format(dateLayout))
			continue
		}
		pr.Successor = s
	}
	if len(rows) == 0 {
		p.add(name, 0, "no provinces")
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	sort.SliceStable(reg.all, func(i, j int) bool {
		if reg.all[i].Code != reg.all[j].Code {
			return reg.all[i].Code < reg.all[j].Code
		}
		return reg.all[i].ValidFrom.Before(reg.all[j].ValidFrom)
	})
	reg.view = newProvinces(reg)
	return reg, nil
}

func validProvinceCode(s string) bool {
	return len(s) == 2 && s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9'
}

// dayOf returns midnight, Vietnam time, of the day t falls on in Vietnam.
func dayOf(t time.Time) time.Time {
	v := t.In(VietnamZone)
	return time.Date(v.Year(), v.Month(), v.Day(), 0, 0, 0, 0, VietnamZone)
}

// validOn reports whether p is valid on day (a dayOf value).
func (p *Province) validOn(day time.Time) bool {
	return !day.Before(p.ValidFrom) && (p.ValidTo.IsZero() || !day.After(p.ValidTo))
}

// ValidAt reports whether the province is valid on the day t falls on in
// Vietnam time.
func (p *Province) ValidAt(t time.Time) bool { return p.validOn(dayOf(t)) }

// find returns the row of code valid on day, or nil.
func (r *Registry) find(code string, day time.Time) *Province {
	for _, p := range r.byCode[code] {
		if p.validOn(day) {
			return p
		}
	}
	return nil
}

// Known reports whether code names a province at any date.
func (r *Registry) Known(code string) bool { return len(r.byCode[code]) > 0 }

// Resolve returns the province a response with province code code collected
// at time at is counted for. The date is the day at falls on in Vietnam time.
// When the code is valid on that day, that province is returned. When the
// code had been retired by then (merged into another province), the
// successor valid on that day is returned with attributed = true. A code that
// never existed, or a date before the code's first validity, is a KindInvalid
// *Error with a violation on field "province_code".
func (r *Registry) Resolve(code string, at time.Time) (p *Province, attributed bool, err error) {
	ps := r.byCode[code]
	if len(ps) == 0 {
		if !validProvinceCode(code) {
			return nil, false, Invalid("resolve province", Violation{Field: "province_code", Reason: "INVALID_PROVINCE_CODE",
				Description: "province_code must be a two-digit province code"})
		}
		return nil, false, Invalid("resolve province", Violation{Field: "province_code", Reason: "UNKNOWN_PROVINCE",
			Description: fmt.Sprintf("province code %s does not exist", code)})
	}
	day := dayOf(at)
	if p := r.find(code, day); p != nil {
		return p, false, nil
	}
	// The latest row of the code that ended before day.
	var last *Province
	for _, p := range ps {
		if !p.ValidTo.IsZero() && p.ValidTo.Before(day) {
			last = p
		}
	}
	if last == nil {
		return nil, false, Invalid("resolve province", Violation{Field: "province_code", Reason: "PROVINCE_NOT_YET_VALID",
			Description: fmt.Sprintf("province code %s was not in use on %s (first valid %s)",
				code, day.Format(dateLayout), ps[0].ValidFrom.Format(dateLayout))})
	}
	for s := last.Successor; s != nil; s = s.Successor {
		if s.validOn(day) {
			return s, true, nil
		}
	}
	return nil, false, Invalid("resolve province", Violation{Field: "province_code", Reason: "PROVINCE_NOT_VALID",
		Description: fmt.Sprintf("province code %s has no successor valid on %s", code, day.Format(dateLayout))})
}

// Current follows p's successors to the province that is still valid (or the
// last one). It returns p itself when p is still valid, nil for nil.
func (r *Registry) Current(p *Province) *Province {
	if p == nil {
		return nil
	}
	for p.Successor != nil {
		p = p.Successor
	}
	return p
}

// ByID returns the province row with the given ID ("15@2025-07-01"), or nil.
func (r *Registry) ByID(id string) *Province { return r.byID[id] }

// All returns every province row, sorted by code, then by ValidFrom. The
// slice is shared: do not modify it.
func (r *Registry) All() []*Province { return r.all }

// ValidOn returns the provinces valid on the day t falls on in Vietnam time,
// sorted by code.
func (r *Registry) ValidOn(t time.Time) []*Province {
	day := dayOf(t)
	var out []*Province
	for _, p := range r.all {
		if p.validOn(day) {
			out = append(out, p)
		}
	}
	return out
}

// provRow is a registry row with its validity in cell months.
type provRow struct {
	p          *Province
	cur        *Province
	from, to   int // first and last cell month of validity
	fromD, toD int // first and last day, yyyymmdd
}

// provinces is the registry as queries read it: every row with its
// validity in cell months and days, by id and by code, and the current
// province of each code. The Registry builds it once (LoadRegistry); it is
// read-only afterwards and shared by every query.
type provinces struct {
	byID    map[string]*provRow
	byCode  map[string][]*provRow
	current map[string]*Province // the still valid province of each code
}

func ymd(y, m, d int) int { return y*10000 + m*100 + d }

// newProvinces builds the view of a loaded registry (nil: an empty view).
func newProvinces(reg *Registry) *provinces {
	ps := &provinces{byID: map[string]*provRow{}, byCode: map[string][]*provRow{}, current: map[string]*Province{}}
	if reg == nil {
		return ps
	}
	for _, p := range reg.All() {
		r := &provRow{p: p, cur: reg.Current(p), from: MonthOf(p.ValidFrom), to: 999912, toD: 99991231}
		v := p.ValidFrom.In(VietnamZone)
		r.fromD = ymd(v.Year(), int(v.Month()), v.Day())
		if !p.ValidTo.IsZero() {
			r.to = MonthOf(p.ValidTo)
			v := p.ValidTo.In(VietnamZone)
			r.toD = ymd(v.Year(), int(v.Month()), v.Day())
		}
		ps.byID[p.ID] = r
		ps.byCode[p.Code] = append(ps.byCode[p.Code], r)
		if p.ValidTo.IsZero() && r.cur == p {
			ps.current[p.Code] = p
		}
	}
	return ps
}

// key returns the province code a province-level cell counts for on the
// given boundaries: as collected, the code of its row (only within the row's
// validity); currently, the code of the row's current province.
func (ps *provinces) key(provinceID string, month int, b Boundaries) (string, bool) {
	r := ps.byID[provinceID]
	if r == nil {
		return "", false
	}
	if b == BoundariesCurrent {
		if r.cur == nil {
			return "", false
		}
		return r.cur.Code, true
	}
	if month < r.from || month > r.to {
		return "", false
	}
	return r.p.Code, true
}

// nameAt names a province code in period p: the row valid on the period's
// last day, else the latest row valid in the period, else the latest row.
func (ps *provinces) name(code string, p Period, b Boundaries) string {
	if b == BoundariesCurrent {
		if c := ps.current[code]; c != nil {
			return c.NameVi
		}
	}
	rows := ps.byCode[code]
	if len(rows) == 0 {
		return code
	}
	from, to := p.Months()
	last := p.End().AddDate(0, 0, -1)
	end := ymd(last.Year(), int(last.Month()), last.Day())
	var overlap *provRow
	for _, r := range rows {
		if r.fromD <= end && end <= r.toD {
			return r.p.NameVi
		}
		if r.from <= to && r.to >= from && (overlap == nil || r.fromD > overlap.fromD) {
			overlap = r
		}
	}
	if overlap != nil {
		return overlap.p.NameVi
	}
	latest := rows[0]
	for _, r := range rows {
		if r.fromD > latest.fromD {
			latest = r
		}
	}
	return latest.p.NameVi
}

// checkProvince returns a KindNotFound error unless code can be asked for on
// the given boundaries.
func (ps *provinces) checkProvince(op, code string, b Boundaries) error {
	rows := ps.byCode[code]
	if len(rows) == 0 {
		return &Error{Kind: KindNotFound, Op: op, Reason: "PROVINCE_NOT_FOUND", Message: fmt.Sprintf("province code %s does not exist", code)}
	}
	if b == BoundariesCurrent && ps.current[code] == nil {
		msg := fmt.Sprintf("province code %s no longer exists on current boundaries", code)
		if c := rows[len(rows)-1].cur; c != nil {
			msg += fmt.Sprintf("; it is now part of %s (%s)", c.Code, c.NameVi)
		}
		return &Error{Kind: KindNotFound, Op: op, Reason: "PROVINCE_NOT_CURRENT", Message: msg}
	}
	return nil
}

// emptyProvinces is the view of no registry (an Engine without one).
var emptyProvinces = newProvinces(nil)

// provinces returns the registry's province view, built once by LoadRegistry.
func (e *Engine) provinces() *provinces {
	if e.Registry == nil || e.Registry.view == nil {
		return emptyProvinces
	}
	return e.Registry.view
}
