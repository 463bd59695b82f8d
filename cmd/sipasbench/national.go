package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/client"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
	"github.com/sipas-vn/sipas/store"
)

// The national-fleet scenario of issue 13 (docs/benchmarks.md): 3,400
// one-stop units spread over the 34 current provinces (100 each), each
// answering 15 kiosk responses a month for 60 months, before 2025-07 under
// an old province that has since merged into its current one.

// nationalScale is the size of the scenario.
type nationalScale struct {
	perProvince int // units per current province
	months      int // months of history, ending with nationalLastMonth
	perMonth    int // responses per unit and month
	ingest      int // rows of each ingestion run
}

func (b *bench) nationalScale() nationalScale {
	if b.quick {
		return nationalScale{perProvince: 10, months: 24, perMonth: 4, ingest: 4_000}
	}
	return nationalScale{perProvince: 100, months: 60, perMonth: 15, ingest: 200_000}
}

// nationalLastMonth is the last month of the history; the ingestion runs add
// the two months after it.
var nationalLastMonth = sipas.Period{Year: 2026, Month: 8}

// nationalUnit is one unit of the fleet.
type nationalUnit struct {
	id      string
	oldCode string // province code as collected before 2025-07-01
	newCode string // its current province's code
}

// nationalGen makes the fleet's responses: the ~20 service-block items and
// two assessment items, as a kiosk asks.
type nationalGen struct {
	q     *sipas.Questionnaire
	items []*sipas.Item
	units []nationalUnit
	cur   []string // the 34 current province codes
}

func newNationalGen(b *bench, sc nationalScale) (*nationalGen, error) {
	g0, err := newGen(b.cat, b.reg)
	if err != nil {
		return nil, err
	}
	ng := &nationalGen{q: g0.q, items: append([]*sipas.Item(nil), g0.dvItems...), cur: g0.codes2026}
	for _, it := range g0.q.Items {
		if len(ng.items) >= 22 {
			break
		}
		if it.Kind == sipas.KindAssessment && it.Scale != nil && len(it.Scale.Codes) > 0 {
			ng.items = append(ng.items, it)
		}
	}
	// The provinces of 2024 by the current province they merged into.
	preds := map[string][]string{}
	for _, p := range b.reg.ValidOn(time.Date(2024, 6, 15, 12, 0, 0, 0, sipas.VietnamZone)) {
		if c := b.reg.Current(p); c != nil {
			preds[c.Code] = append(preds[c.Code], p.Code)
		}
	}
	for i := range sc.perProvince {
		for _, code := range ng.cur {
			old := preds[code]
			if len(old) == 0 {
				return nil, fmt.Errorf("province %s has no province of 2024", code)
			}
			ng.units = append(ng.units, nationalUnit{id: fmt.Sprintf("DV-%s-%03d", code, i), oldCode: old[i%len(old)], newCode: code})
		}
	}
	return ng, nil
}

// monthAt returns the i-th month of the history (0 is the first).
func (sc nationalScale) monthAt(i int) sipas.Period {
	p := nationalLastMonth
	for range sc.months - 1 - i {
		p = p.Previous()
	}
	return p
}

func (ng *nationalGen) response(rng *rand.Rand, u nationalUnit, m sipas.Period) *sipas.Response {
	code := u.newCode
	if m.Year < 2025 || (m.Year == 2025 && m.Month < 7) {
		code = u.oldCode
	}
	a := make(map[string]int, len(ng.items))
	for _, it := range ng.items {
		a[it.Code] = answer(rng, it)
	}
	return &sipas.Response{
		ID:              uuid.Must(uuid.NewV7()).String(),
		QuestionnaireID: questionnaireID,
		ProvinceCode:    code,
		CollectedAt:     dateIn(rng, m.Year, m.Month),
		Channel:         sipas.ChannelKiosk,
		UnitID:          u.id,
		Answers:         a,
	}
}

// nationalResult holds the seven figures.
type nationalResult struct {
	rss, ingest, start, rank, unitRank, series, bytes result
}

