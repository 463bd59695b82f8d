package web

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/export"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
	"google.golang.org/protobuf/proto"
)

// frame is what every page shows around its content.
type frame struct {
	L              lang
	Title          string
	CSRF           string
	Role           string
	Nation         bool
	Fleet          bool // may see the kiosk fleet (an admin)
	Provinces      []link
	Path           string
	Prm            params
	OtherLang      string
	Questionnaires []option
	Periods        []optGroup
	Channels       []option
	Bounds         []option
	// Selection names the boundaries and channel shown, for the printed report.
	Selection string
	// FlaggedNote says how many flagged responses the page's figures left
	// out (with a link that counts them) or count (with a link back).
	FlaggedNote *flaggedNote
}

// flaggedNote is the line about responses flagged for data quality.
type flaggedNote struct {
	Text, Href, Link string
}

// noteFlagged is the flagged note of a page whose scope left out (or
// counted) that many flagged responses; nil when there are none.
func (f *frame) noteFlagged(excluded, included int64) {
	l := f.L
	switch {
	case excluded > 0:
		f.FlaggedNote = &flaggedNote{Text: fmt.Sprintf(l.t("flagged_excluded"), excluded), Href: f.Path + f.Prm.with("flagged", "1"), Link: l.t("flagged_include")}
	case included > 0:
		f.FlaggedNote = &flaggedNote{Text: fmt.Sprintf(l.t("flagged_included"), included), Href: f.Path + f.Prm.with("flagged", "0"), Link: l.t("flagged_leave_out")}
	}
}

type link struct {
	Href, Label string
	Current     bool
}

func (h *Handler) frame(ctx context.Context, rq *request, title string) frame {
	l := rq.prm.Lang
	f := frame{L: l, Title: title, Prm: rq.prm, Nation: h.cfg.Reader.MayReadNation(ctx, rq.p), Fleet: h.cfg.Reader.MayListKiosks(ctx, rq.p)}
	if rq.sess != nil {
		f.CSRF = rq.sess.csrf
	}
	if rq.p != nil {
		f.Role = rq.p.RoleName()
		if !f.Nation {
			for _, pr := range h.ownProvinces(rq.p) {
				f.Provinces = append(f.Provinces, link{Href: "/province/" + pr.Code + rq.prm.Query(), Label: pr.NameVi})
			}
		}
	}
	other := en
	if l == en {
		other = vi
	}
	f.OtherLang = rq.prm.with("lang", other.code())
	for _, q := range h.cfg.Catalog.List() {
		f.Questionnaires = append(f.Questionnaires, option{Value: q.ID, Label: q.ID + " — " + l.pick(q.TitleVi, q.TitleEn), Selected: q.ID == rq.prm.Q})
	}
	f.Periods = periodOptions(rq.prm.Period, h.cfg.Now().In(sipas.VietnamZone).Year(), l)
	f.Channels = []option{{Value: "all", Label: l.t("ch_all"), Selected: rq.prm.Ch == 0}}
	for _, c := range sipas.Channels {
		name := export.ChannelName(channelProto(c))
		f.Channels = append(f.Channels, option{Value: name, Label: l.t("ch_" + name), Selected: rq.prm.Ch == c})
	}
	bl := l.t("b_current")
	if rq.prm.B == sipas.BoundariesAsCollected {
		bl = l.t("b_collected")
	}
	f.Selection = l.t("boundaries") + ": " + bl + " · " + l.t("channel") + ": " + l.t("ch_"+rq.prm.ChParam())
	f.Bounds = []option{
		{Value: "current", Label: l.t("b_current"), Selected: rq.prm.B != sipas.BoundariesAsCollected},
		{Value: "as_collected", Label: l.t("b_collected"), Selected: rq.prm.B == sipas.BoundariesAsCollected},
	}
	return f
}

// figure is one row of a table of figures, as shown.
type figure struct {
	ID, Name, Href string
	Level          int
	Item           bool
	Rank           int32
	Value          *float64
	Lo, Hi         *float64
	N              string
	State          export.State
	StateLabel     string
	PrevRank       int32
	RankChange     string
	PrevValue      *float64
	ValueChange    *float64
}

