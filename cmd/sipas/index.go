package main

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/export"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

func init() {
	register(command{name: "index", summary: "read indices: show a tree, rank provinces or units, series, weak points", run: runIndex})
}

func runIndex(ctx context.Context, e *env, args []string) error {
	return subcommands(ctx, e, "index", args, map[string]func(context.Context, *env, []string) error{
		"show": indexShow, "rank": indexRank, "series": indexSeries, "weak": indexWeak,
	})
}

// periodFlags are the flags that select a questionnaire, period and view.
type periodFlags struct {
	questionnaire, boundaries, channel string
	year, quarter, month               int
}

func (p *periodFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.questionnaire, "questionnaire", "sipas-2023", "questionnaire id")
	fs.IntVar(&p.year, "year", 0, "survey year (required)")
	fs.IntVar(&p.quarter, "quarter", 0, "quarter 1-4 (optional)")
	fs.IntVar(&p.month, "month", 0, "month 1-12 (optional)")
	fs.StringVar(&p.boundaries, "boundaries", "as-collected", "as-collected or current (2025 merger)")
	fs.StringVar(&p.channel, "channel", "", "only this channel: kiosk, field, post, online, phone")
}

func (p *periodFlags) period() (*sipasv1.Period, error) {
	if p.year == 0 {
		return nil, usageError{"--year is required"}
	}
	if p.quarter != 0 && p.month != 0 {
		return nil, usageError{"give --quarter or --month, not both"}
	}
	return &sipasv1.Period{Year: int32(p.year), Quarter: int32(p.quarter), Month: int32(p.month)}, nil
}

// query reads the period, boundaries and channel flags.
func (p *periodFlags) query() (*sipasv1.Period, sipasv1.Boundaries, sipasv1.Channel, error) {
	period, err := p.period()
	if err != nil {
		return nil, 0, 0, err
	}
	b, ch, err := p.enums()
	return period, b, ch, err
}

func (p *periodFlags) enums() (sipasv1.Boundaries, sipasv1.Channel, error) {
	var b sipasv1.Boundaries
	switch p.boundaries {
	case "as-collected", "":
		b = sipasv1.Boundaries_BOUNDARIES_AS_COLLECTED
	case "current":
		b = sipasv1.Boundaries_BOUNDARIES_CURRENT
	default:
		return 0, 0, usageError{"--boundaries must be as-collected or current"}
	}
	ch, err := parseChannel(p.channel)
	return b, ch, err
}

