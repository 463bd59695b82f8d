package server

import (
	"context"
	"errors"
	"io"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sipas-vn/sipas"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
	"github.com/sipas-vn/sipas/store"
)

// surveyService implements sipas.v1.SurveyService.
type surveyService struct {
	sipasv1.UnimplementedSurveyServiceServer
	s *Server
}

func (h *surveyService) GetQuestionnaire(ctx context.Context, req *sipasv1.GetQuestionnaireRequest) (*sipasv1.GetQuestionnaireResponse, error) {
	id, ok := strings.CutPrefix(req.GetName(), "questionnaires/")
	if !ok || id == "" {
		return nil, toStatus(ctx, h.s.log, sipas.Invalid("get questionnaire", sipas.Violation{
			Field: "name", Reason: "INVALID_NAME", Description: `must be "questionnaires/{questionnaire_id}", e.g. "questionnaires/sipas-2023"`}))
	}
	q := h.s.cfg.Catalog.Get(id)
	if q == nil {
		return nil, toStatus(ctx, h.s.log, &sipas.Error{Kind: sipas.KindNotFound, Reason: "UNKNOWN_QUESTIONNAIRE",
			Op: "get questionnaire", Message: "no questionnaire " + quote(id)})
	}
	return &sipasv1.GetQuestionnaireResponse{Questionnaire: questionnaireToProto(q)}, nil
}

func (h *surveyService) ListQuestionnaires(ctx context.Context, req *sipasv1.ListQuestionnairesRequest) (*sipasv1.ListQuestionnairesResponse, error) {
	size, err := pageSize(req.GetPageSize(), 50, 100)
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	after := req.GetPageToken()
	out := &sipasv1.ListQuestionnairesResponse{}
	for _, q := range h.s.cfg.Catalog.List() {
		if q.ID <= after {
			continue
		}
		if len(out.Questionnaires) == size {
			out.NextPageToken = out.Questionnaires[size-1].QuestionnaireId
			break
		}
		out.Questionnaires = append(out.Questionnaires, questionnaireToProto(q))
	}
	return out, nil
}

func (h *surveyService) SubmitResponse(ctx context.Context, req *sipasv1.SubmitResponseRequest) (*sipasv1.SubmitResponseResponse, error) {
	p := principalFrom(ctx)
	if req.GetResponse() == nil {
		return nil, toStatus(ctx, h.s.log, sipas.Invalid("submit response", sipas.Violation{
			Field: "response", Reason: "REQUIRED", Description: "a response is required"}))
	}
	if err := checkTimestamps(req.GetResponse()); err != nil {
		h.s.countRefusal(sipas.Channel(req.GetResponse().GetChannel()), err)
		return nil, toStatus(ctx, h.s.log, err)
	}
	r := responseFromProto(req.GetResponse())
	acc, err := h.s.accept(p, r)
	if err != nil {
		h.s.countRefusal(r.Channel, err)
		return nil, toStatus(ctx, h.s.log, err)
	}
	if p != nil {
		acc.Source.CredentialID = p.CredentialID
	}
	results, err := h.s.cfg.Store.Insert(ctx, []*sipas.Accepted{acc})
	if err != nil {
		return nil, toStatus(ctx, h.s.log, err)
	}
	if err := results[0].Err; err != nil {
		h.s.countRefusal(r.Channel, err)
		return nil, toStatus(ctx, h.s.log, err)
	}
	h.s.noteKioskResponse(p)
	outcome := "accepted"
	if results[0].Duplicate {
		outcome = "duplicate"
	}
	h.s.metrics.ResponsesIngested.WithLabelValues(channelLabel(r.Channel), outcome).Inc()
	return &sipasv1.SubmitResponseResponse{
		ResponseId:   acc.Response.ID,
		Duplicate:    results[0].Duplicate,
		ProvinceCode: acc.Province.Code,
		Warnings:     acc.Warnings,
	}, nil
}

// checkTimestamps refuses a response whose Timestamp fields are not valid
// Timestamps (nanos outside 0..999,999,999, seconds outside years 1..9999),
// which AsTime would silently normalise.
func checkTimestamps(r *sipasv1.Response) error {
	if t := r.GetCollectedAt(); t != nil {
		if err := t.CheckValid(); err != nil {
			return sipas.Invalid("validate response", sipas.Violation{Field: "collected_at", Reason: "INVALID_TIMESTAMP",
				Description: "collected_at is not a valid Timestamp: nanos must be 0 to 999999999 and the year 1 to 9999"})
		}
	}
	return nil
}

