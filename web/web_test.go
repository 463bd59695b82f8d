package web_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

func TestSignInSessionCookie(t *testing.T) {
	e := newEnv(t)
	_, resp := e.client("admin")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/national") {
		t.Fatalf("sign-in: %d → %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var sess *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "sipas_session" {
			sess = c
		}
	}
	if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.MaxAge <= 0 || sess.Secure {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, an expiry, not Secure over plain HTTP", sess)
	}
}

func TestSessionCookieSecureUnderTLS(t *testing.T) {
	e := newEnvTLS(t, true)
	c, resp := e.client("admin")
	var sess *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "sipas_session" {
			sess = ck
		}
	}
	if resp.StatusCode != http.StatusSeeOther || sess == nil || !sess.Secure || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode {
		t.Fatalf("sign-in over TLS: %d, session cookie %+v: want Secure, HttpOnly, SameSite=Strict", resp.StatusCode, sess)
	}
	if code, _ := e.status(c, "/national"+query); code != http.StatusOK {
		t.Fatalf("national over TLS: %d", code)
	}
}

func TestSignInRefusesKioskSurveyorAndBadTokens(t *testing.T) {
	e := newEnv(t)
	for _, who := range []string{"kiosk", "surveyor", "sps_notatoken", ""} {
		c, resp := e.client(who)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%q: sign-in %d, want 401", who, resp.StatusCode)
		}
		if code, _ := e.status(c, "/national"+query); code != http.StatusSeeOther {
			t.Errorf("%q: /national after a refused sign-in: %d, want a redirect to sign in", who, code)
		}
	}
}

