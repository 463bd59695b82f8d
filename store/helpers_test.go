package store

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/questionnaires"
)

var (
	loadOnce sync.Once
	testCat  *sipas.Catalog
	testReg  *sipas.Registry
	loadErr  error
)

func catalog(t testing.TB) (*sipas.Catalog, *sipas.Registry) {
	t.Helper()
	loadOnce.Do(func() { testCat, testReg, loadErr = questionnaires.Load("") })
	if loadErr != nil {
		t.Fatal(loadErr)
	}
	return testCat, testReg
}

// testNow is the validation clock of generated responses.
var testNow = time.Date(2026, 6, 20, 12, 0, 0, 0, sipas.VietnamZone)

// gen makes valid, varied responses: several questionnaires, provinces
// (including merged-away codes), months, channels and units.
type gen struct {
	t   testing.TB
	cat *sipas.Catalog
	reg *sipas.Registry
	rnd *rand.Rand
}

func newGen(t testing.TB, seed uint64) *gen {
	cat, reg := catalog(t)
	return &gen{t: t, cat: cat, reg: reg, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// response returns a new random response (not yet validated).
func (g *gen) response() *sipas.Response {
	qs := g.cat.List()
	q := qs[g.rnd.IntN(len(qs))]
	// A few months across the 2025-07-01 merger.
	at := time.Date(2025, time.Month(3+g.rnd.IntN(8)), 1+g.rnd.IntN(28), 8+g.rnd.IntN(9), g.rnd.IntN(60), 0, g.rnd.IntN(1e9), sipas.VietnamZone)
	provs := g.reg.ValidOn(at)
	p := provs[g.rnd.IntN(min(6, len(provs)))]
	r := &sipas.Response{
		ID:              uuid.Must(uuid.NewV7()).String(),
		QuestionnaireID: q.ID,
		ProvinceCode:    p.Code,
		CollectedAt:     at,
		Channel:         sipas.Channels[g.rnd.IntN(3)],
		Answers:         map[string]int{},
	}
	if g.rnd.IntN(3) > 0 {
		r.UnitID = []string{"u-1", "u-2", "u-3"}[g.rnd.IntN(3)]
	}
	if g.rnd.IntN(2) == 0 {
		did := g.rnd.IntN(2) == 0
		r.Demographics = sipas.Demographics{Gender: sipas.Gender(1 + g.rnd.IntN(2)), BirthYear: 1950 + g.rnd.IntN(50),
			Education: sipas.Education(g.rnd.IntN(8)), DidProcedure: &did}
	}
	for _, it := range q.Items {
		if g.rnd.IntN(10) == 0 {
			continue
		}
		codes := append([]int{sipas.CodeDontKnow, sipas.CodeNotApplicable}, scaleCodes(it)...)
		r.Answers[it.Code] = codes[g.rnd.IntN(len(codes))]
	}
	if len(r.Answers) == 0 {
		r.Answers[q.Items[0].Code] = sipas.CodeDontKnow
	}
	return r
}

func scaleCodes(it *sipas.Item) []int {
	var cs []int
	for _, c := range it.Scale.Codes {
		cs = append(cs, c.Code, c.Code) // valid codes twice as likely as 8/9
	}
	return cs
}

// accept validates r.
func (g *gen) accept(r *sipas.Response) *sipas.Accepted {
	g.t.Helper()
	acc, err := sipas.Validate(g.cat, g.reg, r, testNow)
	if err != nil {
		g.t.Fatalf("generated response does not validate: %v", err)
	}
	return acc
}

func (g *gen) accepted() *sipas.Accepted { return g.accept(g.response()) }

// modified returns acc's response with one answer changed, validated: same
// id, different hash.
func (g *gen) modified(acc *sipas.Accepted) *sipas.Accepted {
	g.t.Helper()
	r := *acc.Response
	r.Answers = map[string]int{}
	for k, v := range acc.Response.Answers {
		r.Answers[k] = v
	}
	for k, v := range r.Answers {
		if v == sipas.CodeDontKnow {
			r.Answers[k] = sipas.CodeNotApplicable
		} else {
			r.Answers[k] = sipas.CodeDontKnow
		}
		break
	}
	m := g.accept(&r)
	if m.Hash == acc.Hash {
		g.t.Fatal("modified response has the same hash")
	}
	return m
}

func openTest(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	cat, _ := catalog(t)
	if path == "" {
		path = filepath.Join(t.TempDir(), "sipas.db")
	}
	s, err := Open(context.Background(), path, cat, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustInsert(t testing.TB, s *Store, items ...*sipas.Accepted) []InsertResult {
	t.Helper()
	res, err := s.Insert(context.Background(), items)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(items) {
		t.Fatalf("got %d results for %d items", len(res), len(items))
	}
	return res
}

func cellsEqual(t testing.TB, what string, a, b map[sipas.CellKey]*sipas.Tally) {
	t.Helper()
	if d := diffCells("a", a, "b", b); len(d) > 0 {
		t.Fatalf("%s: %d differences, e.g. %s", what, len(d), d[0])
	}
}
