package crash

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// Corrections in the crash test (issue 16 item 5): a survey team submits
// responses and then amends or withdraws them while the server is killed.
// Each correction is retried with the same content until it has a definite
// outcome (a retried correction is answered unchanged / already withdrawn),
// and is logged in the history with its kind. The checker then requires
// every acknowledged correction to be in effect exactly once (one row of
// the corrections table, the stored content the amendment's, a withdrawn
// response marked so), none refused or never sent to be in effect, and the
// aggregates (which store.CheckAggregates compares with a recount that
// leaves withdrawn responses out and counts amended ones in their current
// version) to agree.

const (
	corrAmend    = "amend"
	corrWithdraw = "withdraw"
)

// correction is one amendment or withdrawal the corrector owns until it
// has a definite outcome.
type correction struct {
	it       *item
	kind     string
	resp     *sipasv1.Response // the new version (amend)
	sha      string            // the new version's hash (amend), else the item's
	attempts int
}

// correctionState is what the harness needs beyond harness's fields.
type correctionState struct {
	mu         sync.Mutex
	correcting map[string]bool // ids with a correction sent: their stored hash may change
	leftover   []*correction
}

// markCorrecting notes that id's stored content may change from now on.
func (h *harness) markCorrecting(id string) {
	h.corr.mu.Lock()
	h.corr.correcting[id] = true
	h.corr.mu.Unlock()
}

func (h *harness) isCorrecting(id string) bool {
	h.corr.mu.Lock()
	defer h.corr.mu.Unlock()
	return h.corr.correcting[id]
}

// submitAsSurveyor sends one response as the survey team and logs it.
func (h *harness) submitAsSurveyor(it *item, final bool) string {
	start, ep := time.Now(), h.kills.Load()
	h.inflight.Add(1)
	ctx, cancel := context.WithTimeout(h.surveyorCtx, unaryTimeout)
	resp, err := h.survey.SubmitResponse(ctx, &sipasv1.SubmitResponseRequest{Response: it.resp})
	cancel()
	h.inflight.Add(-1)
	res, code := classify(err)
	if err == nil {
		if resp.GetDuplicate() {
			res = resDuplicate
		}
		h.acks.Add(1)
		h.noteAck(it.id, it.sha)
	}
	it.attempts++
	h.hist.add(record{ID: it.id, SHA: it.sha, Principal: "surveyor", Start: start, End: time.Now(), Result: res, Code: code,
		Attempt: it.attempts, Epoch: ep, EndEpoch: h.kills.Load(), Final: final})
	return res
}

// sendCorrection sends one attempt of c and logs it.
func (h *harness) sendCorrection(c *correction, final bool) string {
	start, ep := time.Now(), h.kills.Load()
	h.inflight.Add(1)
	ctx, cancel := context.WithTimeout(h.surveyorCtx, unaryTimeout)
	var err error
	unchanged := false
	switch c.kind {
	case corrAmend:
		var r *sipasv1.AmendResponseResponse
		if r, err = h.survey.AmendResponse(ctx, &sipasv1.AmendResponseRequest{Response: c.resp, Reason: "crash test amendment"}); err == nil {
			unchanged = r.GetUnchanged()
		}
	default:
		var r *sipasv1.WithdrawResponseResponse
		if r, err = h.survey.WithdrawResponse(ctx, &sipasv1.WithdrawResponseRequest{ResponseId: c.it.id, Reason: "crash test withdrawal"}); err == nil {
			unchanged = r.GetAlreadyWithdrawn()
		}
	}
	cancel()
	h.inflight.Add(-1)
	res, code := classify(err)
	if err == nil {
		h.acks.Add(1)
		if unchanged {
			res = resDuplicate
		}
	}
	c.attempts++
	h.hist.add(record{ID: c.it.id, SHA: c.sha, Principal: "surveyor", Start: start, End: time.Now(), Result: res, Code: code,
		Attempt: c.attempts, Epoch: ep, EndEpoch: h.kills.Load(), Final: final, Correction: c.kind})
	return res
}

// newCorrection chooses an amendment (two in three) or a withdrawal of it.
func (h *harness) newCorrection(rng *rand.Rand, it *item) *correction {
	c := &correction{it: it, kind: corrWithdraw, sha: it.sha}
	if rng.IntN(3) > 0 {
		c.kind = corrAmend
		c.resp = proto.Clone(it.resp).(*sipasv1.Response)
		c.resp.Answers = map[string]int32{}
		for _, j := range rng.Perm(len(h.satItems))[:1+rng.IntN(len(h.satItems))] {
			c.resp.Answers[h.satItems[j]] = int32(1 + rng.IntN(5))
		}
		c.sha = h.contentHash(c.resp)
		if c.sha == it.sha { // the same answers drawn again: change one
			c.resp.Answers[h.satItems[0]] = c.resp.Answers[h.satItems[0]]%5 + 1
			c.sha = h.contentHash(c.resp)
		}
	}
	return c
}

