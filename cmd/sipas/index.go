package main

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strings"

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

func periodString(p *sipasv1.Period) string {
	switch {
	case p == nil:
		return ""
	case p.Quarter != 0:
		return fmt.Sprintf("%d-Q%d", p.Year, p.Quarter)
	case p.Month != 0:
		return fmt.Sprintf("%d-%02d", p.Year, p.Month)
	}
	return fmt.Sprint(p.Year)
}

func fmtValue(v *float64) string {
	if v == nil {
		return "—"
	}
	return fmt.Sprintf("%.2f", *v)
}

// nodeJSON is the machine form of an index node.
type nodeJSON struct {
	Code         string      `json:"code"`
	Label        string      `json:"label"`
	LabelEn      string      `json:"label_en"`
	Item         bool        `json:"item"`
	Value        *float64    `json:"value"`
	N            *int64      `json:"n"`
	Positive     int64       `json:"positive,omitempty"`
	Valid        int64       `json:"valid,omitempty"`
	CILow        *float64    `json:"ci_low"`
	CIHigh       *float64    `json:"ci_high"`
	Insufficient bool        `json:"insufficient"`
	Suppressed   bool        `json:"suppressed"`
	Children     []*nodeJSON `json:"children"`
}

func toNodeJSON(n *sipasv1.IndexNode) *nodeJSON {
	out := &nodeJSON{Code: n.Code, Label: n.LabelVi, LabelEn: n.LabelEn, Item: n.IsItem, Value: n.Value,
		Positive: n.Positive, Valid: n.Valid, CILow: n.CiLow, CIHigh: n.CiHigh,
		Insufficient: n.Insufficient, Suppressed: n.Suppressed, Children: []*nodeJSON{}}
	if !n.Suppressed {
		v := n.N
		out.N = &v
	}
	for _, c := range n.Children {
		out.Children = append(out.Children, toNodeJSON(c))
	}
	return out
}