func (f figure) bar() bar {
	return bar{Label: f.Name, Code: f.ID, Value: f.Value, Lo: f.Lo, Hi: f.Hi, State: f.State}
}

type thresholds struct{ K, Min int64 }

func stateLabel(s export.State, l lang, th thresholds) string {
	if s == export.StateOK {
		return ""
	}
	return s.Label(l.export(), th.K, th.Min)
}

func nText(n int64, suppressed bool) string {
	if suppressed {
		return ""
	}
	return fmt.Sprint(n)
}

func rankFigures(rk *sipasv1.Ranking, l lang, href func(id string) string) []figure {
	th := thresholds{rk.GetDisclosureThreshold(), rk.GetMinimumSample()}
	var out []figure
	for _, r := range rk.GetRows() {
		st := export.StateOf(r.Value, r.N, r.Insufficient, r.Suppressed)
		f := figure{ID: r.Id, Name: r.Name, Rank: r.Rank, Value: r.Value, Lo: r.CiLow, Hi: r.CiHigh, N: nText(r.N, r.Suppressed),
			State: st, StateLabel: stateLabel(st, l, th), PrevRank: r.PreviousRank, PrevValue: r.PreviousValue, ValueChange: r.ValueChange}
		if r.Rank > 0 && r.PreviousRank > 0 {
			switch rc := r.RankChange; {
			case rc > 0:
				f.RankChange = fmt.Sprintf("▲ %s %d", l.t("up"), rc)
			case rc < 0:
				f.RankChange = fmt.Sprintf("▼ %s %d", l.t("down"), -rc)
			default:
				f.RankChange = "= " + l.t("same")
			}
		}
		if href != nil {
			f.Href = href(r.Id)
		}
		out = append(out, f)
	}
	return out
}

// withoutSuppressed drops suppressed rows: a suppressed unit is not named
// anywhere on a page or in an export, only counted.
func withoutSuppressed(rk *sipasv1.Ranking) (*sipasv1.Ranking, int) {
	out := proto.Clone(rk).(*sipasv1.Ranking)
	out.Rows = nil
	n := 0
	for _, r := range rk.Rows {
		if r.Suppressed {
			n++
			continue
		}
		out.Rows = append(out.Rows, r)
	}
	return out, n
}

func treeFigures(rep *sipasv1.IndexReport, l lang) []figure {
	th := thresholds{rep.GetDisclosureThreshold(), rep.GetMinimumSample()}
	var out []figure
	roots := append([]*sipasv1.IndexNode{}, rep.GetRoots()...)
	// The satisfaction tree first: it is what readers look for.
	sort.SliceStable(roots, func(i, j int) bool {
		return roots[i].Code == sipas.SIPASNodeCode && roots[j].Code != sipas.SIPASNodeCode
	})
	export.WalkTree(roots, func(n *sipasv1.IndexNode, _, _ string, level int) {
		st := export.StateOf(n.Value, n.N, n.Insufficient, n.Suppressed)
		out = append(out, figure{ID: n.Code, Name: l.pick(n.LabelVi, n.LabelEn), Level: min(level, 4), Item: n.IsItem, Value: n.Value,
			Lo: n.CiLow, Hi: n.CiHigh, N: nText(n.N, n.Suppressed), State: st, StateLabel: stateLabel(st, l, th)})
	})
	return out
}

func seriesFigures(s *sipasv1.Series, l lang) []figure {
	th := thresholds{s.GetDisclosureThreshold(), s.GetMinimumSample()}
	var out []figure
	for _, p := range s.GetPoints() {
		st := export.StateOf(p.Value, p.N, p.Insufficient, p.Suppressed)
		out = append(out, figure{ID: export.PeriodString(p.Period), Name: export.PeriodString(p.Period), Value: p.Value, Lo: p.CiLow, Hi: p.CiHigh,
			N: nText(p.N, p.Suppressed), State: st, StateLabel: stateLabel(st, l, th)})
	}
	return out
}