// accept applies the caller's scope to a response and validates it.
// A kiosk's unit and province come from its credential: a body naming
// another unit or province is refused; its channel is kiosk whatever the
// body says, and its collected_at must be recent (checkKioskTime). A
// surveyor may only send responses of provinces in its scope. A response
// naming a unit must name a registered unit of its province (checkUnit).
func (s *Server) accept(p *Principal, r *sipas.Response) (*sipas.Accepted, error) {
	kiosk := p != nil && p.Role == sipasv1.Role_ROLE_KIOSK
	forcedChannel := false
	if kiosk {
		if r.UnitID != "" && r.UnitID != p.UnitID {
			return nil, &sipas.Error{Kind: sipas.KindPermissionDenied, Reason: "OTHER_UNIT", Op: "submit response",
				Message: "a kiosk may only submit for its own unit; leave unit_id empty or use the credential's unit"}
		}
		if r.ProvinceCode != "" && r.ProvinceCode != p.UnitProvince {
			return nil, &sipas.Error{Kind: sipas.KindPermissionDenied, Reason: "OTHER_PROVINCE", Op: "submit response",
				Message: "a kiosk may only submit for its unit's province; leave province_code empty"}
		}
		r.UnitID, r.ProvinceCode = p.UnitID, p.UnitProvince
		r.Flags |= s.kioskFlags(p)
		forcedChannel = r.Channel != sipas.ChannelUnspecified && r.Channel != sipas.ChannelKiosk
		r.Channel = sipas.ChannelKiosk
	}
	acc, err := sipas.Validate(s.cfg.Catalog, s.cfg.Registry, r, s.cfg.Now())
	if err != nil {
		return nil, err
	}
	if kiosk {
		if err := s.checkKioskTime(p, r.CollectedAt); err != nil {
			return nil, err
		}
		if forcedChannel {
			acc.Warnings = append(acc.Warnings, "kênh thu thập của kiosk luôn là kiosk / a kiosk credential's responses are channel kiosk: the channel sent was replaced")
		}
	}
	if p != nil && !kiosk {
		current := s.cfg.Registry.Current(acc.Province)
		if !p.InProvince(r.ProvinceCode) && !p.InProvince(acc.Province.Code) && !p.InProvince(current.Code) {
			return nil, &sipas.Error{Kind: sipas.KindPermissionDenied, Reason: "PROVINCE_OUT_OF_SCOPE", Op: "submit response",
				Message: "province " + quote(r.ProvinceCode) + " is outside this credential's scope"}
		}
	}
	if r.UnitID != "" && !kiosk {
		if err := s.checkUnit(p, acc); err != nil {
			return nil, err
		}
	}
	return acc, nil
}

const opAccept = "submit response"

// checkKioskTime refuses a kiosk response collected before its credential
// existed (less KioskClockGrace, for clocks that are behind) or longer ago
// than KioskMaxAge: a kiosk can neither feed periods before it was set up
// nor rewrite closed ones. Older data goes through a surveyor's upload,
// where it is attributable to a survey team.
func (s *Server) checkKioskTime(p *Principal, at time.Time) error {
	if at.Before(s.cfg.Now().Add(-s.cfg.KioskMaxAge)) {
		return sipas.Invalid(opAccept, sipas.Violation{Field: "collected_at", Reason: "KIOSK_TOO_OLD",
			Description: "a kiosk may send responses collected within the last " + s.cfg.KioskMaxAge.String() +
				"; older responses are uploaded by a survey team (sipas upload)"})
	}
	if !p.CreateTime.IsZero() && at.Before(p.CreateTime.Add(-s.cfg.KioskClockGrace)) {
		return sipas.Invalid(opAccept, sipas.Violation{Field: "collected_at", Reason: "BEFORE_CREDENTIAL",
			Description: "collected_at lies before this kiosk's credential was issued (allowing " + s.cfg.KioskClockGrace.String() +
				" for a clock that is behind); check the kiosk's clock"})
	}
	return nil
}

