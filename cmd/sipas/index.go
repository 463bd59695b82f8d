package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/client"
	"github.com/sipas-vn/sipas/export"
)

func init() {
	register(command{name: "index", summary: "read indices: show a tree, rank provinces or units, series, weak points", run: runIndex})
}

func runIndex(ctx context.Context, e *env, args []string) error {
	return subcommands(ctx, e, "index", args, []subcommand{
		{"show", "the index tree of a province, unit or the nation for a period", indexShow},
		{"rank", "rank the provinces, or the units of a province (--province)", indexRank},
		{"series", "one figure over consecutive periods (--from, --to)", indexSeries},
		{"weak", "a province's lowest figures and largest drops", indexWeak},
	})
}

// periodFlags select one period. Every command that reads one period takes
// it the same way: --period YYYY, YYYY-Qn or YYYY-MM (sipas.ParsePeriod);
// a range is --from and --to in the same form. --year with --quarter or
// --month is the older spelling, kept as an alias.
type periodFlags struct {
	period               string
	year, quarter, month int
}

func (p *periodFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.period, "period", "", "the period: YYYY, YYYY-Qn or YYYY-MM, e.g. 2026, 2026-Q1, 2026-03 (required)")
	fs.IntVar(&p.year, "year", 0, "alias: --year Y is --period Y")
	fs.IntVar(&p.quarter, "quarter", 0, "alias, with --year: --year Y --quarter Q is --period Y-QQ")
	fs.IntVar(&p.month, "month", 0, "alias, with --year: --year Y --month M is --period Y-MM")
}

// get returns the period given.
func (p *periodFlags) get() (sipas.Period, error) {
	alias := p.year != 0 || p.quarter != 0 || p.month != 0
	switch {
	case p.period != "" && alias:
		return sipas.Period{}, usageError{"give --period, or its alias --year [--quarter | --month], not both"}
	case p.period != "":
		return periodArg("--period", p.period)
	case !alias:
		return sipas.Period{}, usageError{"--period is required (YYYY, YYYY-Qn or YYYY-MM)"}
	case p.year == 0:
		return sipas.Period{}, usageError{"--quarter and --month need --year (or give --period)"}
	case p.quarter != 0 && p.month != 0:
		return sipas.Period{}, usageError{"give --quarter or --month, not both"}
	}
	per := sipas.Period{Year: p.year, Quarter: p.quarter, Month: p.month}
	if err := per.Validate(); err != nil {
		return sipas.Period{}, usageError{"bad period: " + describe(err)}
	}
	return per, nil
}

// periodArg parses a period flag's value (YYYY, YYYY-Qn or YYYY-MM).
func periodArg(flagName, s string) (sipas.Period, error) {
	if s == "" {
		return sipas.Period{}, usageError{flagName + " is required (YYYY, YYYY-Qn or YYYY-MM)"}
	}
	p, err := sipas.ParsePeriod(s)
	if err != nil {
		return sipas.Period{}, usageError{flagName + ": " + violationText(err)}
	}
	return p, nil
}

// violationText is a domain error's first violation, or its message.
func violationText(err error) string {
	var de *sipas.Error
	if errors.As(err, &de) {
		if len(de.Violations) > 0 {
			return de.Violations[0].Description
		}
		return de.Message
	}
	return err.Error()
}

// viewFlags select the questionnaire, the boundaries and the channel of a
// read; a command registers only those that apply to it.
type viewFlags struct {
	questionnaire, boundaries, channel string
}

func (v *viewFlags) register(fs *flag.FlagSet, boundaries bool) {
	fs.StringVar(&v.questionnaire, "questionnaire", "sipas-2023", "questionnaire id")
	if boundaries {
		fs.StringVar(&v.boundaries, "boundaries", "as-collected", "province boundaries: as-collected or current (after the 2025 merger)")
	}
	fs.StringVar(&v.channel, "channel", "", "only this channel: kiosk, field, post, online or phone (default every channel)")
}

