package storetest

import (
	"math/rand/v2"
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

// Catalog returns the built-in questionnaires and the province registry.
func Catalog(t testing.TB) (*sipas.Catalog, *sipas.Registry) {
	t.Helper()
	loadOnce.Do(func() { testCat, testReg, loadErr = questionnaires.Load("") })
	if loadErr != nil {
		t.Fatal(loadErr)
	}
	return testCat, testReg
}

// Now is the validation clock of generated responses.
var Now = time.Date(2026, 6, 20, 12, 0, 0, 0, sipas.VietnamZone)

// Gen makes valid, varied responses: several questionnaires, provinces
// (including merged-away codes), months, channels and units.
type Gen struct {
	t   testing.TB
	cat *sipas.Catalog
	reg *sipas.Registry
	mu  sync.Mutex
	rnd *rand.Rand
}

// NewGen returns a generator seeded with seed.
func NewGen(t testing.TB, seed uint64) *Gen {
	cat, reg := Catalog(t)
	return &Gen{t: t, cat: cat, reg: reg, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Response returns a new random response (not yet validated).
func (g *Gen) Response() *sipas.Response {
	g.mu.Lock()
	defer g.mu.Unlock()
	qs := g.cat.List()
	q := qs[g.rnd.IntN(len(qs))]
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
		codes := []int{sipas.CodeDontKnow, sipas.CodeNotApplicable}
		for _, c := range it.Scale.Codes {
			codes = append(codes, c.Code, c.Code) // valid codes twice as likely as 8/9
		}
		r.Answers[it.Code] = codes[g.rnd.IntN(len(codes))]
	}
	if len(r.Answers) == 0 {
		r.Answers[q.Items[0].Code] = sipas.CodeDontKnow
	}
	return r
}

// Accept validates r.
func (g *Gen) Accept(r *sipas.Response) *sipas.Accepted {
	g.t.Helper()
	acc, err := sipas.Validate(g.cat, g.reg, r, Now)
	if err != nil {
		g.t.Fatalf("generated response does not validate: %v", err)
	}
	return acc
}

// Accepted returns a new random validated response.
func (g *Gen) Accepted() *sipas.Accepted { return g.Accept(g.Response()) }

// Modified returns acc's response with one answer changed, validated: same
// id, different hash.
func (g *Gen) Modified(acc *sipas.Accepted) *sipas.Accepted {
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
	m := g.Accept(&r)
	if m.Hash == acc.Hash {
		g.t.Fatal("modified response has the same hash")
	}
	return m
}