// checkUnit checks the unit a (non-kiosk) response names: it must be
// registered (UNKNOWN_UNIT), in the caller's provinces (UNIT_OUT_OF_SCOPE),
// and the province the response is counted for must be, today, the unit's
// province (UNIT_PROVINCE_MISMATCH): a response collected before the 2025
// merger in a province that merged into the unit's province is the unit's.
// The unit is read from the store's in-memory registry, not the database.
func (s *Server) checkUnit(p *Principal, acc *sipas.Accepted) error {
	id := acc.Response.UnitID
	u, ok := s.cfg.Store.Unit(id)
	if !ok {
		return &sipas.Error{Kind: sipas.KindFailedPrecondition, Op: opAccept, Reason: "UNKNOWN_UNIT",
			Message: "unit " + quote(id) + " is not registered",
			Violations: []sipas.Violation{{Field: "unit_id", Reason: "UNKNOWN_UNIT",
				Description: "unit " + quote(id) + " is not registered; an administrator registers units (sipas admin units create), or leave unit_id empty"}}}
	}
	if p != nil && p.Role != sipasv1.Role_ROLE_ADMIN && !p.All && !s.inScopeCurrent(p, u.ProvinceCode) {
		return &sipas.Error{Kind: sipas.KindPermissionDenied, Op: opAccept, Reason: "UNIT_OUT_OF_SCOPE",
			Message: "unit " + quote(id) + " is in a province outside this credential's scope",
			Violations: []sipas.Violation{{Field: "unit_id", Reason: "UNIT_OUT_OF_SCOPE",
				Description: "unit " + quote(id) + " is in province " + u.ProvinceCode + ", outside this credential's provinces"}}}
	}
	// Units are registered in a province valid at the time, so the first
	// comparison decides; the second covers a unit whose province has since
	// merged into another.
	if cur := s.cfg.Registry.Current(acc.Province); cur == nil || (cur.Code != u.ProvinceCode && cur.Code != s.currentCode(u.ProvinceCode)) {
		return &sipas.Error{Kind: sipas.KindInvalid, Op: opAccept, Reason: "UNIT_PROVINCE_MISMATCH",
			Message: "unit " + quote(id) + " is not a unit of the response's province",
			Violations: []sipas.Violation{{Field: "unit_id", Reason: "UNIT_PROVINCE_MISMATCH",
				Description: "unit " + quote(id) + " is registered in province " + u.ProvinceCode + "; this response is counted for province " +
					acc.Province.Code + " (" + acc.Province.NameVi + ")"}}}
	}
	return nil
}

// currentCode returns the code of the province that code (a province valid
// today, or one merged into it) is part of today.
func (s *Server) currentCode(code string) string {
	if prov, _, err := s.cfg.Registry.Resolve(code, s.cfg.Now()); err == nil {
		return s.cfg.Registry.Current(prov).Code
	}
	return code
}

func (s *Server) countRefusal(ch sipas.Channel, err error) {
	reason := "INTERNAL"
	var de *sipas.Error
	if errors.As(err, &de) {
		reason = de.Reason
		if len(de.Violations) > 0 {
			reason = de.Violations[0].Reason
		}
	}
	s.metrics.ResponsesIngested.WithLabelValues(channelLabel(ch), "rejected").Inc()
	s.metrics.Refusals.WithLabelValues(reason).Inc()
}

// channelLabels are the channel metric labels, by channel.
var channelLabels = func() map[sipas.Channel]string {
	m := map[sipas.Channel]string{}
	for _, ch := range sipas.Channels {
		m[ch] = strings.ToLower(strings.TrimPrefix(sipasv1.Channel(ch).String(), "CHANNEL_"))
	}
	return m
}()

// channelLabel bounds the channel metric label to the known set.
func channelLabel(ch sipas.Channel) string {
	if l, ok := channelLabels[ch]; ok {
		return l
	}
	return "unspecified"
}

// maxChunksInFlight is how many chunks of one upload may be committing (or
// queued for the writer) while the next one fills up: with two, the next
// chunk is prepared and queued while the writer commits the previous one,
// so the writer never waits for it.
const maxChunksInFlight = 2