// runNational builds the 5-year store in-process, then measures start-up,
// ingestion (against a fresh store) and memory on sipasd children, and the
// read latencies in-process on the same database.
func (b *bench) runNational() (*nationalResult, error) {
	if b.national != nil {
		return b.national, nil
	}
	sc := b.nationalScale()
	ng, err := newNationalGen(b, sc)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(b.tmp, "national")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	dbPath := filepath.Join(dir, "sipas.db")
	var built int64
	var buildDur time.Duration
	if err := b.timed("national store (in-process)", func() (err error) {
		// SIPAS_BENCH_NATIONAL_CACHE (development aid): a directory where
		// the built store is kept and from where later runs copy it.
		keep := os.Getenv("SIPAS_BENCH_NATIONAL_CACHE")
		kept := filepath.Join(keep, fmt.Sprintf("national-%d-%d-%d.db", sc.perProvince, sc.months, sc.perMonth))
		if keep != "" {
			if err := copyFile(kept, dbPath); err == nil {
				b.logf("  copied the national store from %s", kept)
				built, err = storeCount(b, dbPath)
				return err
			}
		}
		start := time.Now()
		built, err = b.buildNational(dbPath, ng, sc)
		buildDur = time.Since(start)
		if err == nil && keep != "" {
			err = copyFile(dbPath, kept)
		}
		return err
	}); err != nil {
		return nil, err
	}
	st0, err := os.Stat(dbPath)
	if err != nil {
		return nil, err
	}
	cells, err := nationalCells(b, dbPath)
	if err != nil {
		return nil, err
	}

	// Two ingestion sets of the months after the history, each sent to a
	// fresh sipasd and to the national one, alternating.
	sets := make([][]client.BatchItem, 3)
	for i := range sets {
		sets[i] = ng.ingestItems(b, sc, uint64(i))
	}
	var fresh, national []float64
	var nat *child
	var startS float64
	var rssHWM, rssMax float64
	var cacheNote string
	err = b.timed("national ingestion, start-up and memory (sipasd)", func() error {
		for i, items := range sets {
			f, err := b.uploadTo(nil, items, fmt.Sprintf("fresh-%d", i))
			if err != nil {
				return err
			}
			fresh = append(fresh, f)
			if nat == nil {
				if nat, err = b.startServerIn(dir, 0, b.profileFlags()...); err != nil {
					return err
				}
				startS = nat.ready.Seconds()
			}
			n, err := b.uploadTo(nat, items, "")
			if err != nil {
				return err
			}
			national = append(national, n)
		}
		// Reads through the API fill the cache to its budget.
		if err := readsThroughAPI(nat, ng, sc); err != nil {
			return err
		}
		var err error
		if rssHWM, rssMax, _, err = nat.memory(); err != nil {
			return err
		}
		cacheNote = nat.cacheStats()
		return nat.stop()
	})
	if nat != nil {
		defer nat.kill()
	}
	if err != nil {
		return nil, err
	}
	st1, err := os.Stat(dbPath)
	if err != nil {
		return nil, err
	}
	total, err := storeCount(b, dbPath)
	if err != nil {
		return nil, err
	}

	// A second start, after the uploads and a graceful stop; then a start
	// after kill -9 with the longest tail to replay: just under one
	// checkpoint's worth of responses (100,000) uploaded since the last.
	var restartS, crashS float64
	tail := min(99_000, sc.ingest/2)
	if err := b.timed("national restarts (sipasd)", func() error {
		c, err := b.startServerIn(dir, 0)
		if err != nil {
			return err
		}
		restartS = c.ready.Seconds()
		more := ng.ingestItems(b, sc, uint64(len(sets)))[:tail]
		if _, err := b.uploadTo(c, more, ""); err != nil {
			c.kill()
			return err
		}
		c.kill() // SIGKILL: the responses are stored, their cells only in the deltas
		if c, err = b.startServerIn(dir, 0); err != nil {
			return err
		}
		crashS = c.ready.Seconds()
		return c.stop()
	}); err != nil {
		return nil, err
	}

	var lat nationalLatencies
	if err := b.timed("national reads (in-process)", func() (err error) {
		lat, err = b.nationalReads(dbPath, ng, sc)
		return err
	}); err != nil {
		return nil, err
	}

	ratio := median(slices.Clone(national)) / median(slices.Clone(fresh))
	scen := fmt.Sprintf("%d units (%d per current province), %d months to %s, %d kiosk responses (%d items) per unit-month: %d responses, %d cells stored; built in-process in %s (%.0f/s)",
		len(ng.units), sc.perProvince, sc.months, nationalLastMonth, sc.perMonth, len(ng.items), built, cells, buildDur.Round(time.Second), float64(built)/buildDur.Seconds())
	r := &nationalResult{
		rss: result{name: figNatRSS, value: rssHWM, unit: "MiB", ceiling: 256,
			explain: fmt.Sprintf("VmHWM of sipasd (default --cell-cache-mib 32) over the national store after start-up, three ingestion runs and index reads through the API (rankings of provinces for each year, units of every province for 2025 and 2026, series of 60 months); largest sampled VmRSS %.1f MiB; %s. %s.", rssMax, cacheNote, scen)},
		ingest: result{name: figNatIngest, value: median(slices.Clone(national)), unit: "responses/s", ceiling: median(slices.Clone(fresh)),
			explain: fmt.Sprintf("rows/s of (*client.Client).Upload of %d kiosk rows of the two months after the history into the national sipasd, against the same rows into a fresh sipasd, alternating (fresh, national) with %d row sets: fresh %s, national %s; ratio of the medians %.3f, goal >= 0.8. %s.", sc.ingest, len(sets), fmtRates(fresh), fmtRates(national), ratio, scen)},
		start: result{name: figNatStart, value: startS, unit: "s", ceiling: 2,
			explain: fmt.Sprintf("seconds from exec of sipasd on the national store to its serving line (migrations, replay of the tail since the last checkpoint, first admin); a second start after the uploads and a graceful stop: %.3f s; a start after kill -9 with %d responses since the last checkpoint to replay: %.3f s. %s.", restartS, tail, crashS, scen)},
		rank: result{name: figNatRank, value: lat.rank, unit: "ms", ceiling: 10,
			explain: fmt.Sprintf("p50 of Engine.RankProvinces(sipas-2023, year 2025, current boundaries; %d rows) on the national store in-process (server time), cache warm; with the cache emptied before each call p50 %.2f ms. %s.", lat.rankRows, lat.rankCold, scen)},
		unitRank: result{name: figNatUnitRank, value: lat.unitRank, unit: "ms", ceiling: 50,
			explain: fmt.Sprintf("p50 of Engine.RankUnits(province %s, year 2025, current boundaries; %d units), cache warm; emptied before each call %.2f ms. %s.", ng.cur[0], lat.unitRows, lat.unitRankCold, scen)},
		series: result{name: figNatSeries, value: lat.series, unit: "ms", ceiling: 50,
			explain: fmt.Sprintf("p50 of Engine.Series(province %s, the %d months of the history, current boundaries), cache warm; emptied before each call %.2f ms. %s.", ng.cur[0], sc.months, lat.seriesCold, scen)},
		bytes: result{name: figNatBytes, value: float64(st1.Size()) / float64(total), unit: "bytes/response", ceiling: 300,
			explain: fmt.Sprintf("size of sipas.db after the graceful stop divided by its %d responses, aggregates included (%.0f B/response after the in-process build alone). %s.", total, float64(st0.Size())/float64(built), scen)},
	}
	b.national = r
	return r, nil
}