func flags(n *sipasv1.IndexNode, k int64) string {
	var f []string
	if n.Suppressed {
		f = append(f, fmt.Sprintf("suppressed (n < %d)", k))
	}
	if n.Insufficient {
		f = append(f, "insufficient")
	}
	if n.Role == sipasv1.ItemRole_ITEM_ROLE_OVERALL {
		f = append(f, "overall")
	}
	return strings.Join(f, ",")
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
	pf.register(fs)
	fs.StringVar(&province, "province", "", "two-digit province code")
	fs.StringVar(&unit, "unit", "", "one-stop unit id")
	fs.BoolVar(&nation, "nation", false, "the whole country")
	fs.BoolVar(&includeFlagged, "include-flagged", false, "count responses flagged for data quality too (too fast, too soon, identical runs, clock skew)")
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
	if c.format == "json" {
		roots := make([]*nodeJSON, 0, len(rep.Roots))
		for _, r := range rep.Roots {
			roots = append(roots, toNodeJSON(r))
		}
		var n *int64
		if !rep.Suppressed {
			n = &rep.Respondents
		}
		return writeJSON(e.stdout, map[string]any{
			"questionnaire": rep.QuestionnaireId, "formula_version": rep.FormulaVersion, "scope": rep.ScopeName,
			"period": periodString(rep.Period), "boundaries": enumName(rep.Boundaries.String(), "BOUNDARIES_"),
			"respondents": n, "suppressed": rep.Suppressed, "national_mean": rep.NationalMean, "nodes": roots,
			"flagged_excluded": rep.FlaggedExcluded, "flagged_included": rep.FlaggedIncluded,
		})
	}
	t := &table{header: []string{"code", "label", "value", "n", "ci", "flags"}}
	var walk func(n *sipasv1.IndexNode, depth int)
	walk = func(n *sipasv1.IndexNode, depth int) {
		ci := ""
		if n.CiLow != nil && n.CiHigh != nil {
			ci = fmt.Sprintf("%.2f–%.2f", *n.CiLow, *n.CiHigh)
		}
		ns := fmt.Sprint(n.N)
		if n.Suppressed {
			ns = fmt.Sprintf("<%d", rep.DisclosureThreshold)
		}
		label := n.LabelVi
		if len([]rune(label)) > 60 {
			label = string([]rune(label)[:59]) + "…"
		}
		t.add(strings.Repeat("  ", depth)+n.Code, label, fmtValue(n.Value), ns, ci, flags(n, rep.DisclosureThreshold))
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
	if c.format == "table" {
		resp := fmt.Sprint(rep.Respondents)
		if rep.Suppressed {
			resp = fmt.Sprintf("< %d (suppressed)", rep.DisclosureThreshold)
		}
		fmt.Fprintf(e.stdout, "%s — %s, %s, %s boundaries; respondents %s; formula %s\n", rep.ScopeName, rep.QuestionnaireId,
			periodString(rep.Period), enumName(rep.Boundaries.String(), "BOUNDARIES_"), resp, rep.FormulaVersion)
		switch {
		case rep.FlaggedExcluded > 0:
			fmt.Fprintf(e.stdout, "%d flagged responses left out (--include-flagged counts them)\n", rep.FlaggedExcluded)
		case rep.FlaggedIncluded > 0:
			fmt.Fprintf(e.stdout, "%d flagged responses included\n", rep.FlaggedIncluded)
		}
		fmt.Fprintln(e.stdout)
	}
	return t.write(e.stdout, c.format)
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

// rankJSON is the machine form of one ranking row.
type rankJSON struct {
	Province      string   `json:"province,omitempty"`
	Unit          string   `json:"unit,omitempty"`
	Name          string   `json:"name"`
	Value         *float64 `json:"value"`
	Rank          *int32   `json:"rank"`
	N             *int64   `json:"n"`
	RankChange    *int32   `json:"rank_change"`
	ValueChange   *float64 `json:"value_change"`
	PreviousValue *float64 `json:"previous_value"`
	PreviousRank  *int32   `json:"previous_rank"`
	Insufficient  bool     `json:"insufficient"`
	Suppressed    bool     `json:"suppressed"`
}

func indexRank(ctx context.Context, e *env, args []string) error {
	var c common
	var pf periodFlags
	var province, node string
	fs := newFlags(e, "index rank", "sipas index rank --year Y [--quarter Q | --month M] [--province CODE (rank its units)] [--node CODE]",
		"sipas index rank --year 2026", "sipas index rank --year 2026 --boundaries current --format json",
		"sipas index rank --year 2026 --province 48   # the units of Đà Nẵng, weakest last")
	c.register(fs, e)
	pf.register(fs)
	fs.StringVar(&province, "province", "", "rank the units inside this province instead of the provinces")
	fs.StringVar(&node, "node", "", "rank by this node (default SIPAS)")
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
			Period: period, Channel: ch, NodeCode: node})
		rk = resp.GetRanking()
	} else {
		var resp *sipasv1.RankProvincesResponse
		resp, err = cl.Index.RankProvinces(cctx, &sipasv1.RankProvincesRequest{QuestionnaireId: pf.questionnaire,
			Period: period, Boundaries: b, Channel: ch, NodeCode: node})
		rk = resp.GetRanking()
	}
	if err != nil {
		return err
	}
	rows := make([]rankJSON, 0, len(rk.Rows))
	t := &table{header: []string{"rank", "id", "name", "value", "n", "change", "previous"}}
	for _, r := range rk.Rows {
		rj := rankJSON{Name: r.Name, Value: r.Value, Insufficient: r.Insufficient, Suppressed: r.Suppressed,
			ValueChange: r.ValueChange, PreviousValue: r.PreviousValue}
		if province != "" {
			rj.Unit = r.Id
		} else {
			rj.Province = r.Id
		}
		if r.Rank > 0 {
			rank := r.Rank
			rj.Rank = &rank
		}
		if !r.Suppressed {
			n := r.N
			rj.N = &n
		}
		if r.PreviousRank > 0 {
			pr := r.PreviousRank
			rj.PreviousRank = &pr
			if r.Rank > 0 {
				rc := r.RankChange
				rj.RankChange = &rc
			}
		}
		rows = append(rows, rj)
		rankS := "—"
		if r.Rank > 0 {
			rankS = fmt.Sprint(r.Rank)
		}
		ns := fmt.Sprint(r.N)
		switch {
		case r.Suppressed:
			ns = "suppressed"
		case r.Insufficient:
			ns += " (insufficient)"
		}
		t.add(rankS, r.Id, r.Name, fmtValue(r.Value), ns, changeText(rj), fmtValue(r.PreviousValue))
	}
	t.objects = rows
	if c.format == "table" {
		fmt.Fprintf(e.stdout, "%s %s by %s (formula %s); previous period %s; mean %s, pooled %s\n\n", rk.QuestionnaireId,
			periodString(rk.Period), rk.NodeCode, rk.FormulaVersion, periodString(rk.PreviousPeriod), fmtValue(rk.Mean), fmtValue(rk.Pooled))
	}
	return t.write(e.stdout, c.format)
}

