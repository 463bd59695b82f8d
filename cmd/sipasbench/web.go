package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/server"
	"github.com/sipas-vn/sipas/store"
	"github.com/sipas-vn/sipas/web"
)

// The dashboard figures: the server time of the national and of a province
// page, and the heavier page's weight, on a national-fleet-like data set
// (about 200,000 cells: 100 units in each of the 34 provinces, 17 months,
// 5 channels). The pages are served in-process by the real handler over
// the real store and engine, so the time is the server's alone.
const (
	figWebNational = "web_national_ms"
	figWebProvince = "web_province_ms"
	figWebPageKB   = "web_page_kb"

	webUnitsPerProvince = 100
	webResponses        = 400_000
	webPageCeilingMS    = 100 // issue: every page under 100 ms of server time
	webPageCeilingKB    = 500 // issue: a page under 500 KB
)

var webFigureNames = []string{figWebNational, figWebProvince, figWebPageKB}

type webResult struct {
	national, province, pageKB result
}

// webMonths are the months of the data set: July 2025 (the first month of
// the 34 provinces) to November 2026.
func webMonths() []int {
	var out []int
	for y, m := 2025, 7; y*100+m <= 202611; m++ {
		if m > 12 {
			y, m = y+1, 1
		}
		out = append(out, y*100+m)
	}
	return out
}

func (b *bench) runWeb() (*webResult, error) {
	if b.web != nil || b.webErr != nil {
		return b.web, b.webErr
	}
	b.webErr = b.timed("web dashboard", func() error {
		r, err := b.measureWeb()
		b.web = r
		return err
	})
	return b.web, b.webErr
}