// query is the read asked for, without scope and period.
func (v *viewFlags) query() (client.Query, error) {
	b, err := sipas.ParseBoundaries(v.boundaries)
	if err != nil {
		return client.Query{}, usageError{"--boundaries must be as-collected or current"}
	}
	ch, err := sipas.ParseChannel(v.channel)
	if err != nil {
		return client.Query{}, usageError{"--channel must be kiosk, field, post, online or phone"}
	}
	return client.Query{Query: sipas.Query{QuestionnaireID: v.questionnaire, Boundaries: b, Channel: ch}}, nil
}

func fmtValue(v *float64) string {
	if v == nil {
		return ""
	}
	return fmt.Sprintf("%.2f", *v)
}

// stateText is a figure's state for the human table: empty when shown
// plainly; "no data", "suppressed (n < k)" and "insufficient (n < min)"
// kept apart as in every export.
func stateText(v *float64, n int64, insufficient, suppressed bool, th sipas.Thresholds) string {
	s := export.StateOf(v, n, insufficient, suppressed)
	if s == export.StateOK {
		return ""
	}
	return s.Label(export.En, th.EffectiveDisclosure(), th.MinSample)
}

// writeExport writes an index table as CSV or JSON through package export
// (the dashboard's exports are written by the same code), with headers and
// state labels in lang ("en" or "vi").
func writeExport(e *env, format, lang string, t *export.Table) error {
	return t.Write(e.stdout, export.Format(format), export.ParseLang(lang), time.Now())
}

// langFlag registers --lang, the language of CSV headers and state labels.
func langFlag(fs *flag.FlagSet) *string {
	return fs.String("lang", "en", "language of CSV headers and state labels: en or vi")
}

func indexShow(ctx context.Context, e *env, args []string) error {
	var c common
	var pf periodFlags
	var vf viewFlags
	var province, unit string
	var nation, includeFlagged bool
	fs := newFlags(e, "index show", "sipas index show (--province CODE | --unit ID | --nation) --period PERIOD [--boundaries current|as-collected] [--channel C] [--include-flagged]",
		"sipas index show --province 48 --period 2026",
		"sipas index show --nation --period 2026-Q3 --format json",
		"sipas index show --unit dn-haichau --period 2026-07")
	c.register(fs, e)
	lang := langFlag(fs)
	pf.register(fs)
	vf.register(fs, true)
	fs.StringVar(&province, "province", "", "two-digit province code")
	fs.StringVar(&unit, "unit", "", "one-stop unit id")
	fs.BoolVar(&nation, "nation", false, "the whole country")
	fs.BoolVar(&includeFlagged, "include-flagged", false, includeFlaggedUsage)
	if err := parse(fs, args); err != nil {
		return err
	}
	q, err := vf.query()
	if err != nil {
		return err
	}
	if q.Scope, err = scopeOf(province, unit, nation); err != nil {
		return err
	}
	if q.Period, err = pf.get(); err != nil {
		return err
	}
	q.IncludeFlagged = includeFlagged
	cl, err := c.dial(e)
	if err != nil {
		return err
	}
	defer cl.Close()
	rep, err := cl.Report(ctx, q)
	if err != nil {
		return err
	}
	if c.format != "table" {
		return writeExport(e, c.format, *lang, export.TreeTable(rep, export.ParseLang(*lang)))
	}
	t := &table{header: []string{"level", "code", "label", "value", "n", "ci_low", "ci_high", "state"}}
	// The satisfaction tree (SIPAS) first: it is what readers look for.
	roots := append([]*sipas.NodeValue{}, rep.Roots...)
	sort.SliceStable(roots, func(i, j int) bool {
		return roots[i].Code == sipas.SIPASNodeCode && roots[j].Code != sipas.SIPASNodeCode
	})
	export.WalkTree(roots, func(n *sipas.NodeValue, _, _ string, depth int) {
		ns := fmt.Sprint(n.N)
		if n.Suppressed {
			ns = ""
		}
		label := n.LabelVi
		if len([]rune(label)) > 60 {
			label = string([]rune(label)[:59]) + "…"
		}
		state := stateText(n.Value, n.N, n.Insufficient, n.Suppressed, rep.Thresholds)
		if n.IsItem && n.Role == sipas.RoleOverall {
			state = strings.TrimPrefix(state+", overall", ", ")
		}
		// The label is indented for the eye; the code cell stays the bare code.
		t.add(fmt.Sprint(depth), n.Code, strings.Repeat("  ", depth)+label, fmtValue(n.Value), ns, fmtValue(n.CILow), fmtValue(n.CIHigh), state)
	})
	k, minSample := rep.Thresholds.EffectiveDisclosure(), rep.Thresholds.MinSample
	resps := fmt.Sprint(rep.Respondents)
	switch {
	case rep.Suppressed:
		resps = export.StateSuppressed.Label(export.En, k, minSample)
	case rep.Respondents == 0:
		resps = export.StateNoData.Label(export.En, k, minSample)
	}
	fmt.Fprintf(e.stdout, "%s — %s, %s, %s boundaries; respondents %s; formula %s\n", escapeControl(rep.ScopeName), rep.QuestionnaireID,
		rep.Period, rep.Boundaries, resps, rep.FormulaVersion)
	flaggedNote(e, rep.FlaggedExcluded, rep.FlaggedIncluded)
	fmt.Fprintln(e.stdout)
	return t.write(e.stdout, c.format)
}