func changeText(r rankJSON) string {
	if r.RankChange == nil {
		return ""
	}
	switch rc := *r.RankChange; {
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
	var nation bool
	fs := newFlags(e, "index series", "sipas index series (--province CODE | --unit ID | --nation) --from PERIOD --to PERIOD [--node CODE]",
		"sipas index series --province 48 --from 2023 --to 2026",
		"sipas index series --unit dn-haichau --node TC --from 2026-01 --to 2026-12",
		"sipas index series --nation --from 2025-Q1 --to 2026-Q4")
	c.register(fs, e)
	fs.StringVar(&questionnaire, "questionnaire", "sipas-2023", "questionnaire id")
	fs.StringVar(&province, "province", "", "two-digit province code")
	fs.StringVar(&unit, "unit", "", "one-stop unit id")
	fs.BoolVar(&nation, "nation", false, "the whole country")
	fs.StringVar(&node, "node", "", "node or item code (default SIPAS)")
	fs.StringVar(&from, "from", "", "first period: YYYY, YYYY-Qn or YYYY-MM")
	fs.StringVar(&to, "to", "", "last period, same form as --from")
	fs.StringVar(&boundaries, "boundaries", "as-collected", "as-collected or current")
	fs.StringVar(&channel, "channel", "", "only this channel")
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
		From: pFrom, To: pTo, Boundaries: b, Channel: ch})
	if err != nil {
		return err
	}
	s := sresp.GetSeries()
	type pointJSON struct {
		Period       string   `json:"period"`
		Value        *float64 `json:"value"`
		N            int64    `json:"n"`
		CILow        *float64 `json:"ci_low"`
		CIHigh       *float64 `json:"ci_high"`
		Insufficient bool     `json:"insufficient"`
		Suppressed   bool     `json:"suppressed"`
	}
	var pts []pointJSON
	t := &table{header: []string{"period", "value", "n", "ci", "flags"}}
	for _, p := range s.Points {
		pts = append(pts, pointJSON{periodString(p.Period), p.Value, p.N, p.CiLow, p.CiHigh, p.Insufficient, p.Suppressed})
		ci := ""
		if p.CiLow != nil && p.CiHigh != nil {
			ci = fmt.Sprintf("%.2f–%.2f", *p.CiLow, *p.CiHigh)
		}
		var f []string
		if p.Suppressed {
			f = append(f, "suppressed")
		}
		if p.Insufficient {
			f = append(f, "insufficient")
		}
		t.add(periodString(p.Period), fmtValue(p.Value), fmt.Sprint(p.N), ci, strings.Join(f, ","))
	}
	t.objects = pts
	return t.write(e.stdout, c.format)
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
	fs := newFlags(e, "index weak", "sipas index weak --province CODE --year Y [--quarter Q | --month M] [--limit N]",
		"sipas index weak --province 48 --year 2026")
	c.register(fs, e)
	pf.register(fs)
	fs.StringVar(&province, "province", "", "two-digit province code (required)")
	fs.IntVar(&limit, "limit", 10, "rows per list")
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
		Period: period, Boundaries: b, Limit: int32(limit)})
	if err != nil {
		return err
	}
	w := wresp.GetWeakPoints()
	if c.format == "json" {
		return writeJSON(e.stdout, w)
	}
	for _, part := range []struct {
		title string
		rows  []*sipasv1.WeakPoint
	}{{"Lowest values", w.Lowest}, {"Largest drops against " + periodString(w.PreviousPeriod), w.LargestDrops}} {
		t := &table{header: []string{"level", "code", "label", "value", "n", "change", "national"}}
		for _, r := range part.rows {
			chg := ""
			if r.Change != nil {
				chg = fmt.Sprintf("%+.2f", *r.Change)
			}
			t.add(r.Level, r.Code, r.LabelVi, fmtValue(r.Value), fmt.Sprint(r.N), chg, fmtValue(r.NationalValue))
		}
		if c.format == "table" {
			fmt.Fprintf(e.stdout, "%s\n", part.title)
		}
		if err := t.write(e.stdout, c.format); err != nil {
			return err
		}
		if c.format == "table" {
			fmt.Fprintln(e.stdout)
		}
	}
	return nil
}
