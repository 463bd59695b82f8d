package web_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/sipas-vn/sipas/internal/browsertest"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// artifacts is where the browser tests keep their screenshots and the
// printed report: $SIPAS_ARTIFACTS, or a directory under the system's
// temporary directory that outlives the test (its path is logged).
func artifacts(t *testing.T) string {
	dir := os.Getenv("SIPAS_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "sipas-web-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

func must(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluating %s: %v", js, err)
	}
	return v
}

func shot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func two(v *float64) string {
	if v == nil {
		return ""
	}
	return fmt.Sprintf("%.2f", *v)
}

// signIn opens a page, is sent to the sign-in form, and signs in there.
func signIn(t *testing.T, ctx context.Context, e *env, who, path string) {
	t.Helper()
	must(t, ctx, "open "+path, chromedp.Navigate(e.url+path), chromedp.WaitVisible(chromedp.CSS("#token")))
	must(t, ctx, "sign in", chromedp.SendKeys(chromedp.CSS("#token"), e.tokens[who]), chromedp.Click(chromedp.CSS("form.card button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("header.top")))
}

// TestDashboardInBrowser signs in as an official would, goes national →
// province → unit, and compares every figure shown with the API's answer
// to the same query; a suppressed unit appears nowhere in the DOM.
func TestDashboardInBrowser(t *testing.T) {
	ctx := browsertest.New(t, 1280, 900) // first: skips at once without a Chromium
	e := newEnv(t)
	dir := artifacts(t)

	signIn(t, ctx, e, "admin", "/national"+query)
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	if !strings.Contains(loc, "/national?") {
		t.Fatalf("after sign-in at %s", loc)
	}
	rk, err := e.index.RankProvinces(e.as("admin"), &sipasv1.RankProvincesRequest{QuestionnaireId: "sipas-2023", Period: period(),
		Boundaries: sipasv1.Boundaries_BOUNDARIES_CURRENT})
	if err != nil {
		t.Fatal(err)
	}
	if got := eval[string](t, ctx, `document.querySelector("#national-mean").textContent`); got != two(rk.Ranking.Mean) {
		t.Errorf("national mean %q, API %s", got, two(rk.Ranking.Mean))
	}
	if got := eval[string](t, ctx, `document.querySelector("#national-pooled").textContent`); got != two(rk.Ranking.Pooled) {
		t.Errorf("pooled %q, API %s", got, two(rk.Ranking.Pooled))
	}
	shown := eval[map[string]string](t, ctx, `Object.fromEntries([...document.querySelectorAll("table.rank tbody tr")].map(tr => [tr.dataset.code, tr.querySelector(".val").textContent]))`)
	if len(shown) != len(rk.Ranking.Rows) {
		t.Errorf("%d ranking rows shown, API %d", len(shown), len(rk.Ranking.Rows))
	}
	for _, r := range rk.Ranking.Rows {
		if shown[r.Id] != two(r.Value) {
			t.Errorf("province %s: shown %q, API %q", r.Id, shown[r.Id], two(r.Value))
		}
	}
	// Keyboard: the first Tab reaches the skip link, Enter moves to the content;
	// every link of the ranking is reachable (no tabindex games).
	must(t, ctx, "tab", chromedp.KeyEvent("\t"))
	if c := eval[string](t, ctx, `document.activeElement.className`); c != "skip" {
		t.Errorf("first Tab focuses %q, want the skip link", c)
	}
	must(t, ctx, "enter", chromedp.KeyEvent("\r"))
	if h := eval[string](t, ctx, `location.hash`); h != "#main" {
		t.Errorf("skip link leads to %q", h)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("[tabindex='-1'], [tabindex^='-']").length`); n != 0 {
		t.Errorf("%d elements taken out of the tab order", n)
	}
	// Every chart has a table of the same figures beside it.
	if n := eval[int](t, ctx, `[...document.querySelectorAll("figure.chart")].filter(f => !f.closest("section").querySelector("table")).length`); n != 0 {
		t.Errorf("%d charts without a table", n)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll(".tiles .tile").length`); n != 34 {
		t.Errorf("%d tiles, want the 34 provinces", n)
	}
	shot(t, ctx, dir, "national.png")

	// National → province 01 by its link in the ranking.
	must(t, ctx, "open province 01", chromedp.Click(chromedp.CSS(`table.rank tr[data-code="01"] a`)), chromedp.WaitVisible(chromedp.CSS("#respondents")))
	idx, err := e.index.GetIndex(e.as("admin"), &sipasv1.GetIndexRequest{QuestionnaireId: "sipas-2023", Period: period(),
		Boundaries: sipasv1.Boundaries_BOUNDARIES_CURRENT, Scope: &sipasv1.Scope{Scope: &sipasv1.Scope_ProvinceCode{ProvinceCode: "01"}}})
	if err != nil {
		t.Fatal(err)
	}
	// The first row of each code: the satisfaction tree comes first.
	tree := eval[map[string]string](t, ctx, `(() => { const m = {}; for (const tr of document.querySelectorAll("section[aria-labelledby=tree-h] tbody tr")) { if (!(tr.dataset.code in m)) m[tr.dataset.code] = tr.querySelector(".val").textContent; } return m; })()`)
	compared := 0
	for _, root := range idx.Report.Roots {
		var walk func(n *sipasv1.IndexNode)
		walk = func(n *sipasv1.IndexNode) {
			// Codes repeat across trees (CC is a satisfaction and an
			// expectation group); compare the satisfaction tree, which is listed first.
			if got, ok := tree[n.Code]; ok && root.Code == "SIPAS" {
				if got != two(n.Value) {
					t.Errorf("province 01 %s: shown %q, API %q", n.Code, got, two(n.Value))
				}
				compared++
			}
			for _, c := range n.Children {
				walk(c)
			}
		}
		walk(root)
	}
	if compared < 20 {
		t.Errorf("compared %d figures of the tree", compared)
	}
	if got := eval[string](t, ctx, `document.querySelector("#respondents").textContent`); got != fmt.Sprint(idx.Report.Respondents) {
		t.Errorf("respondents %q, API %d", got, idx.Report.Respondents)
	}
	// The series and the units' ranking equal the API's.
	ser, err := e.index.GetSeries(e.as("admin"), &sipasv1.GetSeriesRequest{QuestionnaireId: "sipas-2023", From: &sipasv1.Period{Year: year - 4}, To: period(),
		Boundaries: sipasv1.Boundaries_BOUNDARIES_CURRENT, Scope: &sipasv1.Scope{Scope: &sipasv1.Scope_ProvinceCode{ProvinceCode: "01"}}})
	if err != nil {
		t.Fatal(err)
	}
	shownSeries := eval[map[string]string](t, ctx, `Object.fromEntries([...document.querySelectorAll("section[aria-labelledby=series-h] tbody tr")].map(tr => [tr.dataset.code, tr.querySelector(".val").textContent]))`)
	if len(shownSeries) != len(ser.Series.Points) {
		t.Errorf("%d series points shown, API %d", len(shownSeries), len(ser.Series.Points))
	}
	for _, p := range ser.Series.Points {
		if k := fmt.Sprint(p.Period.Year); shownSeries[k] != two(p.Value) {
			t.Errorf("series %s: shown %q, API %q", k, shownSeries[k], two(p.Value))
		}
	}
	ru, err := e.index.RankUnits(e.as("admin"), &sipasv1.RankUnitsRequest{QuestionnaireId: "sipas-2023", ProvinceCode: "01", Period: period()})
	if err != nil {
		t.Fatal(err)
	}
	shownUnits := eval[map[string]string](t, ctx, `Object.fromEntries([...document.querySelectorAll("section[aria-labelledby=units-h] tbody tr")].map(tr => [tr.dataset.code, tr.querySelector(".val").textContent]))`)
	visible := 0
	for _, r := range ru.Ranking.Rows {
		if r.Suppressed {
			continue
		}
		visible++
		if shownUnits[r.Id] != two(r.Value) {
			t.Errorf("unit %s: shown %q, API %q", r.Id, shownUnits[r.Id], two(r.Value))
		}
	}
	if visible == 0 || len(shownUnits) != visible {
		t.Errorf("%d units shown, API has %d not suppressed", len(shownUnits), visible)
	}
	html := eval[string](t, ctx, `document.documentElement.outerHTML`)
	if leak := contains(html, "hn-tiny", "Nhỏ Xíu", "hn-b", "Ba Đình"); leak != "" {
		t.Errorf("the province page's DOM names suppressed unit %q", leak)
	}
	shot(t, ctx, dir, "province.png")

	// A4 print of the province report.
	pdf, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) ([]byte, error) {
		res, err := chromedp.Call(ctx, page.PrintToPDF, page.PrintToPDFParams{PaperWidth: 8.27, PaperHeight: 11.69, PreferCSSPageSize: new(true)})
		return res.Data, err
	})
	if err != nil || len(pdf) < 1000 || !strings.HasPrefix(string(pdf), "%PDF") {
		t.Errorf("printing to PDF: %d bytes, %v", len(pdf), err)
	} else if err := os.WriteFile(filepath.Join(dir, "province-print.pdf"), pdf, 0o644); err != nil {
		t.Fatal(err)
	}

	// Province → unit hn-a.
	must(t, ctx, "open unit hn-a", chromedp.Click(chromedp.CSS(`section[aria-labelledby=units-h] tr[data-code="hn-a"] a`)), chromedp.WaitVisible(chromedp.CSS("#respondents")))
	uidx, err := e.index.GetIndex(e.as("admin"), &sipasv1.GetIndexRequest{QuestionnaireId: "sipas-2023", Period: period(),
		Boundaries: sipasv1.Boundaries_BOUNDARIES_CURRENT, Scope: &sipasv1.Scope{Scope: &sipasv1.Scope_UnitId{UnitId: "hn-a"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := eval[string](t, ctx, `document.querySelector("section[aria-labelledby=tree-h] tr[data-code=SIPAS] .val").textContent`); got != two(uidx.Report.Roots[indexOf(uidx.Report.Roots, "SIPAS")].Value) {
		t.Errorf("unit hn-a SIPAS %q, API %s", got, two(uidx.Report.Roots[indexOf(uidx.Report.Roots, "SIPAS")].Value))
	}
	if h1 := eval[string](t, ctx, `document.querySelector("h1").textContent`); !strings.HasPrefix(h1, uidx.Report.ScopeName) || uidx.Report.ScopeName != "Một cửa Hoàn Kiếm" {
		t.Errorf("unit heading %q, API scope name %q: want the unit's registered name", h1, uidx.Report.ScopeName)
	}
	shot(t, ctx, dir, "unit.png")

	// The English switch keeps the view.
	must(t, ctx, "switch to English", chromedp.Click(chromedp.CSS(`a[hreflang=en]`)), chromedp.WaitVisible(chromedp.CSS("#respondents")))
	if lang := eval[string](t, ctx, `document.documentElement.lang`); lang != "en" {
		t.Errorf("page language after the switch: %q", lang)
	}
	if !strings.Contains(eval[string](t, ctx, `document.body.textContent`), "Formula tree") {
		t.Error("the English page has no English headings")
	}

	// A phone-sized province page.
	must(t, ctx, "phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(e.url+"/province/48"+query),
		chromedp.WaitVisible(chromedp.CSS("#respondents")))
	if w := eval[int](t, ctx, `document.documentElement.scrollWidth`); w > 420 {
		t.Errorf("the phone page is %d px wide (viewport 390)", w)
	}
	shot(t, ctx, dir, "province-phone.png")
	must(t, ctx, "print media", func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: "print"})
		return chromedp.Void{}, err
	})
	if d := eval[string](t, ctx, `getComputedStyle(document.querySelector(".picker")).display`); d != "none" {
		t.Errorf("the period picker prints (display %q)", d)
	}
	// What the A4 report looks like (the width of A4 at 96 dpi).
	must(t, ctx, "A4 width", chromedp.EmulateViewport(794, 1123))
	shot(t, ctx, dir, "province-print.png")
}

func indexOf(roots []*sipasv1.IndexNode, code string) int {
	for i, r := range roots {
		if r.Code == code {
			return i
		}
	}
	return 0
}

// TestScopedAnalystInBrowser: a province-48 analyst signs in, lands on
// province 48, and typing another province's or unit's URL gives the
// refusal the API gives, with none of its figures.
func TestScopedAnalystInBrowser(t *testing.T) {
	ctx := browsertest.New(t, 1280, 900) // first: skips at once without a Chromium
	e := newEnv(t)
	dir := artifacts(t)
	signIn(t, ctx, e, "analyst48", "/")
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	if !strings.Contains(loc, "/province/48?") {
		t.Fatalf("scoped analyst lands on %s", loc)
	}
	for _, p := range []string{"/province/01", "/unit/hn-a", "/national"} {
		resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(e.url+p+query))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != 403 {
			t.Errorf("%s: HTTP %d, want 403", p, resp.Status)
		}
		body := eval[string](t, ctx, `document.body.textContent`)
		if leak := contains(body, "Hoàn Kiếm", "Hà Nội"); leak != "" {
			t.Errorf("%s shows %q", p, leak)
		}
		if !strings.Contains(body, "ngoài phạm vi") {
			t.Errorf("%s: no scope refusal message", p)
		}
	}
	shot(t, ctx, dir, "refused.png")
}

// TestFleetInBrowser: an admin reaches the fleet from the navigation and
// sees each kiosk with its unit and health, a silent one marked; an
// analyst is refused it (HTTP 403, no kiosk shown).
func TestFleetInBrowser(t *testing.T) {
	ctx := browsertest.New(t, 1280, 900) // first: skips at once without a Chromium
	e := newEnv(t)
	e.fleetData(t)
	dir := artifacts(t)
	signIn(t, ctx, e, "admin", "/")
	must(t, ctx, "open the fleet", chromedp.Click(chromedp.CSS("#nav-fleet")), chromedp.WaitVisible(chromedp.CSS("table.fleet")))
	if n := eval[int](t, ctx, `document.querySelectorAll("table.fleet tbody tr[data-credential]").length`); n != 3 {
		t.Errorf("fleet shows %d kiosks, want 3", n)
	}
	silent := eval[[]string](t, ctx, `[...document.querySelectorAll("table.fleet tr.silent th.lbl .sub")].map(e => e.textContent)`)
	if len(silent) != 1 || silent[0] != "hn-a" {
		t.Errorf("silent rows %v, want [hn-a]", silent)
	}
	if bg := eval[string](t, ctx, `getComputedStyle(document.querySelector("table.fleet tr.silent")).backgroundColor`); bg == "rgba(0, 0, 0, 0)" {
		t.Error("a silent kiosk does not stand out")
	}
	if q := eval[string](t, ctx, `document.querySelector("tr:not(.silent) td.queue") && [...document.querySelectorAll("td.queue")].map(e => e.textContent).join(",")`); !strings.Contains(q, "7") {
		t.Errorf("queue depths shown: %q", q)
	}
	shot(t, ctx, dir, "fleet.png")

	ctx = browsertest.New(t, 1280, 900)
	signIn(t, ctx, e, "analystAll", "/")
	if n := eval[int](t, ctx, `document.querySelectorAll("#nav-fleet").length`); n != 0 {
		t.Error("an analyst is offered the fleet")
	}
	resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(e.url+"/fleet"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 403 {
		t.Errorf("fleet as analyst: HTTP %d, want 403", resp.Status)
	}
	if body := eval[string](t, ctx, `document.body.textContent`); strings.Contains(body, "dn-a") || !strings.Contains(body, "quản trị viên") {
		t.Errorf("fleet as analyst shows: %q", body)
	}
}