// profile takes a 2 s CPU profile of the child in the background when
// SIPAS_BENCH_PROFILE_DIR is set (the child runs with --pprof).
func (c *child) profile(name string) {
	dir := os.Getenv("SIPAS_BENCH_PROFILE_DIR")
	if dir == "" || c.httpAddr == "" {
		return
	}
	go func() {
		resp, err := http.Get("http://" + c.httpAddr + "/debug/pprof/profile?seconds=2")
		if err != nil {
			return
		}
		defer resp.Body.Close()
		f, err := os.CreateTemp(dir, name+"-*.pprof")
		if err == nil {
			io.Copy(f, resp.Body)
			f.Close()
		}
	}()
}

// profileFlags turns on sipasd's profiling endpoint when
// SIPAS_BENCH_PROFILE_DIR (a development aid) asks for profiles of the
// uploads.
func (b *bench) profileFlags() []string {
	if os.Getenv("SIPAS_BENCH_PROFILE_DIR") != "" {
		return []string{"--pprof"}
	}
	return nil
}

func sum(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s
}

// buildNational loads the history into a new store in month order from a
// few goroutines, and closes it (a graceful stop: every cell written).
func (b *bench) buildNational(path string, ng *nationalGen, sc nationalScale) (int64, error) {
	ctx := context.Background()
	st, err := store.Open(ctx, path, b.cat, store.Options{})
	if err != nil {
		return 0, err
	}
	defer st.Close()
	// Rows must name registered units of their province (lineage).
	for _, u := range ng.units {
		if err := st.CreateUnit(ctx, store.Unit{ID: u.id, DisplayName: "Bộ phận Một cửa " + u.id, ProvinceCode: u.newCode}, store.AuditEvent{Actor: "system", Action: "unit.create"}); err != nil {
			return 0, fmt.Errorf("register unit %s: %w", u.id, err)
		}
	}
	validateNow := time.Date(2027, 1, 1, 0, 0, 0, 0, sipas.VietnamZone)
	pairs := sc.months * len(ng.units) // (month, unit), month-major
	const perClaim = 200
	var claimed, loaded atomic.Int64
	workers := runtime.NumCPU() + 1
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	start, lastLog := time.Now(), time.Now()
	var logMu sync.Mutex
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(77, uint64(w)))
			batch := make([]*sipas.Accepted, 0, perClaim*sc.perMonth)
			for {
				k := int(claimed.Add(perClaim)) - perClaim
				if k >= pairs {
					return
				}
				batch = batch[:0]
				for p := k; p < min(k+perClaim, pairs); p++ {
					m, u := sc.monthAt(p/len(ng.units)), ng.units[p%len(ng.units)]
					for range sc.perMonth {
						acc, err := sipas.Validate(b.cat, b.reg, ng.response(rng, u, m), validateNow)
						if err != nil {
							errc <- fmt.Errorf("generated response invalid: %w", err)
							return
						}
						batch = append(batch, acc)
					}
				}
				res, err := st.Insert(ctx, batch)
				if err != nil {
					errc <- err
					return
				}
				for _, r := range res {
					if r.Err != nil || r.Duplicate {
						errc <- fmt.Errorf("insert item: duplicate=%v err=%v", r.Duplicate, r.Err)
						return
					}
				}
				done := loaded.Add(int64(len(batch)))
				logMu.Lock()
				if time.Since(lastLog) > 30*time.Second {
					lastLog = time.Now()
					b.logf("  loaded %d in %s", done, time.Since(start).Round(time.Second))
				}
				logMu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return 0, err
	}
	n, err := st.CountResponses(ctx)
	if err != nil {
		return 0, err
	}
	return n, st.Close()
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func storeCount(b *bench, path string) (int64, error) {
	st, err := store.Open(context.Background(), path, b.cat, store.Options{})
	if err != nil {
		return 0, err
	}
	defer st.Close()
	return st.CountResponses(context.Background())
}