type exportLink struct {
	Label string
	Links []link
}

func exportLinks(base, table, label string, prm params, svg bool) exportLink {
	e := exportLink{Label: label}
	for _, f := range []string{"xlsx", "csv", "json"} {
		e.Links = append(e.Links, link{Href: base + "/" + table + "." + f + prm.Query(), Label: strings.ToUpper(f)})
	}
	if svg {
		e.Links = append(e.Links, link{Href: base + "/" + table + ".svg" + prm.Query(), Label: "SVG"})
	}
	return e
}

// ---- national

type nationalPage struct {
	frame
	Rk          *sipasv1.Ranking
	Rows        []figure
	Top, Bottom []figure
	Chart       template.HTML
	Tiles       []tile
	Unplaced    []figure
	Mean        *float64
	Pooled      *float64
	Rules       string
	Exports     []exportLink
	Previous    string
}

func (h *Handler) rankProvinces(ctx context.Context, rq *request) (*sipasv1.Ranking, error) {
	resp, err := h.cfg.Reader.RankProvinces(ctx, rq.p, &sipasv1.RankProvincesRequest{QuestionnaireId: rq.prm.Q,
		Period: periodProto(rq.prm.Period), Boundaries: boundaryProto(rq.prm.B), Channel: channelProto(rq.prm.Ch), IncludeFlagged: rq.prm.Flagged})
	if err != nil {
		return nil, err
	}
	return resp.GetRanking(), nil
}

func (h *Handler) national(w http.ResponseWriter, r *http.Request, rq *request) {
	rk, err := h.rankProvinces(r.Context(), rq)
	if err != nil {
		h.fail(w, r, rq, err)
		return
	}
	l := rq.prm.Lang
	pg := nationalPage{frame: h.frame(r.Context(), rq, l.t("national")+" — "+rq.prm.Period.String()), Rk: rk,
		Mean: rk.Mean, Pooled: rk.Pooled, Previous: export.PeriodString(rk.PreviousPeriod)}
	pg.Path = "/national"
	pg.noteFlagged(rk.FlaggedExcluded, rk.FlaggedIncluded)
	pg.Rows = rankFigures(rk, l, func(id string) string { return "/province/" + id + rq.prm.Query() })
	var ranked []figure
	for _, f := range pg.Rows {
		if f.Rank > 0 {
			ranked = append(ranked, f)
		}
	}
	pg.Top = ranked[:min(5, len(ranked))]
	for i := len(ranked) - 1; i >= 0 && i >= len(ranked)-5; i-- {
		pg.Bottom = append(pg.Bottom, ranked[i])
	}
	pg.Chart = barChart(chartBars(pg.Rows), l.t("ranking")+" "+rq.prm.Period.String(), rk.Mean, l)
	pg.Tiles, pg.Unplaced = tileMap(pg.Rows)
	pg.Rules = fmt.Sprintf(l.t("rules_text"), rk.DisclosureThreshold, rk.DisclosureThreshold, rk.MinimumSample)
	pg.Exports = []exportLink{exportLinks("/national", "ranking", l.t("ranking"), rq.prm, true)}
	h.render(w, http.StatusOK, "national.html", pg)
}

func chartBars(rows []figure) []bar {
	out := make([]bar, 0, len(rows))
	for _, f := range rows {
		out = append(out, f.bar())
	}
	return out
}

func (h *Handler) nationalFile(w http.ResponseWriter, r *http.Request, rq *request) {
	table, f, ok := splitFile(r.PathValue("file"))
	if !ok || table != "ranking" {
		http.NotFound(w, r)
		return
	}
	rk, err := h.rankProvinces(r.Context(), rq)
	if err != nil {
		h.fail(w, r, rq, err)
		return
	}
	name := stem("sipas", "ranking", rq.prm.Period.String(), rq.prm.BParam(), rq.prm.ChParam())
	if f == "svg" {
		sendSVG(w, barChart(chartBars(rankFigures(rk, rq.prm.Lang, nil)), rq.prm.Lang.t("ranking")+" "+rq.prm.Period.String(), rk.Mean, rq.prm.Lang), name)
		return
	}
	h.sendTable(w, rq, export.RankingTable(rk, export.RankingContext(rk, sipas.NationNameVi), false, rq.prm.Lang.export()), f, name)
}

