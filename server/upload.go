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
	u := &uploadSession{s: s, ctx: ctx, stream: stream, p: p, source: sipas.Source{CredentialID: credentialID},
		summary: &sipasv1.BatchSummary{}, cur: &uploadChunk{}, sendTimer: time.NewTimer(time.Hour)}
	u.sendTimer.Stop()
	defer u.sendTimer.Stop()
	return u.run()
}

// uploadSession is one UploadBatch stream. Everything in it belongs to the
// stream's handler goroutine (run), except what the two kinds of helper
// goroutines touch: the receiver (receive) only calls stream.Recv and
// hands messages over a channel, and each chunk's commit goroutine (flush)
// only writes its own uploadChunk and then its done channel, after which
// the handler owns the chunk again.
type uploadSession struct {
	s      *Server
	ctx    context.Context
	stream sipasv1.SurveyService_UploadBatchServer
	p      *Principal // nil without authentication
	source sipas.Source
	// summary counts every item; summary.BatchId is set by the first
	// message with items.
	summary *sipasv1.BatchSummary
	// sentBatchID is the client's batch id, from the first message naming
	// one; amend and amendReason come from the messages up to the first
	// with items.
	sentBatchID string
	amend       bool
	amendReason string

	chunkNo    int64          // chunks acknowledged
	cur        *uploadChunk   // filling up
	inflight   []*uploadChunk // committing, oldest first, while cur fills up
	chunkTimer <-chan time.Time
	sendTimer  *time.Timer
}

// received is a message (or the error ending the stream) from the client.
type received struct {
	req *sipasv1.UploadBatchRequest
	err error
}

// receive passes the client's messages to in until the stream ends or done
// is closed.
func (u *uploadSession) receive(in chan<- received, done <-chan struct{}) {
	for {
		req, err := u.stream.Recv()
		select {
		case in <- received{req, err}:
		case <-done:
			return
		}
		if err != nil {
			return
		}
	}
}

// run serves the stream until it ends.
func (u *uploadSession) run() error {
	s, ctx := u.s, u.ctx
	in := make(chan received)
	done := make(chan struct{})
	defer close(done)
	go u.receive(in, done)

	idle := time.NewTimer(s.cfg.StreamIdleTimeout)
	defer idle.Stop()
	recheck := time.NewTicker(s.cfg.CredentialRecheck)
	defer recheck.Stop()
	for {
		var committed <-chan error
		if len(u.inflight) > 0 {
			committed = u.inflight[0].done
		}
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case err := <-committed:
			if err := u.acknowledge(err); err != nil {
				return err
			}
		case <-recheck.C:
			if err := u.recheckCredential(); err != nil {
				return err
			}
		case <-idle.C:
			if err := u.drain(); err != nil {
				return err
			}
			return status.Errorf(codes.DeadlineExceeded, "upload stream sent no item for %s; acknowledged chunks are stored, resend the rest", s.cfg.StreamIdleTimeout)
		case <-u.chunkTimer:
			u.chunkTimer = nil
			if err := u.flush(); err != nil {
				return err
			}
		case m := <-in:
			if m.err == io.EOF {
				if err := u.drain(); err != nil {
					return err
				}
				return u.send(&sipasv1.UploadBatchResponse{Kind: &sipasv1.UploadBatchResponse_Summary{Summary: u.summary}})
			}
			if m.err != nil {
				return m.err
			}
			if len(m.req.GetItems()) > 0 {
				idle.Reset(s.cfg.StreamIdleTimeout) // only items keep the stream alive
			}
			if err := u.take(m.req); err != nil {
				return err
			}
		}
	}
}

// recheckCredential ends the stream once its credential is revoked or has
// expired. A failed check is logged and leaves the stream open.
func (u *uploadSession) recheckCredential() error {
	s, ctx, p := u.s, u.ctx, u.p
	if p == nil {
		return nil
	}
	active, err := s.auth.stillActive(ctx, p)
	if err != nil {
		s.log.WarnContext(ctx, "upload stream: credential re-check failed", "err", err)
		return nil
	}
	if !active {
		s.auth.forget(p.CredentialID)
		return toStatus(ctx, s.log, &sipas.Error{Kind: sipas.KindUnauthenticated, Reason: "CREDENTIAL_ENDED",
			Message: "the credential of this upload stream was revoked or has expired; items not acknowledged are not stored"})
	}
	return nil
}