func TestSignInNeedsCSRF(t *testing.T) {
	e := newEnv(t)
	resp, err := http.PostForm(e.url+"/signin", url.Values{"token": {e.tokens["admin"]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-in without a CSRF token: %d, want 403", resp.StatusCode)
	}
	// Sign-out needs the session's CSRF token too.
	c, _ := e.client("admin")
	resp, err = c.PostForm(e.url+"/signout", url.Values{"csrf": {"forged"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-out with a forged CSRF token: %d", resp.StatusCode)
	}
	if code, _ := e.status(c, "/national"+query); code != http.StatusOK {
		t.Fatalf("the session ended on a forged sign-out: %d", code)
	}
	m := csrfField.FindStringSubmatch(e.get(c, "/national"+query))
	resp, err = c.PostForm(e.url+"/signout", url.Values{"csrf": {m[1]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code, _ := e.status(c, "/national"+query); code != http.StatusSeeOther {
		t.Fatalf("after sign-out /national gives %d, want a redirect to sign in", code)
	}
}

func TestSignInRateLimited(t *testing.T) {
	e := newEnv(t)
	limited := 0
	for range 8 {
		_, resp := e.client("sps_wrong")
		if resp.StatusCode == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited < 3 {
		t.Fatalf("%d of 8 quick attempts limited, want at least 3 (burst 5)", limited)
	}
	// A good token is limited too while the bucket is empty.
	if _, resp := e.client("admin"); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("good token during the limit: %d", resp.StatusCode)
	}
}

// TestScopedAnalystByURL: a province-48 analyst reads 48 and is refused
// everything else, by page and by export, as the API refuses it.
func TestScopedAnalystByURL(t *testing.T) {
	e := newEnv(t)
	c, resp := e.client("analyst48")
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "/province/48") {
		t.Fatalf("scoped analyst lands on %q", loc)
	}
	if code, body := e.status(c, "/province/48"+query); code != http.StatusOK || !strings.Contains(body, "Hải Châu") {
		t.Fatalf("own province: %d", code)
	}
	for _, p := range []string{"/national", "/national/ranking.xlsx", "/province/01", "/province/01/tree.csv", "/province/01/units.json",
		"/province/01/series.svg", "/unit/hn-a", "/unit/hn-a/tree.xlsx", "/province/79/weak.csv"} {
		code, body := e.status(c, p+query)
		if code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", p, code)
		}
		if leak := contains(body, "Hoàn Kiếm", "hn-b", "Hà Nội"); leak != "" && p != "/national" {
			t.Errorf("%s: refusal shows %q", p, leak)
		}
	}
	if _, err := e.index.GetIndex(e.as("analyst48"), &sipasv1.GetIndexRequest{QuestionnaireId: "sipas-2023", Period: period(),
		Scope: &sipasv1.Scope{Scope: &sipasv1.Scope_ProvinceCode{ProvinceCode: "01"}}}); err == nil {
		t.Fatal("the API gave province 01 to the province-48 analyst")
	}
}

// TestExportsMatchAPI: the XLSX, CSV and JSON exports hold the API's
// numbers in numeric cells, with a header block, and name no suppressed unit.
func TestExportsMatchAPI(t *testing.T) {
	e := newEnv(t)
	c, _ := e.client("admin")
	rk, err := e.index.RankProvinces(e.as("admin"), &sipasv1.RankProvincesRequest{QuestionnaireId: "sipas-2023", Period: period(),
		Boundaries: sipasv1.Boundaries_BOUNDARIES_CURRENT})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]*sipasv1.RankRow{}
	for _, r := range rk.Ranking.Rows {
		want[r.Id] = r
	}
	if want["48"].Value == nil || want["01"].Value == nil || !want["79"].Insufficient {
		t.Fatalf("fixture: %v", rk.Ranking.Rows[:3])
	}

	// XLSX: numbers in numeric cells, CI in two columns.
	f, err := excelize.OpenReader(strings.NewReader(e.get(c, "/national/ranking.xlsx"+query)))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := f.GetRows(f.GetSheetName(0), excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	head := -1
	for i, r := range rows {
		if len(r) > 3 && r[0] == "Hạng" {
			head = i
		}
	}
	if head < 0 || !strings.Contains(fmt.Sprint(rows[:head]), "sipas-2023") || !strings.Contains(fmt.Sprint(rows[:head]), "k=5") {
		t.Fatalf("no header block with questionnaire and disclosure rules: %v", rows[:max(head, 0)])
	}
	col := map[string]int{}
	for i, h := range rows[head] {
		col[h] = i
	}
	seen := 0
	for i, r := range rows[head+1:] {
		id := r[col["Mã tỉnh"]]
		w := want[id]
		if w == nil {
			t.Fatalf("row %s not in the API's ranking", id)
		}
		cellName, _ := excelize.CoordinatesToCellName(col["Giá trị (%)"]+1, head+2+i)
		typ, _ := f.GetCellType(f.GetSheetName(0), cellName)
		if w.Value == nil {
			if v := get(r, col["Giá trị (%)"]); v != "" {
				t.Errorf("%s: value %q where the API has none", id, v)
			}
			continue
		}
		v, err := strconv.ParseFloat(r[col["Giá trị (%)"]], 64)
		if err != nil || !near(v, *w.Value) || typ == excelize.CellTypeSharedString || typ == excelize.CellTypeInlineString {
			t.Errorf("%s: xlsx value %q (type %v), API %v", id, r[col["Giá trị (%)"]], typ, *w.Value)
		}
		lo, _ := strconv.ParseFloat(get(r, col["Cận dưới 95%"]), 64)
		hi, _ := strconv.ParseFloat(get(r, col["Cận trên 95%"]), 64)
		if w.CiLow == nil || !near(lo, *w.CiLow) || !near(hi, *w.CiHigh) {
			t.Errorf("%s: interval %v–%v, API %v–%v", id, lo, hi, w.GetCiLow(), w.GetCiHigh())
		}
		seen++
	}
	if seen < 3 {
		t.Fatalf("%d rows with values in the xlsx", seen)
	}

	// CSV: a BOM, the header block, numbers as plain numbers.
	body := e.get(c, "/national/ranking.csv"+query+"&lang=en")
	if !strings.HasPrefix(body, "\uFEFF") {
		t.Fatal("CSV without a UTF-8 BOM")
	}
	recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(body, "\uFEFF"))).ReadAll()
	if err == nil {
		t.Fatal("want a header block of two-cell lines before the table (ragged CSV)")
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(body, "\uFEFF")))
	r.FieldsPerRecord = -1
	if recs, err = r.ReadAll(); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, rec := range recs {
		if len(rec) > 3 && rec[1] == "48" {
			found = rec[3] == strconv.FormatFloat(*want["48"].Value, 'f', -1, 64)
		}
	}
	if !found {
		t.Fatalf("CSV row 48 does not hold the API's value %v:\n%s", *want["48"].Value, body)
	}

	// JSON: an object with metadata and rows.
	var doc struct {
		Metadata map[string]string `json:"metadata"`
		Rows     []map[string]any  `json:"rows"`
	}
	if err := json.Unmarshal([]byte(e.get(c, "/national/ranking.json"+query)), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Metadata["period"] != "2026" || doc.Metadata["boundaries"] != "current" || doc.Metadata["formula_version"] == "" || len(doc.Rows) != len(rk.Ranking.Rows) {
		t.Fatalf("json metadata %v, %d rows", doc.Metadata, len(doc.Rows))
	}

	// Units of 01: the suppressed units are named nowhere.
	for _, p := range []string{"/province/01" + query, "/province/01/units.csv" + query, "/province/01/units.json" + query,
		"/province/01/units.svg" + query, "/province/01/weak.csv" + query} {
		body := e.get(c, p)
		if leak := contains(body, "hn-tiny", "Nhỏ Xíu", "hn-b", "Ba Đình"); leak != "" {
			t.Errorf("%s names suppressed unit %q", p, leak)
		}
		if !strings.Contains(body, "hn-a") && !strings.Contains(p, "weak") {
			t.Errorf("%s does not list the visible unit hn-a", p)
		}
	}
	xl, err := excelize.OpenReader(bytes.NewReader([]byte(e.get(c, "/province/01/units.xlsx"+query))))
	if err != nil {
		t.Fatal(err)
	}
	urows, _ := xl.GetRows(xl.GetSheetName(0))
	if leak := contains(fmt.Sprint(urows), "hn-tiny", "hn-b"); leak != "" {
		t.Errorf("units.xlsx names %q", leak)
	}
}

// TestStatesKeptApart: "no data", "suppressed" and "insufficient" read
// differently on the pages and in the exports.
func TestStatesKeptApart(t *testing.T) {
	e := newEnv(t)
	c, _ := e.client("admin")
	page := e.get(c, "/national"+query)
	for _, want := range []string{`data-code="79" class="s-insufficient"`, `data-code="96" class="s-no_data"`, "Không có dữ liệu", "Mẫu chưa đủ"} {
		if !strings.Contains(page, want) {
			t.Errorf("national page lacks %q", want)
		}
	}
	if strings.Contains(page, `data-code="96" class="s-suppressed"`) {
		t.Error("a province without data is shown as suppressed")
	}
	prov := e.get(c, "/province/01"+query)
	if !strings.Contains(prov, `id="units-suppressed">2 `) {
		t.Error("province 01 does not count its two suppressed units")
	}
	tree := e.get(c, "/unit/hn-tiny/tree.csv"+query+"&lang=en")
	if !strings.Contains(tree, "suppressed") || strings.Contains(tree, "no_data") {
		t.Errorf("a suppressed unit's tree is not marked suppressed:\n%.600s", tree)
	}
}

// near compares a spreadsheet number with the API's: XLSX keeps 15
// significant digits, as Excel does.
func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func get(r []string, i int) string {
	if i < len(r) {
		return r[i]
	}
	return ""
}

// TestSatisfactionBesideExpectation: where the questionnaire has both, a
// province page shows each group's satisfaction beside the expectations of
// the same group, with the API's figures.
func TestSatisfactionBesideExpectation(t *testing.T) {
	e := newEnv(t)
	c, _ := e.client("admin")
	idx, err := e.index.GetIndex(e.as("admin"), &sipasv1.GetIndexRequest{QuestionnaireId: "sipas-2023", Period: period(),
		Boundaries: sipasv1.Boundaries_BOUNDARIES_CURRENT, Scope: &sipasv1.Scope{Scope: &sipasv1.Scope_ProvinceCode{ProvinceCode: "48"}}})
	if err != nil {
		t.Fatal(err)
	}
	page := e.get(c, "/province/48"+query)
	i := strings.Index(page, `id="exp-h"`)
	if i < 0 {
		t.Fatal("no satisfaction-beside-expectation section on province 48")
	}
	section := page[i:]
	checked := 0
	for _, root := range idx.Report.Roots {
		if root.Code != "MD" {
			continue
		}
		for _, g := range root.Children {
			for _, it := range g.Children {
				if it.Value == nil {
					t.Fatalf("fixture: expectation item %s without a value", it.Code)
				}
				want := fmt.Sprintf("%s: <span class=\"num\">%.2f</span>", it.LabelVi, *it.Value)
				if !strings.Contains(section, want) {
					t.Errorf("expectation %s: %q not shown", it.Code, want)
				}
				checked++
			}
		}
	}
	if checked < 5 {
		t.Fatalf("checked %d expectation items", checked)
	}
}

var exportHref = regexp.MustCompile(`<a href="([^"]+\.(xlsx|csv|json|svg)\?[^"]*)" download>`)

// TestEveryExportLinkWorks follows every download link of the three views:
// each answers 200 with its format (an XLSX opens, a CSV has its BOM, a
// JSON object its metadata, an SVG is an SVG).
func TestEveryExportLinkWorks(t *testing.T) {
	e := newEnv(t)
	c, _ := e.client("admin")
	seen := map[string]bool{}
	for _, page := range []string{"/national", "/province/48", "/unit/dn-a"} {
		body := e.get(c, page+query)
		links := exportHref.FindAllStringSubmatch(body, -1)
		if len(links) < 4 {
			t.Fatalf("%s: %d download links", page, len(links))
		}
		for _, m := range links {
			href := html.UnescapeString(m[1])
			code, got := e.status(c, href)
			seen[strings.SplitN(href, "?", 2)[0]] = true
			if code != http.StatusOK {
				t.Errorf("%s: %d", href, code)
				continue
			}
			ok := false
			switch m[2] {
			case "xlsx":
				_, err := excelize.OpenReader(strings.NewReader(got))
				ok = err == nil
			case "csv":
				ok = strings.HasPrefix(got, "\uFEFF")
			case "json":
				var doc struct {
					Metadata map[string]string `json:"metadata"`
				}
				ok = json.Unmarshal([]byte(got), &doc) == nil && doc.Metadata["questionnaire"] == "sipas-2023"
			case "svg":
				ok = strings.Contains(got, "<svg") && strings.Contains(got, "</svg>")
			}
			if !ok {
				t.Errorf("%s: not a valid %s: %.200q", href, m[2], got)
			}
		}
	}
	for _, want := range []string{"/province/48/elements.xlsx", "/province/48/expectation.csv", "/province/48/weak.json", "/unit/dn-a/series.svg"} {
		if !seen[want] {
			t.Errorf("no download link %s", want)
		}
	}
}

// TestRevocationEndsSessions: revoking a credential through the API ends
// the dashboard sessions opened with it, at once.
func TestRevocationEndsSessions(t *testing.T) {
	e := newEnv(t)
	c, _ := e.client("analystAll")
	if code, _ := e.status(c, "/national"+query); code != http.StatusOK {
		t.Fatalf("before revocation: %d", code)
	}
	if _, err := e.admin.RevokeCredential(e.as("admin"), &sipasv1.RevokeCredentialRequest{Name: "credentials/" + e.ids["analystAll"]}); err != nil {
		t.Fatal(err)
	}
	if code, _ := e.status(c, "/national"+query); code != http.StatusSeeOther {
		t.Fatalf("after revocation /national gives %d, want a redirect to sign in", code)
	}
}