// ---- province

type expectRow struct {
	Code, Label string
	Value       *float64
	Items       []figure
}

type provincePage struct {
	frame
	Code, Name      string
	Report          *sipasv1.IndexReport
	Respondents     string
	Tree            []figure
	Elements        []figure
	ElementsChart   template.HTML
	Units           []figure
	UnitsSuppressed int
	SuppressedNote  string
	UnitsChart      template.HTML
	Series          []figure
	SeriesChart     template.HTML
	Weak            *sipasv1.WeakPoints
	Expect          []expectRow
	Rules           string
	Exports         []exportLink
}

func periodProto(p sipas.Period) *sipasv1.Period {
	return &sipasv1.Period{Year: int32(p.Year), Quarter: int32(p.Quarter), Month: int32(p.Month)}
}

func (h *Handler) index(ctx context.Context, rq *request, sc *sipasv1.Scope, node string) (*sipasv1.IndexReport, error) {
	resp, err := h.cfg.Reader.GetIndex(ctx, rq.p, &sipasv1.GetIndexRequest{QuestionnaireId: rq.prm.Q, Scope: sc, Period: periodProto(rq.prm.Period),
		Boundaries: boundaryProto(rq.prm.B), Channel: channelProto(rq.prm.Ch), IncludeFlagged: rq.prm.Flagged})
	if err != nil {
		return nil, err
	}
	return resp.GetReport(), nil
}

func (h *Handler) series(ctx context.Context, rq *request, sc *sipasv1.Scope) (*sipasv1.Series, error) {
	from, to := seriesRange(rq.prm.Period)
	resp, err := h.cfg.Reader.GetSeries(ctx, rq.p, &sipasv1.GetSeriesRequest{QuestionnaireId: rq.prm.Q, Scope: sc, From: periodProto(from), To: periodProto(to),
		Boundaries: boundaryProto(rq.prm.B), Channel: channelProto(rq.prm.Ch), IncludeFlagged: rq.prm.Flagged})
	if err != nil {
		return nil, err
	}
	return resp.GetSeries(), nil
}

func (h *Handler) rankUnits(ctx context.Context, rq *request, code string) (*sipasv1.Ranking, error) {
	resp, err := h.cfg.Reader.RankUnits(ctx, rq.p, &sipasv1.RankUnitsRequest{QuestionnaireId: rq.prm.Q, ProvinceCode: code,
		Period: periodProto(rq.prm.Period), Channel: channelProto(rq.prm.Ch), IncludeFlagged: rq.prm.Flagged})
	if err != nil {
		return nil, err
	}
	return resp.GetRanking(), nil
}

func (h *Handler) weak(ctx context.Context, rq *request, code string) (*sipasv1.WeakPoints, error) {
	resp, err := h.cfg.Reader.GetWeakPoints(ctx, rq.p, &sipasv1.GetWeakPointsRequest{QuestionnaireId: rq.prm.Q, ProvinceCode: code,
		Period: periodProto(rq.prm.Period), Boundaries: boundaryProto(rq.prm.B), Limit: 10, IncludeFlagged: rq.prm.Flagged})
	if err != nil {
		return nil, err
	}
	return resp.GetWeakPoints(), nil
}

func provinceScope(code string) *sipasv1.Scope {
	return &sipasv1.Scope{Scope: &sipasv1.Scope_ProvinceCode{ProvinceCode: code}}
}

func unitScope(id string) *sipasv1.Scope {
	return &sipasv1.Scope{Scope: &sipasv1.Scope_UnitId{UnitId: id}}
}

