package kiosk

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"sync"
	"time"
)

// operatorAuth guards the operator screen: a PIN opens a session of 15
// minutes; five wrong PINs lock the screen for a minute.
type operatorAuth struct {
	pin string

	mu       sync.Mutex
	sessions map[string]time.Time // token → expiry
	failures int
	lockedTo time.Time
}

const (
	operatorSession = 15 * time.Minute
	operatorTries   = 5
	operatorLockout = time.Minute
)

func (o *operatorAuth) login(pin string, now time.Time) (token string, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pin == "" || now.Before(o.lockedTo) {
		return "", false
	}
	if subtle.ConstantTimeCompare([]byte(pin), []byte(o.pin)) != 1 {
		o.failures++
		if o.failures >= operatorTries {
			o.failures, o.lockedTo = 0, now.Add(operatorLockout)
		}
		return "", false
	}
	o.failures = 0
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	token = hex.EncodeToString(b)
	if o.sessions == nil {
		o.sessions = map[string]time.Time{}
	}
	for t, exp := range o.sessions {
		if now.After(exp) {
			delete(o.sessions, t)
		}
	}
	o.sessions[token] = now.Add(operatorSession)
	return token, true
}

func (o *operatorAuth) valid(token string, now time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	exp, ok := o.sessions[token]
	return ok && token != "" && now.Before(exp)
}

func (a *Agent) handleOperatorLogin(w http.ResponseWriter, r *http.Request) {
	var b struct {
		PIN string `json:"pin"`
	}
	if !readJSON(w, r, &b) {
		return
	}
	token, ok := a.op.login(b.PIN, a.cfg.Now())
	if !ok {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "wrong PIN"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"token": token})
}

func (a *Agent) operatorOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !a.op.valid(r.Header.Get("X-Operator"), a.cfg.Now()) {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "operator PIN required"})
			return
		}
		h(w, r)
	}
}

// OperatorStatus is what the operator screen shows.
type OperatorStatus struct {
	QueueDepth           int          `json:"queue_depth"`
	OldestPendingSeconds float64      `json:"oldest_pending_seconds"`
	LastSend             string       `json:"last_send"` // RFC 3339, "" when none since start
	ServerReachable      bool         `json:"server_reachable"`
	LastContact          string       `json:"last_contact"`
	DeadLetters          []deadLetter `json:"dead_letters"`
	Version              string       `json:"version"`
	ClockOffsetSeconds   float64      `json:"clock_offset_seconds"`
	ClockOffsetKnown     bool         `json:"clock_offset_known"`
	QuestionnaireID      string       `json:"questionnaire_id"`
	QuestionnaireProblem string       `json:"questionnaire_problem"`
}

type deadLetter struct {
	ResponseID string `json:"response_id"`
	Code       string `json:"code"`
	Reason     string `json:"reason"`
	FailedAt   string `json:"failed_at"`
}

// Status returns the operator screen's figures.
func (a *Agent) Status(ctx context.Context) OperatorStatus {
	depth, oldest, _ := a.outbox.Stats()
	st := OperatorStatus{QueueDepth: depth, OldestPendingSeconds: oldest.Seconds(), Version: a.cfg.Version,
		DeadLetters: []deadLetter{}}
	if t := a.outbox.LastSent(); !t.IsZero() {
		st.LastSend = t.Format(time.RFC3339)
	}
	if dls, err := a.outbox.DeadLetters(ctx); err == nil {
		for _, d := range dls {
			st.DeadLetters = append(st.DeadLetters, deadLetter{ResponseID: d.ResponseID, Code: d.Code, Reason: d.Reason, FailedAt: d.FailedAt.Format(time.RFC3339)})
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	st.ServerReachable = a.reachable
	if a.outbox.LastError() == nil && !a.outbox.LastSent().IsZero() && a.outbox.LastSent().After(a.lastContact) {
		st.ServerReachable = true
	}
	if !a.lastContact.IsZero() {
		st.LastContact = a.lastContact.Format(time.RFC3339)
	}
	st.ClockOffsetSeconds, st.ClockOffsetKnown = a.clockOffset.Seconds(), a.offsetKnown
	st.QuestionnaireID = a.cfg.QuestionnaireID
	if a.formErr != nil {
		st.QuestionnaireProblem = a.formErr.Error()
	}
	return st
}

func (a *Agent) handleOperatorStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, a.Status(r.Context()))
}

// handleOperatorTest queues a test questionnaire through the whole path
// (outbox, drain, server). Every item is answered 9 (not applicable), which
// no index counts, so a test leaves every figure as it was.
func (a *Agent) handleOperatorTest(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	f := a.form
	a.mu.Unlock()
	if f == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "no questionnaire yet"})
		return
	}
	answers := map[string]int{}
	for _, it := range f.Items {
		answers[it.Code] = 9
	}
	id := newResponseID()
	if err := a.queue(r.Context(), id, answers, 0, true); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"response_id": id})
}