// take handles one message of the client: its batch id and amend fields,
// and its items, validated into the current chunk, which is committed when
// full (or ChunkDelay after its first item).
func (u *uploadSession) take(req *sipasv1.UploadBatchRequest) error {
	s, ctx := u.s, u.ctx
	if u.sentBatchID == "" {
		u.sentBatchID = req.GetBatchId()
	}
	if u.summary.BatchId == "" && req.GetAmend() {
		u.amend, u.amendReason = true, req.GetAmendReason()
	}
	items := req.GetItems()
	if len(items) == 0 {
		return nil
	}
	if u.summary.BatchId == "" {
		id, err := batchID(u.sentBatchID)
		if err != nil {
			return toStatus(ctx, s.log, err)
		}
		u.summary.BatchId, u.source.BatchID = id, id
		if u.amend {
			if err := checkReason("amend_reason", u.amendReason, false); err != nil {
				return toStatus(ctx, s.log, err)
			}
		}
	}
	for _, item := range items {
		u.summary.Received++
		if u.summary.Received > int64(s.cfg.StreamMaxItems) {
			if err := u.drain(); err != nil {
				return err
			}
			return toStatus(ctx, s.log, &sipas.Error{Kind: sipas.KindResourceExhausted, Reason: "STREAM_ITEM_LIMIT",
				Message: "an upload stream may carry at most " + itoa(s.cfg.StreamMaxItems) + " items; acknowledged chunks are stored, send the rest in a new stream"})
		}
		s.takeItem(u.p, u.source, item, u.cur)
		if len(u.cur.results) >= s.cfg.ChunkItems {
			u.chunkTimer = nil
			if err := u.flush(); err != nil {
				return err
			}
		}
	}
	if len(u.cur.results) > 0 && u.chunkTimer == nil {
		u.chunkTimer = time.After(s.cfg.ChunkDelay)
	}
	return nil
}

// send sends one message, waiting at most StreamSendTimeout for the client
// to take it. On a timeout the handler returns, which ends the stream and
// so the blocked Send; sends are one at a time, so at most one goroutine is
// left waiting for that.
func (u *uploadSession) send(m *sipasv1.UploadBatchResponse) error {
	s := u.s
	sent := make(chan error, 1)
	go func() { sent <- u.stream.Send(m) }()
	u.sendTimer.Reset(s.cfg.StreamSendTimeout)
	defer u.sendTimer.Stop()
	select {
	case err := <-sent:
		return err
	case <-u.sendTimer.C:
		return toStatus(u.ctx, s.log, &sipas.Error{Kind: sipas.KindResourceExhausted, Reason: "STREAM_SEND_TIMEOUT",
			Message: "the client did not read acknowledgements for " + s.cfg.StreamSendTimeout.String() + "; the stream is ended"})
	}
}

// acknowledge fills in the outcomes of the oldest chunk in flight, which
// has committed with err, and sends its acknowledgement; acknowledgements
// go out in chunk order.
func (u *uploadSession) acknowledge(err error) error {
	c := u.inflight[0]
	u.inflight[0] = nil
	u.inflight = u.inflight[1:]
	if err != nil {
		return toStatus(u.ctx, u.s.log, err)
	}
	u.s.recordOutcomes(c, u.summary)
	u.chunkNo++
	return u.send(&sipasv1.UploadBatchResponse{Kind: &sipasv1.UploadBatchResponse_Chunk{
		Chunk: &sipasv1.ChunkAck{Chunk: u.chunkNo, Results: c.results}}})
}

// waitUntil acknowledges chunks in order until at most n are in flight.
func (u *uploadSession) waitUntil(n int) error {
	for len(u.inflight) > n {
		if err := u.acknowledge(<-u.inflight[0].done); err != nil {
			return err
		}
	}
	return nil
}

// flush starts committing the current chunk, behind those in flight.
func (u *uploadSession) flush() error {
	if len(u.cur.results) == 0 {
		return nil
	}
	if err := u.waitUntil(maxChunksInFlight - 1); err != nil {
		return err
	}
	c := u.cur
	u.cur = &uploadChunk{}
	c.done = make(chan error, 1)
	u.inflight = append(u.inflight, c)
	s, ctx, p, amend, reason := u.s, u.ctx, u.p, u.amend, u.amendReason
	go func() {
		var err error
		if len(c.accepted) > 0 {
			c.inserted, err = s.cfg.Store.Insert(ctx, c.accepted)
		}
		if err == nil && amend {
			err = s.amendConflicts(ctx, p, reason, c)
		}
		c.done <- err
	}()
	return nil
}

// drain commits everything pending and waits for it.
func (u *uploadSession) drain() error {
	if err := u.flush(); err != nil {
		return err
	}
	return u.waitUntil(0)
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