// elementsOf are the five service elements: the children of the service
// block (DV) of the satisfaction tree, or the root's children when the
// questionnaire has no such block.
func elementsOf(rep *sipasv1.IndexReport, l lang) []figure {
	th := thresholds{rep.GetDisclosureThreshold(), rep.GetMinimumSample()}
	var out []figure
	for _, c := range elementNodes(rep) {
		st := export.StateOf(c.Value, c.N, c.Insufficient, c.Suppressed)
		out = append(out, figure{ID: c.Code, Name: l.pick(c.LabelVi, c.LabelEn), Value: c.Value, Lo: c.CiLow, Hi: c.CiHigh,
			N: nText(c.N, c.Suppressed), State: st, StateLabel: stateLabel(st, l, th)})
	}
	return out
}

// elementNodes are the nodes elementsOf shows.
func elementNodes(rep *sipasv1.IndexReport) []*sipasv1.IndexNode {
	var root *sipasv1.IndexNode
	for _, r := range rep.GetRoots() {
		if r.Code == sipas.SIPASNodeCode {
			root = r
		}
	}
	if root == nil {
		return nil
	}
	parent := root
	for _, c := range root.Children {
		if c.Code == "DV" {
			parent = c
		}
	}
	var out []*sipasv1.IndexNode
	for _, c := range parent.Children {
		if !c.IsItem {
			out = append(out, c)
		}
	}
	return out
}

// expectationRoot is the code of the questionnaire's expectation tree.
func expectationRoot(q *sipas.Questionnaire) string {
	if q != nil {
		for _, r := range q.Roots {
			if r.Kind == sipas.KindExpectation {
				return r.Code
			}
		}
	}
	return ""
}

// expectations shows each satisfaction group beside the expectations of
// the same group, where the questionnaire has both.
func expectations(q *sipas.Questionnaire, rep *sipasv1.IndexReport, l lang) []expectRow {
	th := thresholds{rep.GetDisclosureThreshold(), rep.GetMinimumSample()}
	var out []expectRow
	for _, p := range export.Pairs(rep, expectationRoot(q)) {
		s := p.Satisfaction
		row := expectRow{Code: s.Code, Label: l.pick(s.LabelVi, s.LabelEn), Value: s.Value}
		for _, it := range p.Expectation.Children {
			st := export.StateOf(it.Value, it.N, it.Insufficient, it.Suppressed)
			row.Items = append(row.Items, figure{ID: it.Code, Name: l.pick(it.LabelVi, it.LabelEn), Value: it.Value, N: nText(it.N, it.Suppressed),
				State: st, StateLabel: stateLabel(st, l, th)})
		}
		out = append(out, row)
	}
	return out
}

func respondentsText(rep *sipasv1.IndexReport, l lang) string {
	switch {
	case rep.GetSuppressed():
		return export.StateSuppressed.Label(l.export(), rep.DisclosureThreshold, rep.MinimumSample)
	case rep.GetRespondents() == 0:
		return export.StateNoData.Label(l.export(), rep.DisclosureThreshold, rep.MinimumSample)
	}
	return fmt.Sprint(rep.GetRespondents())
}

