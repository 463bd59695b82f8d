package kiosk

import (
	"testing"
	"time"

	"github.com/sipas-vn/sipas"
)

func TestMisuseJudge(t *testing.T) {
	m := misuseState{rules: MisuseRules{MinPerQuestion: time.Second, MinInterval: 30 * time.Second, IdenticalRun: 2}.withDefaults()}
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	a := map[string]int{"x": 1, "y": 2}
	b := map[string]int{"x": 1, "y": 3}
	steps := []struct {
		at      time.Duration
		took    time.Duration
		answers map[string]int
		want    sipas.Flags
	}{
		{0, 10 * time.Second, a, 0},
		{time.Minute, time.Second, b, sipas.FlagTooFast}, // 1 s for 2 questions
		{time.Minute + 10*time.Second, 5 * time.Second, b, sipas.FlagTooSoon | sipas.FlagIdenticalRun}, // second b in a row
		{5 * time.Minute, 2 * time.Second, a, 0},                                                       // exactly 1 s a question is plausible
	}
	for i, s := range steps {
		if got := m.judge(t0.Add(s.at), s.took, s.answers); got != s.want {
			t.Errorf("step %d: %q, want %q", i+1, got, s.want)
		}
	}
	off := misuseState{rules: MisuseRules{MinPerQuestion: -1, MinInterval: -1, IdenticalRun: 1}.withDefaults()}
	for i := range 3 {
		if got := off.judge(t0.Add(time.Duration(i)*time.Second), 0, a); got != 0 {
			t.Errorf("disabled rules flagged %q", got)
		}
	}
}
