package sipas_test

import (
	"testing"
	"time"

	"github.com/sipas-vn/sipas"
)

func TestContentHash(t *testing.T) {
	base := goodResponse()
	h := sipas.ContentHash(base)
	// Equal content, different map construction order and time zone: equal hash.
	same := goodResponse()
	same.Answers = map[string]int{}
	codes := []string{"V23.HL.40", "V23.MD.01", "V23.NX.27", "V23.NX.10", "V23.HL.31", "V23.HL.30", "V23.HL.29"}
	for _, c := range codes {
		same.Answers[c] = base.Answers[c]
	}
	same.CollectedAt = base.CollectedAt.UTC()
	yes := true
	same.Demographics.DidProcedure = &yes
	if sipas.ContentHash(same) != h {
		t.Error("equal content, different hash")
	}
	for i := 0; i < 20; i++ {
		if sipas.ContentHash(goodResponse()) != h {
			t.Fatal("hash depends on map order")
		}
	}
	no := false
	mods := map[string]func(r *sipas.Response){
		"id":             func(r *sipas.Response) { r.ID = "0190f3b4-7c1e-7a3b-9f00-123456789abd" },
		"questionnaire":  func(r *sipas.Response) { r.QuestionnaireID = "sipas-2017" },
		"province":       func(r *sipas.Response) { r.ProvinceCode = "49" },
		"collected_at":   func(r *sipas.Response) { r.CollectedAt = r.CollectedAt.Add(time.Nanosecond) },
		"collected zero": func(r *sipas.Response) { r.CollectedAt = time.Time{} },
		"channel":        func(r *sipas.Response) { r.Channel = sipas.ChannelField },
		"unit":           func(r *sipas.Response) { r.UnitID = "" },
		"gender":         func(r *sipas.Response) { r.Demographics.Gender = 1 },
		"birth year":     func(r *sipas.Response) { r.Demographics.BirthYear = 1981 },
		"ethnicity":      func(r *sipas.Response) { r.Demographics.Ethnicity = 2 },
		"education":      func(r *sipas.Response) { r.Demographics.Education = 4 },
		"occupation":     func(r *sipas.Response) { r.Demographics.Occupation = 2 },
		"residence":      func(r *sipas.Response) { r.Demographics.Residence = 2 },
		"respondent":     func(r *sipas.Response) { r.Demographics.RespondentType = 2 },
		"did nil":        func(r *sipas.Response) { r.Demographics.DidProcedure = nil },
		"did false":      func(r *sipas.Response) { r.Demographics.DidProcedure = &no },
		"answer value":   func(r *sipas.Response) { r.Answers["V23.HL.31"] = 5 },
		"answer removed": func(r *sipas.Response) { delete(r.Answers, "V23.HL.31") },
		"answer added":   func(r *sipas.Response) { r.Answers["V23.HL.32"] = 5 },
		"answer renamed": func(r *sipas.Response) { delete(r.Answers, "V23.HL.31"); r.Answers["V23.HL.32"] = 4 },
		// Length prefixes keep field boundaries: moving a character between fields changes the hash.
		"boundary": func(r *sipas.Response) { r.QuestionnaireID += "4"; r.ProvinceCode = "8" },
	}
	seen := map[[32]byte]string{h: "base"}
	for name, mod := range mods {
		r := goodResponse()
		mod(r)
		got := sipas.ContentHash(r)
		if prev, dup := seen[got]; dup {
			t.Errorf("%s: same hash as %s", name, prev)
		}
		seen[got] = name
	}
}