func (h *Handler) province(w http.ResponseWriter, r *http.Request, rq *request) {
	ctx, code, l := r.Context(), r.PathValue("code"), rq.prm.Lang
	// The four queries are independent: run them side by side, so the page
	// costs about its slowest query in server time.
	var (
		rep   *sipasv1.IndexReport
		units *sipasv1.Ranking
		ser   *sipasv1.Series
		wk    *sipasv1.WeakPoints
		errs  [4]error
		wg    sync.WaitGroup
	)
	wg.Go(func() { rep, errs[0] = h.index(ctx, rq, provinceScope(code), "") })
	wg.Go(func() { units, errs[1] = h.rankUnits(ctx, rq, code) })
	wg.Go(func() { ser, errs[2] = h.series(ctx, rq, provinceScope(code)) })
	wg.Go(func() { wk, errs[3] = h.weak(ctx, rq, code) })
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			h.fail(w, r, rq, err)
			return
		}
	}
	pg := provincePage{frame: h.frame(ctx, rq, rep.ScopeName+" — "+rq.prm.Period.String()), Code: code, Name: rep.ScopeName, Report: rep, Weak: wk}
	pg.Path = "/province/" + code
	pg.noteFlagged(rep.FlaggedExcluded, rep.FlaggedIncluded)
	pg.Respondents = respondentsText(rep, l)
	pg.Tree = treeFigures(rep, l)
	pg.Elements = elementsOf(rep, l)
	pg.ElementsChart = barChart(chartBars(pg.Elements), l.t("elements"), nil, l)
	visible, hidden := withoutSuppressed(units)
	pg.Units = rankFigures(visible, l, func(id string) string { return "/unit/" + id + rq.prm.Query() })
	pg.UnitsSuppressed = hidden
	pg.SuppressedNote = fmt.Sprintf(l.t("suppressed_units"), rep.DisclosureThreshold)
	pg.UnitsChart = barChart(chartBars(pg.Units), l.t("unit_ranking"), visible.Mean, l)
	pg.Series = seriesFigures(ser, l)
	pg.SeriesChart = lineChart(pg.Series, l.t("series"), l)
	pg.Expect = expectations(h.cfg.Catalog.Get(rep.QuestionnaireId), rep, l)
	pg.Rules = fmt.Sprintf(l.t("rules_text"), rep.DisclosureThreshold, rep.DisclosureThreshold, rep.MinimumSample)
	base := "/province/" + code
	pg.Exports = []exportLink{
		exportLinks(base, "tree", l.t("tree"), rq.prm, false),
		exportLinks(base, "elements", l.t("elements"), rq.prm, true),
		exportLinks(base, "units", l.t("unit_ranking"), rq.prm, true),
		exportLinks(base, "series", l.t("series"), rq.prm, true),
		exportLinks(base, "weak", l.t("weak"), rq.prm, false),
	}
	if len(pg.Expect) > 0 {
		pg.Exports = append(pg.Exports, exportLinks(base, "expectation", l.t("expectation"), rq.prm, false))
	}
	h.render(w, http.StatusOK, "province.html", pg)
}