// nationalCells counts the stored cells.
func nationalCells(b *bench, path string) (int, error) {
	st, err := store.Open(context.Background(), path, b.cat, store.Options{})
	if err != nil {
		return 0, err
	}
	defer st.Close()
	return st.CellCount(), nil
}

// ingestItems are sc.ingest kiosk rows of the two months after the history,
// in the packed answer form, spread over every unit.
func (ng *nationalGen) ingestItems(b *bench, sc nationalScale, seed uint64) []client.BatchItem {
	rng := rand.New(rand.NewPCG(99, seed))
	m1 := nationalLastMonth.Next()
	months := []sipas.Period{m1, m1.Next()}
	rs := make([]*sipas.Response, sc.ingest)
	for i := range rs {
		rs[i] = ng.response(rng, ng.units[i%len(ng.units)], months[i*2/len(rs)])
	}
	items := make([]client.BatchItem, len(rs))
	for i, r := range packedResponses(ng.q, rs) {
		items[i] = client.BatchItem{Line: int64(i + 2), Response: r}
	}
	return items
}

// uploadTo uploads items to c (nil: a fresh sipasd, stopped afterwards)
// with a surveyor credential and returns rows per second.
func (b *bench) uploadTo(c *child, items []client.BatchItem, name string) (float64, error) {
	if c == nil {
		dir, err := os.MkdirTemp(b.tmp, "national-"+name+"-")
		if err != nil {
			return 0, err
		}
		f, err := b.startServerIn(dir, 0, b.profileFlags()...)
		if err != nil {
			return 0, err
		}
		defer f.kill()
		defer f.stop()
		c = f
	}
	admin, err := c.adminClient()
	if err != nil {
		return 0, err
	}
	if name != "" { // a fresh server: its units are not registered yet
		if err := registerUnitsOf(admin, items); err != nil {
			admin.Close()
			return 0, err
		}
	}
	tok, err := newSurveyor(admin, "bench national ingestion")
	admin.Close()
	if err != nil {
		return 0, err
	}
	cl, err := c.dial(tok)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	c.profile("upload-" + name)
	start := time.Now()
	s, err := cl.Upload(context.Background(), client.UploadSlice(items), client.UploadOptions{MaxStreamItems: len(items) + 1})
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("upload: %w", err)
	}
	if s.Accepted != int64(len(items)) {
		first := ""
		if len(s.Rejects) > 0 {
			first = fmt.Sprintf("; first rejection: line %d %s %s", s.Rejects[0].Line, s.Rejects[0].Reason, s.Rejects[0].Message)
		}
		return 0, fmt.Errorf("upload: %d accepted of %d%s", s.Accepted, len(items), first)
	}
	return float64(len(items)) / d.Seconds(), nil
}

