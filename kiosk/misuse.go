package kiosk

import (
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sipas-vn/sipas"
)

// MisuseRules say which questionnaires a kiosk flags. Flagged responses are
// still stored and sent; the server keeps them out of indices by default.
type MisuseRules struct {
	// MinPerQuestion is the least plausible time per question answered: a
	// questionnaire completed faster than this times its answered items is
	// flagged too_fast (default 1.5 s; negative disables).
	MinPerQuestion time.Duration
	// MinInterval is the least time between two questionnaires completed
	// at this kiosk: one completed sooner after the previous is flagged
	// too_soon (default 20 s; negative disables).
	MinInterval time.Duration
	// IdenticalRun is the length of a run of identical questionnaires in a
	// row from which each is flagged identical_run (default 3: the third
	// identical one in a row and those after it; below 2 disables).
	IdenticalRun int
}

func (r MisuseRules) withDefaults() MisuseRules {
	if r.MinPerQuestion == 0 {
		r.MinPerQuestion = 1500 * time.Millisecond
	}
	if r.MinInterval == 0 {
		r.MinInterval = 20 * time.Second
	}
	if r.IdenticalRun == 0 {
		r.IdenticalRun = 3
	}
	return r
}

// misuseState remembers the previous questionnaire completed at this kiosk.
// It is memory only: after an agent restart the first questionnaire is not
// compared with the one before.
type misuseState struct {
	mu       sync.Mutex
	rules    MisuseRules
	last     time.Time
	lastKey  string
	runCount int
}

// judge returns the flags of a questionnaire completed at done after
// taking took, with the given answers, and records it as the previous one.
func (m *misuseState) judge(done time.Time, took time.Duration, answers map[string]int) sipas.Flags {
	m.mu.Lock()
	defer m.mu.Unlock()
	var f sipas.Flags
	if m.rules.MinPerQuestion > 0 && took < time.Duration(len(answers))*m.rules.MinPerQuestion {
		f |= sipas.FlagTooFast
	}
	if m.rules.MinInterval > 0 && !m.last.IsZero() && done.Sub(m.last) < m.rules.MinInterval {
		f |= sipas.FlagTooSoon
	}
	key := answersKey(answers)
	if key == m.lastKey {
		m.runCount++
	} else {
		m.lastKey, m.runCount = key, 1
	}
	if m.rules.IdenticalRun >= 2 && m.runCount >= m.rules.IdenticalRun {
		f |= sipas.FlagIdenticalRun
	}
	m.last = done
	return f
}

// answersKey is a canonical form of a set of answers.
func answersKey(answers map[string]int) string {
	codes := make([]string, 0, len(answers))
	for c := range answers {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	var b strings.Builder
	for _, c := range codes {
		b.WriteString(c)
		b.WriteByte('=')
		b.WriteString(strconv.Itoa(answers[c]))
		b.WriteByte(';')
	}
	return b.String()
}
