package sipas_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/sipas-vn/sipas"
)

func TestContentHash(t *testing.T) {
	cat, _ := loadAll(t)
	q := cat.Get("sipas-2023")
	hash := func(r *sipas.Response) [32]byte { return sipas.ContentHash(q, r) }
	base := goodResponse()
	h := hash(base)
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
	if hash(same) != h {
		t.Error("equal content, different hash")
	}
	// The packed form of the same answers: the same hash.
	packed := goodResponse()
	packed.Packed = make([]uint32, len(q.Items))
	for c, a := range packed.Answers {
		packed.Packed[q.Item(c).Index] = uint32(a) + 1
	}
	packed.Answers = nil
	if hash(packed) != h {
		t.Error("the packed form hashes differently from the map form")
	}
	for i := 0; i < 20; i++ {
		if hash(goodResponse()) != h {
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
		got := hash(r)
		if prev, dup := seen[got]; dup {
			t.Errorf("%s: same hash as %s", name, prev)
		}
		seen[got] = name
	}
}

// TestContentHashGolden pins both hash versions: a change of encoding would
// make every resend of a stored response a conflict. The version-1 value is
// what the service computed before version 2 (and what it stored).
func TestContentHashGolden(t *testing.T) {
	cat, reg := loadAll(t)
	r := goodResponse()
	acc, err := sipas.Validate(cat, reg, r, r.CollectedAt)
	if err != nil {
		t.Fatal(err)
	}
	const (
		v2 = "5fce335d68a038ab5bf8d190853aff7dbc177be938c04fbc4e99fffe5b5a18bb"
		v1 = "921af45a77dc10132685809637d1c12ce47d70518f9ccc7c44decbb87d9f661c"
	)
	if got := fmt.Sprintf("%x", acc.Hash); got != v2 {
		t.Errorf("version-2 hash %s, want %s", got, v2)
	}
	if got := fmt.Sprintf("%x", sipas.LegacyContentHash(acc)); got != v1 {
		t.Errorf("version-1 hash %s, want %s", got, v1)
	}
}