// UploadBatch reads items, validates each, commits them in chunks and
// acknowledges every chunk as it commits. Reading and validating the next
// chunk overlaps with the commits of the previous ones; at most
// maxChunksInFlight chunks are committing at a time and the next is read
// only while they are, so HTTP/2 flow control holds the sender back and
// server memory stays bounded by maxChunksInFlight+1 chunks whatever the
// size of the batch.
//
// A stream cannot be held open for free: it takes one of a bounded number
// of slots (per credential and in total); it ends when no item arrives for
// StreamIdleTimeout (messages without items do not count), when the client
// does not take an acknowledgement within StreamSendTimeout, and within
// CredentialRecheck of its credential being revoked or expiring. Items not
// yet committed when it ends that way are not stored.
func (h *surveyService) UploadBatch(stream sipasv1.SurveyService_UploadBatchServer) error {
	s := h.s
	ctx := stream.Context()
	p := principalFrom(ctx)
	credentialID := ""
	if p != nil {
		credentialID = p.CredentialID
	}
	release, err := s.streams.acquire(credentialID)
	if err != nil {
		return toStatus(ctx, s.log, err)
	}
	defer release()
	s.metrics.UploadStreamsOpen.Inc()
	defer s.metrics.UploadStreamsOpen.Dec()

	type received struct {
		req *sipasv1.UploadBatchRequest
		err error
	}
	in := make(chan received)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			req, err := stream.Recv()
			select {
			case in <- received{req, err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()

	// send sends one message, waiting at most StreamSendTimeout for the
	// client to take it. On a timeout the handler returns, which ends the
	// stream and so the blocked Send; sends are one at a time, so at most
	// one goroutine is left waiting for that.
	sendTimer := time.NewTimer(time.Hour)
	sendTimer.Stop()
	defer sendTimer.Stop()
	send := func(m *sipasv1.UploadBatchResponse) error {
		sent := make(chan error, 1)
		go func() { sent <- stream.Send(m) }()
		sendTimer.Reset(s.cfg.StreamSendTimeout)
		defer sendTimer.Stop()
		select {
		case err := <-sent:
			return err
		case <-sendTimer.C:
			return toStatus(ctx, s.log, &sipas.Error{Kind: sipas.KindResourceExhausted, Reason: "STREAM_SEND_TIMEOUT",
				Message: "the client did not read acknowledgements for " + s.cfg.StreamSendTimeout.String() + "; the stream is ended"})
		}
	}

	summary := &sipasv1.BatchSummary{}
	source := sipas.Source{CredentialID: credentialID}
	// amend and amendReason come from the messages up to the first one
	// with items.
	amend, amendReason := false, ""
	var (
		chunkNo  int64
		cur      = &uploadChunk{}
		inflight []*uploadChunk // committing, oldest first, while cur fills up
	)
	// acknowledge fills in the outcomes of the oldest chunk in flight, which
	// has committed, and sends its acknowledgement; acknowledgements go out
	// in chunk order.
	acknowledge := func(err error) error {
		c := inflight[0]
		inflight[0] = nil
		inflight = inflight[1:]
		if err != nil {
			return toStatus(ctx, s.log, err)
		}
		s.recordOutcomes(c, summary)
		chunkNo++
		return send(&sipasv1.UploadBatchResponse{Kind: &sipasv1.UploadBatchResponse_Chunk{
			Chunk: &sipasv1.ChunkAck{Chunk: chunkNo, Results: c.results}}})
	}
	// waitUntil acknowledges chunks in order until at most n are in flight.
	waitUntil := func(n int) error {
		for len(inflight) > n {
			if err := acknowledge(<-inflight[0].done); err != nil {
				return err
			}
		}
		return nil
	}
	// flush starts committing the current chunk, behind those in flight.
	flush := func() error {
		if len(cur.results) == 0 {
			return nil
		}
		if err := waitUntil(maxChunksInFlight - 1); err != nil {
			return err
		}
		c := cur
		cur = &uploadChunk{}
		c.done = make(chan error, 1)
		inflight = append(inflight, c)
		go func() {
			var err error
			if len(c.accepted) > 0 {
				c.inserted, err = s.cfg.Store.Insert(ctx, c.accepted)
			}
			if err == nil && amend {
				err = s.amendConflicts(ctx, p, amendReason, c)
			}
			c.done <- err
		}()
		return nil
	}
	// drain commits everything pending and waits for it.
	drain := func() error {
		if err := flush(); err != nil {
			return err
		}
		return waitUntil(0)
	}

	idle := time.NewTimer(s.cfg.StreamIdleTimeout)
	defer idle.Stop()
	recheck := time.NewTicker(s.cfg.CredentialRecheck)
	defer recheck.Stop()
	var chunkTimer <-chan time.Time
	sentBatchID := ""
	for {
		var committed <-chan error
		if len(inflight) > 0 {
			committed = inflight[0].done
		}
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case err := <-committed:
			if err := acknowledge(err); err != nil {
				return err
			}
		case <-recheck.C:
			if p == nil {
				continue
			}
			active, err := s.auth.stillActive(ctx, p)
			if err != nil {
				s.log.WarnContext(ctx, "upload stream: credential re-check failed", "err", err)
				continue
			}
			if !active {
				s.auth.forget(p.CredentialID)
				return toStatus(ctx, s.log, &sipas.Error{Kind: sipas.KindUnauthenticated, Reason: "CREDENTIAL_ENDED",
					Message: "the credential of this upload stream was revoked or has expired; items not acknowledged are not stored"})
			}
		case <-idle.C:
			if err := drain(); err != nil {
				return err
			}
			return status.Errorf(codes.DeadlineExceeded, "upload stream sent no item for %s; acknowledged chunks are stored, resend the rest", s.cfg.StreamIdleTimeout)
		case <-chunkTimer:
			chunkTimer = nil
			if err := flush(); err != nil {
				return err
			}
		case m := <-in:
			if m.err == io.EOF {
				if err := drain(); err != nil {
					return err
				}
				return send(&sipasv1.UploadBatchResponse{Kind: &sipasv1.UploadBatchResponse_Summary{Summary: summary}})
			}
			if m.err != nil {
				return m.err
			}
			if sentBatchID == "" {
				sentBatchID = m.req.GetBatchId()
			}
			if summary.BatchId == "" && m.req.GetAmend() {
				amend, amendReason = true, m.req.GetAmendReason()
			}
			items := m.req.GetItems()
			if len(items) == 0 {
				continue // keeps nothing alive: only items reset the idle timer
			}
			idle.Reset(s.cfg.StreamIdleTimeout)
			if summary.BatchId == "" {
				id, err := batchID(sentBatchID)
				if err != nil {
					return toStatus(ctx, s.log, err)
				}
				summary.BatchId, source.BatchID = id, id
				if amend {
					if err := checkReason("amend_reason", amendReason, false); err != nil {
						return toStatus(ctx, s.log, err)
					}
				}
			}
			for _, item := range items {
				summary.Received++
				if summary.Received > int64(s.cfg.StreamMaxItems) {
					if err := drain(); err != nil {
						return err
					}
					return toStatus(ctx, s.log, &sipas.Error{Kind: sipas.KindResourceExhausted, Reason: "STREAM_ITEM_LIMIT",
						Message: "an upload stream may carry at most " + itoa(s.cfg.StreamMaxItems) + " items; acknowledged chunks are stored, send the rest in a new stream"})
				}
				s.takeItem(p, source, item, cur)
				if len(cur.results) >= s.cfg.ChunkItems {
					chunkTimer = nil
					if err := flush(); err != nil {
						return err
					}
				}
			}
			if len(cur.results) > 0 && chunkTimer == nil {
				chunkTimer = time.After(s.cfg.ChunkDelay)
			}
		}
	}
}

var reBatchID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// batchID returns the id responses of a stream are stored with: the
// client's batch id (a UUID for the client library), or a new one when the
// client named none.
func batchID(sent string) (string, error) {
	if sent == "" {
		return uuid.Must(uuid.NewV7()).String(), nil
	}
	if !reBatchID.MatchString(sent) {
		return "", sipas.Invalid("upload batch", sipas.Violation{Field: "batch_id", Reason: "INVALID_BATCH_ID",
			Description: "batch_id must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', ':', '-' (a UUID is best)"})
	}
	return sent, nil
}

// uploadChunk is the items of one upload chunk and, once committed, their
// store results.
type uploadChunk struct {
	results  []*sipasv1.ItemResult // every item, in the order received
	accepted []*sipas.Accepted     // the valid items
	slots    []int                 // index in results of each accepted item
	channels []sipas.Channel       // channel of each accepted item
	inserted []store.InsertResult  // store outcome of each accepted item
	amended  []bool                // uploads with amend: the item amended a stored response
	done     chan error            // the commit's error, once done
}

// takeItem validates one batch item into the chunk.
func (s *Server) takeItem(p *Principal, src sipas.Source, item *sipasv1.BatchItem, c *uploadChunk) {
	r := responseFromProto(item.GetResponse())
	res := &sipasv1.ItemResult{Line: item.GetLine(), ResponseId: r.ID}
	c.results = append(c.results, res)
	if item.GetResponse() == nil {
		err := sipas.Invalid("upload batch", sipas.Violation{Field: "item.response", Reason: "REQUIRED", Description: "a response is required"})
		fillRejected(res, err)
		s.countRefusal(r.Channel, err)
		return
	}
	if err := checkTimestamps(item.GetResponse()); err != nil {
		fillRejected(res, err)
		s.countRefusal(r.Channel, err)
		return
	}
	acc, err := s.accept(p, r)
	if err != nil {
		fillRejected(res, err)
		s.countRefusal(r.Channel, err)
		return
	}
	acc.Source = src
	// From here the answers are acc.Answers, one byte per item: drop the
	// client's form (a map of up to 106 entries costs kilobytes), which a
	// chunk would otherwise hold until it commits.
	r.Answers, r.Packed = nil, nil
	res.ResponseId, res.ProvinceCode, res.Warnings = acc.Response.ID, acc.Province.Code, acc.Warnings
	c.slots = append(c.slots, len(c.results)-1)
	c.accepted = append(c.accepted, acc)
	c.channels = append(c.channels, r.Channel)
}

// recordOutcomes fills in the outcomes of a committed chunk and counts them.
func (s *Server) recordOutcomes(c *uploadChunk, summary *sipasv1.BatchSummary) {
	// Counted per channel and outcome, then added once each.
	type key struct {
		ch      sipas.Channel
		outcome string
	}
	counts := map[key]int{}
	for i, r := range c.inserted {
		res := c.results[c.slots[i]]
		switch {
		case r.Err != nil:
			fillRejected(res, r.Err)
			s.countRefusal(c.channels[i], r.Err)
		case r.Duplicate:
			res.Outcome = sipasv1.ItemOutcome_ITEM_OUTCOME_DUPLICATE
			counts[key{c.channels[i], "duplicate"}]++
		case c.amended != nil && c.amended[i]:
			res.Outcome = sipasv1.ItemOutcome_ITEM_OUTCOME_AMENDED
			s.metrics.Corrections.WithLabelValues("amendment", "applied").Inc()
		default:
			res.Outcome = sipasv1.ItemOutcome_ITEM_OUTCOME_ACCEPTED
			counts[key{c.channels[i], "accepted"}]++
		}
	}
	for k, n := range counts {
		s.metrics.ResponsesIngested.WithLabelValues(channelLabel(k.ch), k.outcome).Add(float64(n))
	}
	for _, res := range c.results {
		switch res.Outcome {
		case sipasv1.ItemOutcome_ITEM_OUTCOME_ACCEPTED:
			summary.Accepted++
		case sipasv1.ItemOutcome_ITEM_OUTCOME_DUPLICATE:
			summary.Duplicate++
		case sipasv1.ItemOutcome_ITEM_OUTCOME_AMENDED:
			summary.Amended++
		default:
			summary.Rejected++
		}
	}
}

// fillRejected records a refusal in an item result: reason, field and a
// message that names the field but never a demographic value.
func fillRejected(res *sipasv1.ItemResult, err error) {
	res.Outcome = sipasv1.ItemOutcome_ITEM_OUTCOME_REJECTED
	var de *sipas.Error
	if !errors.As(err, &de) || de.Kind == sipas.KindOther {
		res.Reason, res.Message = "INTERNAL", "internal error; resend this item"
		return
	}
	res.Reason, res.Message = de.Reason, de.Message
	if len(de.Violations) > 0 {
		v := de.Violations[0]
		res.Reason, res.Field = v.Reason, v.Field
		var parts []string
		for _, v := range de.Violations {
			parts = append(parts, v.Field+": "+v.Description)
		}
		res.Message = strings.Join(parts, "; ")
	}
	res.Message = truncateMessage(res.Message)
}

// maxItemMessage bounds the message of a rejected item, which names every
// bad field: it bounds what an upload chunk of rejected items holds in
// memory and sends back.
const maxItemMessage = 1024

// truncateMessage cuts m to at most maxItemMessage bytes, at a rune
// boundary, marking the cut.
func truncateMessage(m string) string {
	if len(m) <= maxItemMessage {
		return m
	}
	cut := maxItemMessage - len("…")
	for cut > 0 && !utf8.RuneStart(m[cut]) {
		cut--
	}
	return m[:cut] + "…"
}
