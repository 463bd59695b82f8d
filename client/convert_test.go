package client

import (
	"testing"

	"github.com/sipas-vn/sipas"
)

func TestResponseToProtoPacked(t *testing.T) {
	order := &itemOrder{codes: []string{"A", "B", "C", "D"}, pos: map[string]int{"A": 0, "B": 1, "C": 2, "D": 3}}
	r := &sipas.Response{ID: "x", QuestionnaireID: "q", Answers: map[string]int{"A": 0, "C": 9}}
	p := ResponseToProtoPacked(r, order)
	if len(p.Answers) != 0 || len(p.PackedAnswers) != 3 || p.PackedAnswers[0] != 1 || p.PackedAnswers[1] != 0 || p.PackedAnswers[2] != 10 {
		t.Fatalf("packed %v answers %v, want [1 0 10] and no map (trailing D left out)", p.PackedAnswers, p.Answers)
	}
	// An item the order does not know keeps the map form, for the server to report.
	r.Answers["Z"] = 4
	if p := ResponseToProtoPacked(r, order); len(p.PackedAnswers) != 0 || len(p.Answers) != 3 {
		t.Fatalf("unknown item: packed %v answers %v, want the map form", p.PackedAnswers, p.Answers)
	}
}
