package kiosk

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/internal/atomicfile"
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

// misuseState remembers the previous questionnaire completed at this kiosk:
// when it was finished, a hash of its answers and how many identical ones
// ended there in a row. It is kept in the agent's data directory
// (misuseStateFile, 0600, replaced atomically after every judgement), so
// that the too-soon and identical-run rules compare the first questionnaire
// after an agent restart with the one before it. Only a hash of the
// answers is kept, never the answers.
type misuseState struct {
	mu       sync.Mutex
	rules    MisuseRules
	path     string // "" keeps it in memory only
	logf     func(string, ...any)
	last     time.Time
	lastKey  string // answersHash of the previous questionnaire
	runCount int
	// lastID and lastFlags are the previous questionnaire's response id
	// and verdict: the app retries a questionnaire until the agent
	// answers, also across an agent restart, and a retry is not judged
	// again (it would count the questionnaire twice).
	lastID    string
	lastFlags sipas.Flags
}

// misuseStateFile is the file in the data directory that keeps misuseState.
const misuseStateFile = "misuse-state.json"

// savedMisuse is the form misuseState is kept in.
type savedMisuse struct {
	LastFinished time.Time `json:"last_finished"`
	AnswersHash  string    `json:"answers_hash"`
	Run          int       `json:"run"`
	ResponseID   string    `json:"response_id"`
	Flags        uint32    `json:"flags"`
}

// load reads the state kept at path. A missing file is a first start; a
// damaged one is reported and ignored (the next questionnaire is then not
// compared with the one before, as on a first start).
func (m *misuseState) load(path string, logf func(string, ...any)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.path, m.logf = path, logf
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	var s savedMisuse
	if err == nil {
		err = json.Unmarshal(b, &s)
	}
	if err != nil {
		logf("kiosk: misuse state %s unreadable, starting afresh: %v", path, err)
		return
	}
	m.last, m.lastKey, m.runCount = s.LastFinished, s.AnswersHash, s.Run
	m.lastID, m.lastFlags = s.ResponseID, sipas.Flags(s.Flags)
}

// judge returns the flags of questionnaire id completed at done after
// taking took, with the given answers, and records it as the previous one.
// The previous questionnaire judged again (a retry) gets its verdict again
// and changes nothing.
func (m *misuseState) judge(id string, done time.Time, took time.Duration, answers map[string]int) sipas.Flags {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id != "" && id == m.lastID {
		return m.lastFlags
	}
	var f sipas.Flags
	if m.rules.MinPerQuestion > 0 && took < time.Duration(len(answers))*m.rules.MinPerQuestion {
		f |= sipas.FlagTooFast
	}
	if m.rules.MinInterval > 0 && !m.last.IsZero() && done.Sub(m.last) < m.rules.MinInterval {
		f |= sipas.FlagTooSoon
	}
	key := answersHash(answers)
	if key == m.lastKey {
		m.runCount++
	} else {
		m.lastKey, m.runCount = key, 1
	}
	if m.rules.IdenticalRun >= 2 && m.runCount >= m.rules.IdenticalRun {
		f |= sipas.FlagIdenticalRun
	}
	m.last, m.lastID, m.lastFlags = done, id, f
	m.save()
	return f
}

// save keeps the state in its file. A failure is logged, not returned: the
// questionnaire is still queued, and only the comparison of the next one
// after a restart is lost.
func (m *misuseState) save() {
	if m.path == "" {
		return
	}
	b, err := json.Marshal(savedMisuse{LastFinished: m.last, AnswersHash: m.lastKey, Run: m.runCount,
		ResponseID: m.lastID, Flags: uint32(m.lastFlags)})
	if err == nil {
		err = atomicfile.WriteFile(m.path, b, 0o600)
	}
	if err != nil {
		m.logf("kiosk: keeping the misuse state: %v", err)
	}
}

// answersHash is a hash of the canonical form of a set of answers.
func answersHash(answers map[string]int) string {
	sum := sha256.Sum256([]byte(answersKey(answers)))
	return hex.EncodeToString(sum[:16])
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