// readsThroughAPI asks the national sipasd for what analysts read: the
// ranking of provinces for each year, the units of every province for 2025
// and 2026, and a few 60-month series.
func readsThroughAPI(c *child, ng *nationalGen, sc nationalScale) error {
	cl, err := c.adminClient()
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	first, last := sc.monthAt(0), nationalLastMonth
	for y := first.Year; y <= last.Year; y++ {
		if _, err := cl.Index.RankProvinces(ctx, &sipasv1.RankProvincesRequest{QuestionnaireId: questionnaireID,
			Period: &sipasv1.Period{Year: int32(y)}, Boundaries: sipasv1.Boundaries_BOUNDARIES_CURRENT}); err != nil {
			return fmt.Errorf("RankProvinces %d: %w", y, err)
		}
	}
	for _, y := range []int{2025, 2026} {
		for _, code := range ng.cur {
			if _, err := cl.Index.RankUnits(ctx, &sipasv1.RankUnitsRequest{QuestionnaireId: questionnaireID, ProvinceCode: code,
				Period: &sipasv1.Period{Year: int32(y)}}); err != nil {
				return fmt.Errorf("RankUnits %s %d: %w", code, y, err)
			}
		}
	}
	for _, code := range ng.cur[:5] {
		if _, err := cl.Index.GetSeries(ctx, &sipasv1.GetSeriesRequest{QuestionnaireId: questionnaireID,
			Scope: &sipasv1.Scope{Scope: &sipasv1.Scope_ProvinceCode{ProvinceCode: code}}, Boundaries: sipasv1.Boundaries_BOUNDARIES_CURRENT,
			From: &sipasv1.Period{Year: int32(first.Year), Month: int32(first.Month)},
			To:   &sipasv1.Period{Year: int32(last.Year), Month: int32(last.Month)}}); err != nil {
			return fmt.Errorf("GetSeries %s: %w", code, err)
		}
	}
	return nil
}

