package kiosk

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"time"

	"github.com/google/uuid"
)

//go:embed web
var webFS embed.FS

// assets serves the embedded app: every file it needs is in the binary.
func assets() http.Handler {
	sub, err := fs.Sub(webFS, "web")
	if err != nil {
		panic(err) // the embedded tree always has web/
	}
	return http.FileServerFS(sub)
}

// appConfig is what the app needs besides the form.
type appConfig struct {
	Ready           bool  `json:"ready"`
	Form            *Form `json:"form,omitempty"`
	IdleSeconds     int   `json:"idle_seconds"`
	ThankYouSeconds int   `json:"thank_you_seconds"`
	Operator        bool  `json:"operator"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad request body"})
		return false
	}
	return true
}

func (a *Agent) handleForm(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	f := a.form
	a.mu.Unlock()
	writeJSON(w, http.StatusOK, appConfig{Ready: f != nil, Form: f,
		IdleSeconds:     int((a.cfg.IdleTimeout + time.Second - 1) / time.Second),
		ThankYouSeconds: int((a.cfg.ThankYou + time.Second - 1) / time.Second),
		Operator:        a.cfg.OperatorPIN != ""})
}

// handleStart begins a questionnaire: its response id and start time are
// chosen here, on the agent's clock.
func (a *Agent) handleStart(w http.ResponseWriter, r *http.Request) {
	id := newResponseID()
	now := a.cfg.Now()
	a.mu.Lock()
	for s, t := range a.sessions {
		if now.Sub(t) > 24*time.Hour {
			delete(a.sessions, s)
		}
	}
	if len(a.sessions) < 10000 {
		a.sessions[id] = now
	}
	a.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"session": id})
}

// answersBody is a finished or abandoned questionnaire.
type answersBody struct {
	Session   string         `json:"session"`
	Answers   map[string]int `json:"answers"`
	ElapsedMS int64          `json:"elapsed_ms"` // the app's measure, used when the agent restarted meanwhile
}

// check validates a body against the form; the app never sends anything
// else, so a failure is a bug, answered 400.
func (a *Agent) check(b *answersBody) string {
	if _, err := uuid.Parse(b.Session); err != nil {
		return "session is not a response id"
	}
	a.mu.Lock()
	f := a.form
	a.mu.Unlock()
	if f == nil {
		return "no questionnaire"
	}
	items := map[string]*FormItem{}
	for i := range f.Items {
		items[f.Items[i].Code] = &f.Items[i]
	}
	for code, v := range b.Answers {
		it := items[code]
		if it == nil {
			return "unknown item " + code
		}
		if !it.allows(v) {
			return "invalid answer to " + code
		}
	}
	return ""
}

// handleFinish stores a finished questionnaire durably and only then
// answers: the app shows the thank-you screen after this answer.
func (a *Agent) handleFinish(w http.ResponseWriter, r *http.Request) {
	var b answersBody
	if !readJSON(w, r, &b) {
		return
	}
	if msg := a.check(&b); msg != "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": msg})
		return
	}
	if len(b.Answers) == 0 {
		a.markFinished(b.Session)
		writeJSON(w, http.StatusOK, map[string]any{"stored": false})
		return
	}
	if err := a.queue(r.Context(), b.Session, b.Answers, time.Duration(b.ElapsedMS)*time.Millisecond, false); err != nil {
		a.cfg.Logf("kiosk: storing a questionnaire: %v", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "not stored; retry"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"stored": true})
}

// handleAbandon ends a questionnaire reset for idleness: its answers are
// sent when the configuration says so, else discarded.
func (a *Agent) handleAbandon(w http.ResponseWriter, r *http.Request) {
	var b answersBody
	if !readJSON(w, r, &b) {
		return
	}
	if msg := a.check(&b); msg != "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": msg})
		return
	}
	if !a.cfg.SendPartial || len(b.Answers) == 0 {
		a.markFinished(b.Session)
		writeJSON(w, http.StatusOK, map[string]any{"stored": false})
		return
	}
	if err := a.queue(r.Context(), b.Session, b.Answers, time.Duration(b.ElapsedMS)*time.Millisecond, true); err != nil {
		a.cfg.Logf("kiosk: storing a partial questionnaire: %v", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "not stored; retry"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"stored": true})
}