const includeFlaggedUsage = "count responses flagged for data quality too (too fast, too soon, identical runs, clock skew)"

// flaggedNote says how many flagged responses the figures left out or count.
func flaggedNote(e *env, excluded, included int64) {
	switch {
	case excluded > 0:
		fmt.Fprintf(e.stdout, "%d flagged responses left out (--include-flagged counts them)\n", excluded)
	case included > 0:
		fmt.Fprintf(e.stdout, "%d flagged responses included\n", included)
	}
}

func scopeOf(province, unit string, nation bool) (sipas.Scope, error) {
	n := 0
	for _, set := range []bool{province != "", unit != "", nation} {
		if set {
			n++
		}
	}
	if n != 1 {
		return sipas.Scope{}, usageError{"give exactly one of --province CODE, --unit ID, --nation"}
	}
	return sipas.Scope{ProvinceCode: province, UnitID: unit, Nation: nation}, nil
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func indexRank(ctx context.Context, e *env, args []string) error {
	var c common
	var pf periodFlags
	var vf viewFlags
	var province, node string
	var includeFlagged bool
	fs := newFlags(e, "index rank", "sipas index rank --period PERIOD [--province CODE (rank its units)] [--node CODE] [--boundaries current|as-collected (provinces only)] [--channel C] [--include-flagged]",
		"sipas index rank --period 2026", "sipas index rank --period 2026-Q2 --boundaries current --format json",
		"sipas index rank --period 2026 --province 48   # the units of Đà Nẵng, weakest last")
	c.register(fs, e)
	lang := langFlag(fs)
	pf.register(fs)
	vf.register(fs, true)
	fs.StringVar(&province, "province", "", "rank the units inside this province instead of the provinces")
	fs.StringVar(&node, "node", "", "rank by this node or item (default SIPAS)")
	fs.BoolVar(&includeFlagged, "include-flagged", false, includeFlaggedUsage)
	if err := parse(fs, args); err != nil {
		return err
	}
	if province != "" && flagSet(fs, "boundaries") {
		return usageError{"--boundaries applies to the ranking of provinces; the units of --province are ranked as registered in that province"}
	}
	q, err := vf.query()
	if err != nil {
		return err
	}
	if q.Period, err = pf.get(); err != nil {
		return err
	}
	q.NodeCode, q.IncludeFlagged = node, includeFlagged
	cl, err := c.dial(e)
	if err != nil {
		return err
	}
	defer cl.Close()
	var rk *sipas.Ranking
	if province != "" {
		q.Scope = sipas.Scope{ProvinceCode: province}
		rk, err = cl.RankUnits(ctx, q)
	} else {
		rk, err = cl.RankProvinces(ctx, q)
	}
	if err != nil {
		return err
	}
	if c.format != "table" {
		return writeExport(e, c.format, *lang, export.RankingTable(rk, export.RankingContext(rk, rk.ScopeName), province != "", export.ParseLang(*lang)))
	}
	t := &table{header: []string{"rank", "id", "name", "value", "ci_low", "ci_high", "n", "change", "previous", "state"}}
	hidden := 0
	for _, r := range rk.Rows {
		if province != "" && r.Suppressed {
			hidden++ // a suppressed unit is not named, only counted
			continue
		}
		rankS := ""
		if r.Rank > 0 {
			rankS = fmt.Sprint(r.Rank)
		}
		ns := fmt.Sprint(r.N)
		if r.Suppressed {
			ns = ""
		}
		t.add(rankS, r.ID, r.Name, fmtValue(r.Value), fmtValue(r.CILow), fmtValue(r.CIHigh), ns, changeText(r), fmtValue(r.PreviousValue),
			stateText(r.Value, r.N, r.Insufficient, r.Suppressed, rk.Thresholds))
	}
	fmt.Fprintf(e.stdout, "%s %s by %s (formula %s); previous period %s; mean %s, pooled %s\n\n", rk.QuestionnaireID,
		rk.Period, rk.NodeCode, rk.FormulaVersion, rk.PreviousPeriod, fmtValue(rk.Mean), fmtValue(rk.Pooled))
	if err := t.write(e.stdout, c.format); err != nil {
		return err
	}
	if hidden > 0 {
		fmt.Fprintf(e.stdout, "\n%d units suppressed (fewer than %d respondents; not named)\n", hidden, rk.Thresholds.EffectiveDisclosure())
	}
	flaggedNote(e, rk.FlaggedExcluded, rk.FlaggedIncluded)
	return nil
}

func changeText(r sipas.RankRow) string {
	if r.Rank == 0 || r.PreviousRank == 0 {
		return ""
	}
	switch rc := r.RankChange; {
	case rc > 0:
		return fmt.Sprintf("up %d", rc)
	case rc < 0:
		return fmt.Sprintf("down %d", -rc)
	}
	return "same"
}

func indexSeries(ctx context.Context, e *env, args []string) error {
	var c common
	var vf viewFlags
	var province, unit, node, from, to string
	var nation, includeFlagged bool
	fs := newFlags(e, "index series", "sipas index series (--province CODE | --unit ID | --nation) --from PERIOD --to PERIOD [--node CODE] [--boundaries current|as-collected] [--channel C] [--include-flagged]",
		"sipas index series --province 48 --from 2023 --to 2026",
		"sipas index series --unit dn-haichau --node TC --from 2026-01 --to 2026-12",
		"sipas index series --nation --from 2025-Q1 --to 2026-Q4")
	c.register(fs, e)
	lang := langFlag(fs)
	vf.register(fs, true)
	fs.StringVar(&province, "province", "", "two-digit province code")
	fs.StringVar(&unit, "unit", "", "one-stop unit id")
	fs.BoolVar(&nation, "nation", false, "the whole country")
	fs.StringVar(&node, "node", "", "node or item code (default SIPAS)")
	fs.StringVar(&from, "from", "", "first period: YYYY, YYYY-Qn or YYYY-MM (required)")
	fs.StringVar(&to, "to", "", "last period, same form as --from (required)")
	fs.BoolVar(&includeFlagged, "include-flagged", false, includeFlaggedUsage)
	if err := parse(fs, args); err != nil {
		return err
	}
	q, err := vf.query()
	if err != nil {
		return err
	}
	if q.Scope, err = scopeOf(province, unit, nation); err != nil {
		return err
	}
	pFrom, err := periodArg("--from", from)
	if err != nil {
		return err
	}
	pTo, err := periodArg("--to", to)
	if err != nil {
		return err
	}
	q.NodeCode, q.IncludeFlagged = node, includeFlagged
	cl, err := c.dial(e)
	if err != nil {
		return err
	}
	defer cl.Close()
	s, err := cl.Series(ctx, q, pFrom, pTo)
	if err != nil {
		return err
	}
	if c.format != "table" {
		name := province + unit
		if nation {
			name = sipas.NationNameVi
		}
		return writeExport(e, c.format, *lang, export.SeriesTable(s, export.SeriesContext(s, name), export.ParseLang(*lang)))
	}
	t := &table{header: []string{"period", "value", "ci_low", "ci_high", "n", "state"}}
	var excluded, included int64
	for _, p := range s.Points {
		ns := fmt.Sprint(p.N)
		if p.Suppressed {
			ns = ""
		}
		t.add(p.Period.String(), fmtValue(p.Value), fmtValue(p.CILow), fmtValue(p.CIHigh), ns,
			stateText(p.Value, p.N, p.Insufficient, p.Suppressed, s.Thresholds))
		excluded += p.FlaggedExcluded
		included += p.FlaggedIncluded
	}
	if err := t.write(e.stdout, c.format); err != nil {
		return err
	}
	flaggedNote(e, excluded, included)
	return nil
}

func indexWeak(ctx context.Context, e *env, args []string) error {
	var c common
	var pf periodFlags
	var vf viewFlags
	var province string
	var limit int
	var includeFlagged bool
	fs := newFlags(e, "index weak", "sipas index weak --province CODE --period PERIOD [--limit N] [--boundaries current|as-collected] [--channel C] [--include-flagged]",
		"sipas index weak --province 48 --period 2026",
		"sipas index weak --province 48 --period 2026-Q2 --channel kiosk")
	c.register(fs, e)
	lang := langFlag(fs)
	pf.register(fs)
	vf.register(fs, true)
	fs.StringVar(&province, "province", "", "two-digit province code (required)")
	fs.IntVar(&limit, "limit", 10, "rows per list (1-500)")
	fs.BoolVar(&includeFlagged, "include-flagged", false, includeFlaggedUsage)
	if err := parse(fs, args); err != nil {
		return err
	}
	if province == "" {
		return usageError{"--province is required"}
	}
	if limit < 1 || limit > 500 {
		return usageError{"--limit must be between 1 and 500"}
	}
	q, err := vf.query()
	if err != nil {
		return err
	}
	if q.Period, err = pf.get(); err != nil {
		return err
	}
	q.Scope, q.IncludeFlagged = sipas.Scope{ProvinceCode: province}, includeFlagged
	cl, err := c.dial(e)
	if err != nil {
		return err
	}
	defer cl.Close()
	w, err := cl.WeakPoints(ctx, q, limit)
	if err != nil {
		return err
	}
	if c.format != "table" {
		return writeExport(e, c.format, *lang, export.WeakTable(w, export.WeakContext(w, province)))
	}
	for _, part := range []struct {
		title string
		rows  []sipas.WeakPoint
	}{{"Lowest values", append(append([]sipas.WeakPoint{}, w.Lowest...), w.Units...)},
		{"Largest drops against " + w.PreviousPeriod.String(), w.Drops}} {
		t := &table{header: []string{"level", "code", "label", "value", "n", "change", "national"}}
		for _, r := range part.rows {
			chg := ""
			if r.Change != nil {
				chg = fmt.Sprintf("%+.2f", *r.Change)
			}
			v := r.Value
			t.add(export.WeakLevel(r), export.WeakCode(r), r.LabelVi, fmtValue(&v), fmt.Sprint(r.N), chg, fmtValue(r.National))
		}
		fmt.Fprintf(e.stdout, "%s\n", part.title)
		if err := t.write(e.stdout, c.format); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout)
	}
	flaggedNote(e, w.FlaggedExcluded, w.FlaggedIncluded)
	return nil
}