// cacheStats reads the cell cache gauges from the child's /metrics.
func (c *child) cacheStats() string {
	v := c.metricValues("sipas_cell_cache_")
	if len(v) == 0 {
		return "no cell cache metrics"
	}
	return fmt.Sprintf("cell cache %.1f MiB in %.0f blocks, %.0f hits, %.0f misses, %.0f evictions",
		v["sipas_cell_cache_bytes"]/(1<<20), v["sipas_cell_cache_blocks"], v["sipas_cell_cache_hits_total"],
		v["sipas_cell_cache_misses_total"], v["sipas_cell_cache_evictions_total"])
}

type nationalLatencies struct {
	rank, unitRank, series             float64
	rankCold, unitRankCold, seriesCold float64
	rankRows, unitRows                 int
}

// nationalReads times the three queries in-process on the national store
// opened as sipasd opens it: p50 with a warm cache, and p50 with the cache
// emptied before each call.
func (b *bench) nationalReads(path string, ng *nationalGen, sc nationalScale) (nationalLatencies, error) {
	var lat nationalLatencies
	st, err := store.Open(context.Background(), path, b.cat, store.Options{CellCacheBytes: 32 << 20})
	if err != nil {
		return lat, err
	}
	defer st.Close()
	e := &sipas.Engine{Catalog: b.cat, Registry: b.reg, Source: st, Thresholds: sipas.Thresholds{MinSample: 30, Disclosure: 10}}
	year := sipas.Query{QuestionnaireID: questionnaireID, Period: sipas.Period{Year: 2025}, Boundaries: sipas.BoundariesCurrent}
	prov := year
	prov.Scope = sipas.Scope{ProvinceCode: ng.cur[0]}
	first := sc.monthAt(0)
	rank := func() error {
		r, err := e.RankProvinces(year)
		if err == nil {
			lat.rankRows = len(r.Rows)
		}
		return err
	}
	unitRank := func() error {
		r, err := e.RankUnits(prov)
		if err == nil {
			lat.unitRows = len(r.Rows)
		}
		return err
	}
	series := func() error {
		s, err := e.Series(prov, first, nationalLastMonth)
		if err == nil && len(s.Points) != sc.months {
			return fmt.Errorf("series has %d points, want %d", len(s.Points), sc.months)
		}
		return err
	}
	calls := 50
	if b.quick {
		calls = 10
	}
	p50 := func(fn func() error, cold bool) (float64, error) {
		var ds []float64
		for i := range calls + 3 {
			if cold {
				st.DropCellCache()
			}
			t := time.Now()
			if err := fn(); err != nil {
				return 0, err
			}
			if i >= 3 {
				ds = append(ds, float64(time.Since(t).Nanoseconds())/1e6)
			}
		}
		sort.Float64s(ds)
		return ds[len(ds)/2], nil
	}
	for _, m := range []struct {
		fn         func() error
		warm, cold *float64
	}{{rank, &lat.rank, &lat.rankCold}, {unitRank, &lat.unitRank, &lat.unitRankCold}, {series, &lat.series, &lat.seriesCold}} {
		if *m.cold, err = p50(m.fn, true); err != nil {
			return lat, err
		}
		if *m.warm, err = p50(m.fn, false); err != nil {
			return lat, err
		}
	}
	return lat, nil
}

// registerUnitsOf registers, through the admin API, every unit the items
// name, in the province the items give it (the rows are after the 2025
// merger, so that is the unit's current province).
func registerUnitsOf(admin *client.Client, items []client.BatchItem) error {
	seen := map[string]bool{}
	for _, it := range items {
		r := it.Response
		if r.UnitID == "" || seen[r.UnitID] {
			continue
		}
		seen[r.UnitID] = true
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := admin.Admin.CreateUnit(ctx, &sipasv1.CreateUnitRequest{Unit: &sipasv1.Unit{
			UnitId: r.UnitID, DisplayName: "Bộ phận Một cửa " + r.UnitID, ProvinceCode: r.ProvinceCode}})
		cancel()
		if err != nil {
			return fmt.Errorf("register unit %s: %w", r.UnitID, err)
		}
	}
	return nil
}