func (h *Handler) provinceFile(w http.ResponseWriter, r *http.Request, rq *request) {
	ctx, code, l := r.Context(), r.PathValue("code"), rq.prm.Lang
	table, f, ok := splitFile(r.PathValue("file"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	name := stem("sipas", code, table, rq.prm.Period.String(), rq.prm.BParam(), rq.prm.ChParam())
	switch table {
	case "tree", "elements", "expectation":
		rep, err := h.index(ctx, rq, provinceScope(code), "")
		if err != nil {
			h.fail(w, r, rq, err)
			return
		}
		switch {
		case table == "elements" && f == "svg":
			sendSVG(w, barChart(chartBars(elementsOf(rep, l)), rep.ScopeName+" — "+l.t("elements"), nil, l), name)
		case f == "svg":
			http.NotFound(w, r)
		case table == "elements":
			h.sendTable(w, rq, export.SubtreeTable(rep, elementNodes(rep), 0, "elements", "Năm yếu tố dịch vụ", "Five service elements", l.export()), f, name)
		case table == "expectation":
			pairs := export.Pairs(rep, expectationRoot(h.cfg.Catalog.Get(rep.QuestionnaireId)))
			h.sendTable(w, rq, export.ExpectationTable(rep, pairs, l.export()), f, name)
		default:
			h.sendTable(w, rq, export.TreeTable(rep, l.export()), f, name)
		}
	case "units":
		rk, err := h.rankUnits(ctx, rq, code)
		if err != nil {
			h.fail(w, r, rq, err)
			return
		}
		visible, _ := withoutSuppressed(rk)
		if f == "svg" {
			sendSVG(w, barChart(chartBars(rankFigures(visible, l, nil)), l.t("unit_ranking"), visible.Mean, l), name)
			return
		}
		h.sendTable(w, rq, export.RankingTable(rk, export.RankingContext(rk, rk.GetNodeCode()), true, l.export()), f, name)
	case "series":
		h.seriesFile(w, r, rq, provinceScope(code), name, f)
	case "weak":
		if f == "svg" {
			http.NotFound(w, r)
			return
		}
		wk, err := h.weak(ctx, rq, code)
		if err != nil {
			h.fail(w, r, rq, err)
			return
		}
		h.sendTable(w, rq, export.WeakTable(wk, export.WeakContext(wk, code, boundaryProto(rq.prm.B))), f, name)
	default:
		http.NotFound(w, r)
	}
}

func (h *Handler) seriesFile(w http.ResponseWriter, r *http.Request, rq *request, sc *sipasv1.Scope, name string, f export.Format) {
	s, err := h.series(r.Context(), rq, sc)
	if err != nil {
		h.fail(w, r, rq, err)
		return
	}
	l := rq.prm.Lang
	if f == "svg" {
		sendSVG(w, lineChart(seriesFigures(s, l), l.t("series"), l), name)
		return
	}
	from, to := seriesRange(rq.prm.Period)
	scope := sc.GetProvinceCode() + sc.GetUnitId()
	h.sendTable(w, rq, export.SeriesTable(s, export.SeriesContext(s, scope, periodProto(from), periodProto(to), boundaryProto(rq.prm.B), channelProto(rq.prm.Ch)), l.export()), f, name)
}

// ---- unit

type unitPage struct {
	frame
	ID, Name    string
	Report      *sipasv1.IndexReport
	Respondents string
	Tree        []figure
	Series      []figure
	SeriesChart template.HTML
	Rules       string
	Exports     []exportLink
}

func (h *Handler) unit(w http.ResponseWriter, r *http.Request, rq *request) {
	ctx, id, l := r.Context(), r.PathValue("id"), rq.prm.Lang
	var (
		rep  *sipasv1.IndexReport
		ser  *sipasv1.Series
		errs [2]error
		wg   sync.WaitGroup
	)
	wg.Go(func() { rep, errs[0] = h.index(ctx, rq, unitScope(id), "") })
	wg.Go(func() { ser, errs[1] = h.series(ctx, rq, unitScope(id)) })
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			h.fail(w, r, rq, err)
			return
		}
	}
	pg := unitPage{frame: h.frame(ctx, rq, rep.ScopeName+" — "+rq.prm.Period.String()), ID: id, Name: rep.ScopeName, Report: rep}
	pg.Path = "/unit/" + id
	pg.noteFlagged(rep.FlaggedExcluded, rep.FlaggedIncluded)
	pg.Respondents = respondentsText(rep, l)
	pg.Tree = treeFigures(rep, l)
	pg.Series = seriesFigures(ser, l)
	pg.SeriesChart = lineChart(pg.Series, l.t("series"), l)
	pg.Rules = fmt.Sprintf(l.t("rules_text"), rep.DisclosureThreshold, rep.DisclosureThreshold, rep.MinimumSample)
	base := "/unit/" + id
	pg.Exports = []exportLink{exportLinks(base, "tree", l.t("tree"), rq.prm, false), exportLinks(base, "series", l.t("series"), rq.prm, true)}
	h.render(w, http.StatusOK, "unit.html", pg)
}

func (h *Handler) unitFile(w http.ResponseWriter, r *http.Request, rq *request) {
	id := r.PathValue("id")
	table, f, ok := splitFile(r.PathValue("file"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	name := stem("sipas", id, table, rq.prm.Period.String(), rq.prm.BParam(), rq.prm.ChParam())
	switch {
	case table == "tree" && f != "svg":
		rep, err := h.index(r.Context(), rq, unitScope(id), "")
		if err != nil {
			h.fail(w, r, rq, err)
			return
		}
		h.sendTable(w, rq, export.TreeTable(rep, rq.prm.Lang.export()), f, name)
	case table == "series":
		h.seriesFile(w, r, rq, unitScope(id), name, f)
	default:
		http.NotFound(w, r)
	}
}