func parseChannel(s string) (sipasv1.Channel, error) {
	if s == "" {
		return sipasv1.Channel_CHANNEL_UNSPECIFIED, nil
	}
	v, ok := sipasv1.Channel_value["CHANNEL_"+strings.ToUpper(s)]
	if !ok || v == 0 {
		return 0, usageError{"--channel must be kiosk, field, post, online or phone"}
	}
	return sipasv1.Channel(v), nil
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
func stateText(v *float64, n int64, insufficient, suppressed bool, k, minSample int64) string {
	s := export.StateOf(v, n, insufficient, suppressed)
	if s == export.StateOK {
		return ""
	}
	return s.Label(export.En, k, minSample)
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
	var province, unit string
	var nation, includeFlagged bool
	fs := newFlags(e, "index show", "sipas index show (--province CODE | --unit ID | --nation) --year Y [--quarter Q | --month M] [--boundaries current|as-collected] [--channel C] [--include-flagged]",
		"sipas index show --province 48 --year 2026",
		"sipas index show --nation --year 2026 --quarter 3 --format json")
	c.register(fs, e)
	lang := langFlag(fs)
	pf.register(fs)
	fs.StringVar(&province, "province", "", "two-digit province code")
	fs.StringVar(&unit, "unit", "", "one-stop unit id")
	fs.BoolVar(&nation, "nation", false, "the whole country")
	fs.BoolVar(&includeFlagged, "include-flagged", false, includeFlaggedUsage)
	if err := parse(fs, args); err != nil {
		return err
	}
	scope, err := scopeOf(province, unit, nation)
	if err != nil {
		return err
	}
	period, b, ch, err := pf.query()
	if err != nil {
		return err
	}
	cl, cctx, done, err := c.connect(ctx, e)
	if err != nil {
		return err
	}
	defer done()
	resp, err := cl.Index.GetIndex(cctx, &sipasv1.GetIndexRequest{QuestionnaireId: pf.questionnaire, Scope: scope,
		Period: period, Boundaries: b, Channel: ch, IncludeFlagged: includeFlagged})
	if err != nil {
		return err
	}
	rep := resp.GetReport()
	if c.format != "table" {
		return writeExport(e, c.format, *lang, export.TreeTable(rep, export.ParseLang(*lang)))
	}
	t := &table{header: []string{"level", "code", "label", "value", "n", "ci_low", "ci_high", "state"}}
	var walk func(n *sipasv1.IndexNode, depth int)
	walk = func(n *sipasv1.IndexNode, depth int) {
		ns := fmt.Sprint(n.N)
		if n.Suppressed {
			ns = ""
		}
		label := n.LabelVi
		if len([]rune(label)) > 60 {
			label = string([]rune(label)[:59]) + "…"
		}
		state := stateText(n.Value, n.N, n.Insufficient, n.Suppressed, rep.DisclosureThreshold, rep.MinimumSample)
		if n.Role == sipasv1.ItemRole_ITEM_ROLE_OVERALL {
			state = strings.TrimPrefix(state+", overall", ", ")
		}
		// The label is indented for the eye; the code cell stays the bare code.
		t.add(fmt.Sprint(depth), n.Code, strings.Repeat("  ", depth)+label, fmtValue(n.Value), ns, fmtValue(n.CiLow), fmtValue(n.CiHigh), state)
		for _, ch := range n.Children {
			walk(ch, depth+1)
		}
	}
	// The satisfaction tree (SIPAS) first: it is what readers look for.
	roots := append([]*sipasv1.IndexNode{}, rep.Roots...)
	sort.SliceStable(roots, func(i, j int) bool { return roots[i].Code == "SIPAS" && roots[j].Code != "SIPAS" })
	for _, r := range roots {
		walk(r, 0)
	}
	resps := fmt.Sprint(rep.Respondents)
	switch {
	case rep.Suppressed:
		resps = export.StateSuppressed.Label(export.En, rep.DisclosureThreshold, rep.MinimumSample)
	case rep.Respondents == 0:
		resps = export.StateNoData.Label(export.En, rep.DisclosureThreshold, rep.MinimumSample)
	}
	fmt.Fprintf(e.stdout, "%s — %s, %s, %s boundaries; respondents %s; formula %s\n", escapeControl(rep.ScopeName), rep.QuestionnaireId,
		export.PeriodString(rep.Period), enumName(rep.Boundaries.String(), "BOUNDARIES_"), resps, rep.FormulaVersion)
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

func scopeOf(province, unit string, nation bool) (*sipasv1.Scope, error) {
	n := 0
	for _, set := range []bool{province != "", unit != "", nation} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, usageError{"give exactly one of --province CODE, --unit ID, --nation"}
	}
	switch {
	case province != "":
		return &sipasv1.Scope{Scope: &sipasv1.Scope_ProvinceCode{ProvinceCode: province}}, nil
	case unit != "":
		return &sipasv1.Scope{Scope: &sipasv1.Scope_UnitId{UnitId: unit}}, nil
	}
	return &sipasv1.Scope{Scope: &sipasv1.Scope_Nation{Nation: true}}, nil
}

func indexRank(ctx context.Context, e *env, args []string) error {
	var c common
	var pf periodFlags
	var province, node string
	var includeFlagged bool
	fs := newFlags(e, "index rank", "sipas index rank --year Y [--quarter Q | --month M] [--province CODE (rank its units)] [--node CODE] [--include-flagged]",
		"sipas index rank --year 2026", "sipas index rank --year 2026 --boundaries current --format json",
		"sipas index rank --year 2026 --province 48   # the units of Đà Nẵng, weakest last")
	c.register(fs, e)
	lang := langFlag(fs)
	pf.register(fs)
	fs.StringVar(&province, "province", "", "rank the units inside this province instead of the provinces")
	fs.StringVar(&node, "node", "", "rank by this node (default SIPAS)")
	fs.BoolVar(&includeFlagged, "include-flagged", false, includeFlaggedUsage)
	if err := parse(fs, args); err != nil {
		return err
	}
	period, b, ch, err := pf.query()
	if err != nil {
		return err
	}
	cl, cctx, done, err := c.connect(ctx, e)
	if err != nil {
		return err
	}
	defer done()
	var rk *sipasv1.Ranking
	if province != "" {
		var resp *sipasv1.RankUnitsResponse
		resp, err = cl.Index.RankUnits(cctx, &sipasv1.RankUnitsRequest{QuestionnaireId: pf.questionnaire, ProvinceCode: province,
			Period: period, Channel: ch, NodeCode: node, IncludeFlagged: includeFlagged})
		rk = resp.GetRanking()
	} else {
		var resp *sipasv1.RankProvincesResponse
		resp, err = cl.Index.RankProvinces(cctx, &sipasv1.RankProvincesRequest{QuestionnaireId: pf.questionnaire,
			Period: period, Boundaries: b, Channel: ch, NodeCode: node, IncludeFlagged: includeFlagged})
		rk = resp.GetRanking()
	}
	if err != nil {
		return err
	}
	if c.format != "table" {
		scope := sipas.NationNameVi
		if province != "" {
			scope = province
		}
		return writeExport(e, c.format, *lang, export.RankingTable(rk, export.RankingContext(rk, scope), province != "", export.ParseLang(*lang)))
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
		t.add(rankS, r.Id, r.Name, fmtValue(r.Value), fmtValue(r.CiLow), fmtValue(r.CiHigh), ns, changeText(r), fmtValue(r.PreviousValue),
			stateText(r.Value, r.N, r.Insufficient, r.Suppressed, rk.DisclosureThreshold, rk.MinimumSample))
	}
	fmt.Fprintf(e.stdout, "%s %s by %s (formula %s); previous period %s; mean %s, pooled %s\n\n", rk.QuestionnaireId,
		export.PeriodString(rk.Period), rk.NodeCode, rk.FormulaVersion, export.PeriodString(rk.PreviousPeriod), fmtValue(rk.Mean), fmtValue(rk.Pooled))
	if err := t.write(e.stdout, c.format); err != nil {
		return err
	}
	if hidden > 0 {
		fmt.Fprintf(e.stdout, "\n%d units suppressed (fewer than %d respondents; not named)\n", hidden, rk.DisclosureThreshold)
	}
	flaggedNote(e, rk.FlaggedExcluded, rk.FlaggedIncluded)
	return nil
}

func changeText(r *sipasv1.RankRow) string {
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
	var questionnaire, province, unit, node, from, to, boundaries, channel string
	var nation, includeFlagged bool
	fs := newFlags(e, "index series", "sipas index series (--province CODE | --unit ID | --nation) --from PERIOD --to PERIOD [--node CODE] [--include-flagged]",
		"sipas index series --province 48 --from 2023 --to 2026",
		"sipas index series --unit dn-haichau --node TC --from 2026-01 --to 2026-12",
		"sipas index series --nation --from 2025-Q1 --to 2026-Q4")
	c.register(fs, e)
	lang := langFlag(fs)
	fs.StringVar(&questionnaire, "questionnaire", "sipas-2023", "questionnaire id")
	fs.StringVar(&province, "province", "", "two-digit province code")
	fs.StringVar(&unit, "unit", "", "one-stop unit id")
	fs.BoolVar(&nation, "nation", false, "the whole country")
	fs.StringVar(&node, "node", "", "node or item code (default SIPAS)")
	fs.StringVar(&from, "from", "", "first period: YYYY, YYYY-Qn or YYYY-MM")
	fs.StringVar(&to, "to", "", "last period, same form as --from")
	fs.StringVar(&boundaries, "boundaries", "as-collected", "as-collected or current")
	fs.StringVar(&channel, "channel", "", "only this channel")
	fs.BoolVar(&includeFlagged, "include-flagged", false, includeFlaggedUsage)
	if err := parse(fs, args); err != nil {
		return err
	}
	scope, err := scopeOf(province, unit, nation)
	if err != nil {
		return err
	}
	pFrom, err := parsePeriod(from)
	if err != nil {
		return err
	}
	pTo, err := parsePeriod(to)
	if err != nil {
		return err
	}
	pf := periodFlags{boundaries: boundaries, channel: channel}
	b, ch, err := pf.enums()
	if err != nil {
		return err
	}
	cl, cctx, done, err := c.connect(ctx, e)
	if err != nil {
		return err
	}
	defer done()
	sresp, err := cl.Index.GetSeries(cctx, &sipasv1.GetSeriesRequest{QuestionnaireId: questionnaire, Scope: scope, NodeCode: node,
		From: pFrom, To: pTo, Boundaries: b, Channel: ch, IncludeFlagged: includeFlagged})
	if err != nil {
		return err
	}
	s := sresp.GetSeries()
	if c.format != "table" {
		name := province + unit
		if nation {
			name = sipas.NationNameVi
		}
		return writeExport(e, c.format, *lang, export.SeriesTable(s, export.SeriesContext(s, name, pFrom, pTo, b, ch), export.ParseLang(*lang)))
	}
	t := &table{header: []string{"period", "value", "ci_low", "ci_high", "n", "state"}}
	var excluded, included int64
	for _, p := range s.Points {
		ns := fmt.Sprint(p.N)
		if p.Suppressed {
			ns = ""
		}
		t.add(export.PeriodString(p.Period), fmtValue(p.Value), fmtValue(p.CiLow), fmtValue(p.CiHigh), ns,
			stateText(p.Value, p.N, p.Insufficient, p.Suppressed, s.DisclosureThreshold, s.MinimumSample))
		excluded += p.FlaggedExcluded
		included += p.FlaggedIncluded
	}
	if err := t.write(e.stdout, c.format); err != nil {
		return err
	}
	flaggedNote(e, excluded, included)
	return nil
}

// parsePeriod reads YYYY, YYYY-Qn or YYYY-MM.
func parsePeriod(s string) (*sipasv1.Period, error) {
	var y, q, m int
	switch {
	case s == "":
		return nil, usageError{"--from and --to are required (YYYY, YYYY-Qn or YYYY-MM)"}
	case strings.Contains(s, "-Q"):
		if _, err := fmt.Sscanf(s, "%d-Q%d", &y, &q); err != nil {
			return nil, usageError{fmt.Sprintf("bad period %q: want YYYY-Qn", s)}
		}
	case strings.Contains(s, "-"):
		if _, err := fmt.Sscanf(s, "%d-%d", &y, &m); err != nil {
			return nil, usageError{fmt.Sprintf("bad period %q: want YYYY-MM", s)}
		}
	default:
		if _, err := fmt.Sscanf(s, "%d", &y); err != nil {
			return nil, usageError{fmt.Sprintf("bad period %q: want YYYY", s)}
		}
	}
	return &sipasv1.Period{Year: int32(y), Quarter: int32(q), Month: int32(m)}, nil
}

func indexWeak(ctx context.Context, e *env, args []string) error {
	var c common
	var pf periodFlags
	var province string
	var limit int
	var includeFlagged bool
	fs := newFlags(e, "index weak", "sipas index weak --province CODE --year Y [--quarter Q | --month M] [--limit N] [--include-flagged]",
		"sipas index weak --province 48 --year 2026")
	c.register(fs, e)
	lang := langFlag(fs)
	pf.register(fs)
	fs.StringVar(&province, "province", "", "two-digit province code (required)")
	fs.IntVar(&limit, "limit", 10, "rows per list")
	fs.BoolVar(&includeFlagged, "include-flagged", false, includeFlaggedUsage)
	if err := parse(fs, args); err != nil {
		return err
	}
	if province == "" {
		return usageError{"--province is required"}
	}
	period, b, _, err := pf.query()
	if err != nil {
		return err
	}
	cl, cctx, done, err := c.connect(ctx, e)
	if err != nil {
		return err
	}
	defer done()
	wresp, err := cl.Index.GetWeakPoints(cctx, &sipasv1.GetWeakPointsRequest{QuestionnaireId: pf.questionnaire, ProvinceCode: province,
		Period: period, Boundaries: b, Limit: int32(limit), IncludeFlagged: includeFlagged})
	if err != nil {
		return err
	}
	w := wresp.GetWeakPoints()
	if c.format != "table" {
		return writeExport(e, c.format, *lang, export.WeakTable(w, export.WeakContext(w, province, b)))
	}
	for _, part := range []struct {
		title string
		rows  []*sipasv1.WeakPoint
	}{{"Lowest values", w.Lowest}, {"Largest drops against " + export.PeriodString(w.PreviousPeriod), w.LargestDrops}} {
		t := &table{header: []string{"level", "code", "label", "value", "n", "change", "national"}}
		for _, r := range part.rows {
			chg := ""
			if r.Change != nil {
				chg = fmt.Sprintf("%+.2f", *r.Change)
			}
			t.add(r.Level, r.Code, r.LabelVi, fmtValue(r.Value), fmt.Sprint(r.N), chg, fmtValue(r.NationalValue))
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