func (b *bench) measureWeb() (*webResult, error) {
	g, err := newGen(b.cat, b.reg)
	if err != nil {
		return nil, err
	}
	n, perProv := webResponses, webUnitsPerProvince
	if b.quick {
		n, perProv = 5_000, 5
	}
	dir := filepath.Join(b.tmp, "web")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(dir, "sipas.db"), b.cat, store.Options{})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	var units []store.Unit
	for _, code := range g.codes2026 {
		for i := range perProv {
			units = append(units, store.Unit{ID: fmt.Sprintf("u%s-%03d", code, i), DisplayName: fmt.Sprintf("Bộ phận Một cửa %s số %d", code, i), ProvinceCode: code})
		}
	}
	for _, u := range units {
		if err := st.CreateUnit(ctx, u, store.AuditEvent{Actor: "system", Action: "unit.create"}); err != nil {
			return nil, err
		}
	}
	months := webMonths()
	rng := rand.New(rand.NewPCG(7, 11))
	validateNow := time.Date(2027, 1, 1, 0, 0, 0, 0, sipas.VietnamZone)
	start := time.Now()
	batch := make([]*sipas.Accepted, 0, indexInsertBatch)
	flush := func() error {
		// The store says an indeterminate write is safe to retry (the
		// response ids make it exactly-once); on a machine this busy a
		// checkpoint may time out and take the writer connection with it.
		var res []store.InsertResult
		var err error
		for attempt := 0; attempt < 5; attempt++ {
			if res, err = st.Insert(ctx, batch); err == nil {
				break
			}
			b.logf("  web: insert failed (attempt %d, retrying): %v", attempt+1, err)
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			return err
		}
		for _, r := range res {
			if r.Err != nil {
				return fmt.Errorf("insert item: %w", r.Err)
			}
		}
		batch = batch[:0]
		return nil
	}
	for range n {
		u := units[rng.IntN(len(units))]
		m := months[rng.IntN(len(months))]
		resp := &sipas.Response{ID: uuid.Must(uuid.NewV7()).String(), QuestionnaireID: questionnaireID, ProvinceCode: u.ProvinceCode,
			CollectedAt: dateIn(rng, m/100, m%100), Channel: sipas.Channels[rng.IntN(len(sipas.Channels))], UnitID: u.ID,
			Answers: g.dvAnswers(rng)}
		acc, err := sipas.Validate(b.cat, b.reg, resp, validateNow)
		if err != nil {
			return nil, fmt.Errorf("generated response invalid: %w", err)
		}
		if batch = append(batch, acc); len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if len(batch) > 0 {
		if err := flush(); err != nil {
			return nil, err
		}
	}
	cells := st.CellCount()
	b.logf("  web: loaded %d responses at %d units in %s, %d cells", n, len(units), time.Since(start).Round(100*time.Millisecond), cells)

	log := slog.New(slog.DiscardHandler)
	srv, err := server.New(server.Config{Catalog: b.cat, Registry: b.reg, Store: st, Logger: log,
		Engine: &sipas.Engine{Catalog: b.cat, Registry: b.reg, Source: st, Thresholds: sipas.Thresholds{MinSample: 30, Disclosure: 10}}})
	if err != nil {
		return nil, err
	}
	defer srv.Shutdown(time.Second)
	h, err := web.New(web.Config{Reader: srv.Reader(), Catalog: b.cat, Registry: b.reg, Logger: log})
	if err != nil {
		return nil, err
	}
	tok, hash := server.NewToken()
	if _, err := st.CreateCredential(ctx, store.Credential{TokenHash: hash, Credential: sipas.Credential{Role: sipas.RoleAdmin}}, store.AuditEvent{Actor: "system", Action: "credential.create"}); err != nil {
		return nil, err
	}
	cookies, err := webSignIn(h, tok)
	if err != nil {
		return nil, err
	}
	page := func(path string) (time.Duration, int, error) {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		for _, c := range cookies {
			req.AddCookie(c)
		}
		rec := httptest.NewRecorder()
		t0 := time.Now()
		h.ServeHTTP(rec, req)
		d := time.Since(t0)
		if rec.Code != http.StatusOK {
			return 0, 0, fmt.Errorf("GET %s: %d %.300s", path, rec.Code, rec.Body.String())
		}
		return d, rec.Body.Len(), nil
	}
	// The largest province's page: the most units to rank.
	nat := "/national?q=sipas-2023&period=2026&b=current&ch=all"
	prov := "/province/" + g.codes2026[0] + "?q=sipas-2023&period=2026&b=current&ch=all"
	calls := 15
	if b.quick {
		calls = 3
	}
	var natMS, provMS []float64
	maxBytes := 0
	for i := range calls + 2 { // two warm-up rounds
		for _, p := range []string{nat, prov} {
			d, size, err := page(p)
			if err != nil {
				return nil, err
			}
			maxBytes = max(maxBytes, size)
			if i < 2 {
				continue
			}
			ms := float64(d.Microseconds()) / 1000
			if p == nat {
				natMS = append(natMS, ms)
			} else {
				provMS = append(provMS, ms)
			}
		}
	}
	what := fmt.Sprintf("%d cells, %d units, %d responses", cells, len(units), n)
	return &webResult{
		national: result{name: figWebNational, value: median(natMS), unit: "ms", ceiling: webPageCeilingMS,
			explain: fmt.Sprintf("server time (p50 of %d) of the national page (ranking of 34 provinces against the previous period, charts, tile map) on %s; ceiling: the issue's 100 ms", calls, what)},
		province: result{name: figWebProvince, value: median(provMS), unit: "ms", ceiling: webPageCeilingMS,
			explain: fmt.Sprintf("server time (p50 of %d) of a province page (tree, %d units ranked, 5-year series, weak points) on %s; ceiling: 100 ms", calls, perProv, what)},
		pageKB: result{name: figWebPageKB, value: float64(maxBytes) / 1024, unit: "KiB", ceiling: webPageCeilingKB,
			explain: "weight of the heavier of the two pages (HTML with inline SVG; the one stylesheet is ~6 KiB more); ceiling: the issue's 500 KB"},
	}, nil
}

var benchCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// webSignIn signs in through the form and returns the session cookies.
func webSignIn(h http.Handler, token string) ([]*http.Cookie, error) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/signin", nil))
	m := benchCSRF.FindStringSubmatch(rec.Body.String())
	if m == nil {
		return nil, fmt.Errorf("no CSRF field in the sign-in form")
	}
	req := httptest.NewRequest(http.MethodPost, "/signin", strings.NewReader(url.Values{"csrf": {m[1]}, "token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range rec.Result().Cookies() {
		req.AddCookie(c)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusSeeOther {
		body, _ := io.ReadAll(rec.Body)
		return nil, fmt.Errorf("sign-in: %d %.200s", rec.Code, body)
	}
	var out []*http.Cookie
	for _, c := range rec.Result().Cookies() {
		if c.Name == "sipas_session" {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("sign-in set no session cookie")
	}
	return out, nil
}
