package kiosk

import (
	"fmt"
	"os"
	"path/filepath"
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
		if got := m.judge(fmt.Sprint("q", i), t0.Add(s.at), s.took, s.answers); got != s.want {
			t.Errorf("step %d: %q, want %q", i+1, got, s.want)
		}
	}
	off := misuseState{rules: MisuseRules{MinPerQuestion: -1, MinInterval: -1, IdenticalRun: 1}.withDefaults()}
	for i := range 3 {
		if got := off.judge(fmt.Sprint("q", i), t0.Add(time.Duration(i)*time.Second), 0, a); got != 0 {
			t.Errorf("disabled rules flagged %q", got)
		}
	}
}

// TestMisuseStateDamagedFile: a damaged state file is reported and the
// agent starts afresh (as on a first start); the next judgement replaces it.
func TestMisuseStateDamagedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), misuseStateFile)
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logged []string
	m := misuseState{rules: MisuseRules{MinInterval: time.Minute}.withDefaults()}
	m.load(path, func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) })
	if len(logged) != 1 || !m.last.IsZero() {
		t.Fatalf("damaged state: logged %q, last %v", logged, m.last)
	}
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	if f := m.judge("a", t0, time.Minute, map[string]int{"x": 1}); f != 0 {
		t.Errorf("first judgement after a damaged state: %q", f)
	}
	again := misuseState{rules: m.rules}
	again.load(path, t.Logf)
	if f := again.judge("b", t0.Add(time.Second), time.Minute, map[string]int{"x": 2}); f != sipas.FlagTooSoon {
		t.Errorf("after reloading the replaced state: %q, want too_soon", f)
	}
}

// TestMisuseRetryNotJudgedAgain: the app retries a questionnaire until the
// agent answers, also across a restart; the retry gets the first verdict
// and does not count the questionnaire twice (which would flag the next
// one too soon, or as part of an identical run).
func TestMisuseRetryNotJudgedAgain(t *testing.T) {
	path := filepath.Join(t.TempDir(), misuseStateFile)
	rules := MisuseRules{MinPerQuestion: -1, MinInterval: 20 * time.Second, IdenticalRun: 2}.withDefaults()
	m := misuseState{rules: rules}
	m.load(path, t.Logf)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	a := map[string]int{"x": 1}
	if f := m.judge("q1", t0, time.Minute, a); f != 0 {
		t.Fatalf("first: %q", f)
	}
	restarted := misuseState{rules: rules}
	restarted.load(path, t.Logf)
	if f := restarted.judge("q1", t0.Add(5*time.Second), time.Minute, a); f != 0 {
		t.Errorf("the retry of q1 after a restart: %q, want its first verdict (none)", f)
	}
	// The next questionnaire, 30 s after q1 with other answers: not flagged
	// (the retry did not move the previous finish time or the run).
	if f := restarted.judge("q2", t0.Add(30*time.Second), time.Minute, map[string]int{"x": 2}); f != 0 {
		t.Errorf("q2: %q, want none", f)
	}
}
