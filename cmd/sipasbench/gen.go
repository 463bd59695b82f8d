package main

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"

	"github.com/sipas-vn/sipas"
)

// questionnaireID is the questionnaire every generated response uses.
const questionnaireID = "sipas-2023"

// gen makes synthetic but valid sipas-2023 responses.
type gen struct {
	q         *sipas.Questionnaire
	dvItems   []*sipas.Item // the service block (DV) satisfaction items: what a kiosk asks
	codes2024 []string      // the 63 provinces valid in 2024
	codes2026 []string      // the 34 provinces valid since the 2025 merger
}

func newGen(cat *sipas.Catalog, reg *sipas.Registry) (*gen, error) {
	q := cat.Get(questionnaireID)
	if q == nil {
		return nil, fmt.Errorf("questionnaire %s not in the catalog", questionnaireID)
	}
	g := &gen{q: q}
	for _, it := range q.Items {
		if it.Kind != sipas.KindSatisfaction {
			continue
		}
		for n := it.Node; n != nil; n = n.Parent {
			if n.Code == "DV" {
				g.dvItems = append(g.dvItems, it)
				break
			}
		}
	}
	if len(g.dvItems) == 0 {
		return nil, fmt.Errorf("%s has no DV items", questionnaireID)
	}
	for _, p := range reg.ValidOn(time.Date(2024, 6, 15, 12, 0, 0, 0, sipas.VietnamZone)) {
		g.codes2024 = append(g.codes2024, p.Code)
	}
	for _, p := range reg.ValidOn(time.Date(2026, 6, 15, 12, 0, 0, 0, sipas.VietnamZone)) {
		g.codes2026 = append(g.codes2026, p.Code)
	}
	if len(g.codes2024) == 0 || len(g.codes2026) == 0 {
		return nil, fmt.Errorf("province registry: %d provinces in 2024, %d in 2026", len(g.codes2024), len(g.codes2026))
	}
	return g, nil
}

// answer returns a random valid answer code of an item's scale.
func answer(rng *rand.Rand, it *sipas.Item) int {
	if it.Scale == nil || len(it.Scale.Codes) == 0 {
		return sipas.CodeNotApplicable
	}
	return it.Scale.Codes[rng.IntN(len(it.Scale.Codes))].Code
}

// dvAnswers answers every DV item (about 20: a kiosk's questions).
func (g *gen) dvAnswers(rng *rand.Rand) map[string]int {
	a := make(map[string]int, len(g.dvItems))
	for _, it := range g.dvItems {
		a[it.Code] = answer(rng, it)
	}
	return a
}

// allAnswers answers every item of the questionnaire (106 for sipas-2023).
func (g *gen) allAnswers(rng *rand.Rand) map[string]int {
	a := make(map[string]int, len(g.q.Items))
	for _, it := range g.q.Items {
		a[it.Code] = answer(rng, it)
	}
	return a
}

// dateIn returns a random time in the given month (Vietnam time).
func dateIn(rng *rand.Rand, year, month int) time.Time {
	return time.Date(year, time.Month(month), 1+rng.IntN(28), 7+rng.IntN(10), rng.IntN(60), rng.IntN(60), 0, sipas.VietnamZone)
}

// place picks a collection date and the province code as collected: half
// the responses in 2024 over the 63 provinces of then, half in 2026 over the
// 34 provinces of now. maxMonth2026 bounds the 2026 months (responses may
// not lie in the future).
func (g *gen) place(rng *rand.Rand, maxMonth2026 int) (time.Time, string, int) {
	if rng.IntN(2) == 0 {
		i := rng.IntN(len(g.codes2024))
		return dateIn(rng, 2024, 1+rng.IntN(12)), g.codes2024[i], i
	}
	i := rng.IntN(len(g.codes2026))
	return dateIn(rng, 2026, 1+rng.IntN(maxMonth2026)), g.codes2026[i], i
}

// fullResponse is a field-survey response: every item answered, the
// demographics given, channel field.
func (g *gen) fullResponse(rng *rand.Rand) *sipas.Response {
	at, code, _ := g.place(rng, 10)
	yes := rng.IntN(4) != 0
	return &sipas.Response{
		ID:              uuid.Must(uuid.NewV7()).String(),
		QuestionnaireID: questionnaireID,
		ProvinceCode:    code,
		CollectedAt:     at,
		Channel:         sipas.ChannelField,
		Demographics: sipas.Demographics{
			Gender:         sipas.Gender(1 + rng.IntN(2)),
			BirthYear:      1950 + rng.IntN(50),
			Ethnicity:      sipas.Ethnicity(1 + rng.IntN(2)),
			Education:      sipas.Education(1 + rng.IntN(int(sipas.MaxEducation))),
			Occupation:     sipas.Occupation(1 + rng.IntN(int(sipas.MaxOccupation))),
			Residence:      sipas.Residence(1 + rng.IntN(2)),
			RespondentType: sipas.RespondentType(1 + rng.IntN(2)),
			DidProcedure:   &yes,
		},
		Answers: g.allAnswers(rng),
	}
}

// indexUnits is how many service units the index load spreads over.
const indexUnits = 200

// kioskResponse is a kiosk-style response for the index load: the DV items
// only, at one of 200 units (unit u sits in province u mod the number of
// provinces of the year), any of the 5 channels.
//
// slot (0..23) is the month: 0..11 are January to December 2024, 12..23
// January to December 2026. The loader fills the months in order, as
// responses arrive in time order.
func (g *gen) kioskResponse(rng *rand.Rand, slot int) *sipas.Response {
	u := rng.IntN(indexUnits)
	var at time.Time
	var code string
	if slot < 12 {
		at, code = dateIn(rng, 2024, 1+slot), g.codes2024[u%len(g.codes2024)]
	} else {
		at, code = dateIn(rng, 2026, 1+slot-12), g.codes2026[u%len(g.codes2026)]
	}
	return &sipas.Response{
		ID:              uuid.Must(uuid.NewV7()).String(),
		QuestionnaireID: questionnaireID,
		ProvinceCode:    code,
		CollectedAt:     at,
		Channel:         sipas.Channels[rng.IntN(len(sipas.Channels))],
		UnitID:          fmt.Sprintf("U%03d", u),
		Answers:         g.dvAnswers(rng),
	}
}