// correctorWorker submits a response as the survey team, retrying until it
// is acknowledged or refused, then amends or withdraws it, retrying until
// the correction has a definite outcome; what is left when the load stops
// goes to the final round.
func (h *harness) correctorWorker(seed uint64, wg *sync.WaitGroup) {
	defer wg.Done()
	rng := rand.New(rand.NewPCG(seed, seed*17+3))
	var it *item
	var c *correction
	for !h.stopping.Load() {
		switch {
		case c != nil:
			if h.sendCorrection(c, false) != resIndeterminate {
				c = nil
			} else {
				jitter(rng, 5*time.Millisecond, 25*time.Millisecond)
			}
		case it != nil:
			switch h.submitAsSurveyor(it, false) {
			case resOK, resDuplicate:
				c = h.newCorrection(rng, it)
				h.markCorrecting(it.id)
				it = nil
			case resDefiniteFail:
				it = nil
			default:
				jitter(rng, 5*time.Millisecond, 25*time.Millisecond)
			}
		default:
			if it = h.newItem(rng, "surveyor"); it.invalid {
				it = nil
			}
		}
	}
	h.mu.Lock()
	if it != nil {
		h.leftover = append(h.leftover, it) // retried like any surveyor item
	}
	h.mu.Unlock()
	if c != nil {
		h.corr.mu.Lock()
		h.corr.leftover = append(h.corr.leftover, c)
		h.corr.mu.Unlock()
	}
}

// finalCorrections retries the corrections left indeterminate until each
// has a definite outcome, and returns those that never got one.
func (h *harness) finalCorrections() []string {
	pending := h.corr.leftover
	for round := 0; len(pending) > 0 && round < finalRounds; round++ {
		if round > 0 {
			time.Sleep(min(50*time.Millisecond<<round, 2*time.Second))
		}
		var next []*correction
		for _, c := range pending {
			if h.sendCorrection(c, true) == resIndeterminate {
				next = append(next, c)
			}
		}
		pending = next
	}
	var ids []string
	for _, c := range pending {
		ids = append(ids, c.it.id)
	}
	return ids
}

// corrSummary counts the corrections the checker saw.
type corrSummary struct {
	corrections, amended, withdrawn, refused int
	lost, doubled, phantom                   int
	// indeterminate counts correction attempts with an unknown outcome
	// (a kill landed during them); committedUnacked the corrections that
	// were in effect although their attempt was indeterminate (the retry
	// was answered unchanged / already withdrawn).
	indeterminate, committedUnacked int
}

// ackedCorrection returns the kind and hash of the id's acknowledged
// correction ("" when none).
func (s *idState) ackedCorrection() (kind, sha string) {
	for _, a := range s.corrections {
		if a.Result == resOK || a.Result == resDuplicate {
			return a.Correction, a.SHA
		}
	}
	return "", ""
}

// checkCorrections compares the corrections in the database with the
// history: each acknowledged correction in effect exactly once, none in
// effect that was never acknowledged nor left indeterminate.
func checkCorrections(t reporter, db dbView, ids map[string]*idState) (corrSummary, error) {
	var cs corrSummary
	got, err := db.correctedRows()
	if err != nil {
		return cs, fmt.Errorf("reading corrections: %w", err)
	}
	var lost, doubled, phantom []string
	for id, s := range ids {
		if len(s.corrections) == 0 {
			continue
		}
		cs.corrections++
		sawIndet := false
		for _, a := range s.corrections {
			switch {
			case a.Result == resIndeterminate:
				cs.indeterminate++
				sawIndet = true
			case a.Result == resDuplicate && sawIndet:
				cs.committedUnacked++
			}
		}
		kind, sha := s.ackedCorrection()
		st, ok := got[id]
		switch {
		case kind == "":
			cs.refused++
			indet := false
			for _, a := range s.corrections {
				indet = indet || a.Result == resIndeterminate
			}
			if ok && !indet {
				phantom = append(phantom, id+" (every correction attempt refused, yet one is in effect)")
			}
		case !ok || st.n == 0:
			lost = append(lost, id+" (acknowledged "+kind+" not in effect)")
		case st.n > 1:
			doubled = append(doubled, fmt.Sprintf("%s (%s applied %d times)", id, kind, st.n))
		case kind == corrWithdraw:
			cs.withdrawn++
			if !st.withdrawn || st.version != 1 {
				lost = append(lost, id+" (acknowledged withdrawal, response not withdrawn)")
			}
		default:
			cs.amended++
			if st.withdrawn || st.version != 2 || fmt.Sprintf("%x", st.hash) != sha {
				lost = append(lost, fmt.Sprintf("%s (acknowledged amendment: version %d, withdrawn %v, stored %x…)", id, st.version, st.withdrawn, st.hash[:6]))
			}
		}
		delete(got, id)
	}
	for id := range got {
		phantom = append(phantom, id+" (corrected without any correction sent)")
	}
	cs.lost, cs.doubled, cs.phantom = len(lost), len(doubled), len(phantom)
	for _, l := range []struct {
		name string
		ids  []string
	}{{"corrections lost", lost}, {"corrections applied more than once", doubled}, {"phantom corrections", phantom}} {
		if len(l.ids) > 0 {
			sort.Strings(l.ids)
			t.Errorf("%s: %d, e.g. %v", l.name, len(l.ids), head(l.ids, 10))
		}
	}
	return cs, nil
}

// correctionIndeterminate reports whether some correction attempt of the id
// had an unknown outcome (and none was acknowledged): its stored content
// may be either version.
func (s *idState) correctionIndeterminate() bool {
	for _, a := range s.corrections {
		if a.Result == resIndeterminate {
			return true
		}
	}
	return false
}
