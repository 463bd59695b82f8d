package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/sipas-vn/sipas"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// Backoff computes retry delays: exponential from Initial, capped at Max,
// with full jitter in [d/2, d].
type Backoff struct {
	Initial, Max time.Duration
}

// Delay returns the delay before retry number attempt (1-based).
func (b Backoff) Delay(attempt int) time.Duration {
	ini, max := b.Initial, b.Max
	if ini <= 0 {
		ini = 500 * time.Millisecond
	}
	if max <= 0 {
		max = 30 * time.Second
	}
	d := ini
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// SubmitResult is the server's acknowledgement of one response.
type SubmitResult struct {
	ResponseID   string
	Duplicate    bool
	ProvinceCode string
	Warnings     []string
}

// Submit sends one response, retrying indeterminate outcomes (unavailable,
// deadline, rate limit, internal) with backoff and jitter up to attempts
// times (0 means 5). Retrying is safe: the response id makes the write
// idempotent. A definite refusal (Definite) is returned at once. A response
// without an id gets a UUIDv7 first, so retries reuse it.
func (c *Client) Submit(ctx context.Context, r *sipas.Response, attempts int, bo Backoff) (*SubmitResult, error) {
	if err := assignID(r); err != nil {
		return nil, err
	}
	if attempts <= 0 {
		attempts = 5
	}
	req := &sipasv1.SubmitResponseRequest{Response: c.WireResponse(ctx, r)}
	var last error
	for i := 1; ; i++ {
		cctx, cancel := c.WithTimeout(ctx)
		resp, err := c.Survey.SubmitResponse(cctx, req)
		cancel()
		if err == nil {
			return &SubmitResult{ResponseID: resp.ResponseId, Duplicate: resp.Duplicate, ProvinceCode: resp.ProvinceCode, Warnings: resp.Warnings}, nil
		}
		last = FromStatus(err)
		if Definite(last) || i >= attempts || ctx.Err() != nil {
			return nil, last
		}
		if err := sleep(ctx, retryAfter(bo, i, last)); err != nil {
			return nil, last
		}
	}
}

// BatchItem is one response of an upload with its line in the source file.
type BatchItem struct {
	Line     int64
	Response *sipas.Response
}

// UploadOptions tune Client.Upload.
type UploadOptions struct {
	// BatchID names the upload in server logs; empty means a new UUIDv7.
	BatchID string
	// Window bounds the items sent but not yet acknowledged (and so the
	// items held in memory for a resend). Default 10000 (keep it above three
	// of the server's chunks of 2000, so that chunks overlap); at least 1.
	Window int
	// MaxStreamItems is how many items one stream carries before the client
	// closes it and opens the next (the server caps a stream). Default 100 000.
	MaxStreamItems int
	// Attempts is how many times in a row a broken stream is reopened
	// without any acknowledgement in between. Default 6.
	Attempts int
	// Backoff between reconnects (default 0.5 s doubling to 30 s).
	Backoff Backoff
	// IdleTimeout: a stream that acknowledges nothing for this long while
	// items are outstanding is abandoned and resumed. Default 2 min.
	IdleTimeout time.Duration
	// Progress, when set, is called after every acknowledged chunk (from
	// the receiving goroutine; keep it quick).
	Progress func(UploadProgress)
	// OnRetry, when set, is told about each reconnect.
	OnRetry func(attempt int, delay time.Duration, err error)
	// Amend re-uploads a corrected file: an item whose response_id is
	// stored with other content (sent by this credential) replaces it as a
	// new version instead of being refused as RESPONSE_ID_CONFLICT.
	// AmendReason (required with Amend) is kept in the audit log. The
	// summary then lists every row's outcome (Rows).
	Amend       bool
	AmendReason string
}

// UploadProgress is the state of an upload so far.
type UploadProgress struct {
	Sent, Acknowledged, Accepted, Duplicate, Rejected, Amended int64
	// Resent counts items sent again after a broken stream.
	Resent int64
}

// ItemRejection is one refused item.
type ItemRejection struct {
	Line       int64  `json:"line"`
	ResponseID string `json:"response_id,omitempty"`
	Reason     string `json:"reason"`
	Field      string `json:"field,omitempty"`
	Message    string `json:"message"`
}

// RowOutcome is what an upload with Amend did with one row: "new"
// (stored now), "amended" (replaced the stored version), "unchanged" (the
// stored version already had this content) or "rejected".
type RowOutcome struct {
	Line       int64  `json:"line"`
	ResponseID string `json:"response_id,omitempty"`
	Outcome    string `json:"outcome"`
}

// UploadSummary is the outcome of an upload.
type UploadSummary struct {
	BatchID   string `json:"batch_id"`
	Items     int64  `json:"items"`
	Accepted  int64  `json:"accepted"`
	Duplicate int64  `json:"duplicate"`
	Rejected  int64  `json:"rejected"`
	// Amended counts the items that replaced a stored response (Amend).
	Amended int64           `json:"amended"`
	Rejects []ItemRejection `json:"rejections"`
	// Rows is every row's outcome, in acknowledgement order, with Amend only.
	Rows []RowOutcome `json:"rows,omitempty"`
	// Warnings are the server's notes (e.g. a retired province attributed
	// to its successor), with the line they belong to.
	Warnings []string `json:"warnings,omitempty"`
	// Streams is how many streams were opened; Resent how many items were
	// sent again after a break.
	Streams  int           `json:"streams"`
	Resent   int64         `json:"resent"`
	Duration time.Duration `json:"-"`
}

// UploadSlice adapts a slice for Upload.
func UploadSlice(items []BatchItem) iter.Seq[BatchItem] {
	return func(yield func(BatchItem) bool) {
		for _, it := range items {
			if !yield(it) {
				return
			}
		}
	}
}

// UploadChan adapts a channel for Upload; the upload ends when ch is closed.
func UploadChan(ch <-chan BatchItem) iter.Seq[BatchItem] {
	return func(yield func(BatchItem) bool) {
		for it := range ch {
			if !yield(it) {
				return
			}
		}
	}
}

type pendingItem struct {
	item BatchItem
	msg  *sipasv1.BatchItem
	size int // encoded size of msg
}

// uploader is the state of one Upload across its streams.
type uploader struct {
	c    *Client
	ctx  context.Context // the Upload's, for fetching item orders
	opts UploadOptions
	feed <-chan pendingItem // the source's items, encoded ahead by the feeder
	sum  *UploadSummary
	prog UploadProgress

	mu      sync.Mutex
	pending []pendingItem // sent on the current stream, not yet acknowledged, in order
	requeue []pendingItem // to send first on the next stream
	held    *pendingItem  // taken from the source, next to send: it did not fit the last message
	done    bool          // the source is exhausted
}

// Upload streams items through UploadBatch and returns the outcome of every
// item. It sends without waiting per item (the server acknowledges chunks of
// 2000), items that are ready together in one message (up to 128), reads and
// encodes the source on a goroutine of its own ahead of sending (so the
// source is iterated on another goroutine; it is not called after Upload
// returns), keeps at most Window unacknowledged items in memory, and when a
// stream breaks (an indeterminate failure) reopens one and resends exactly
// the items not yet acknowledged, with backoff, up to Attempts times in a
// row without progress. Resending is safe: an item already stored comes back
// as duplicate. A definite failure of the stream itself (e.g. the credential
// is refused) ends the upload with that error; the summary then holds what
// was acknowledged before it.
func (c *Client) Upload(ctx context.Context, items iter.Seq[BatchItem], opts UploadOptions) (*UploadSummary, error) {
	start := time.Now()
	if opts.Window <= 0 {
		opts.Window = 10000
	}
	if opts.MaxStreamItems <= 0 {
		opts.MaxStreamItems = 100_000
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 6
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 2 * time.Minute
	}
	if opts.BatchID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return nil, err
		}
		opts.BatchID = id.String()
	}
	feed := make(chan pendingItem, feedAhead)
	quit, feederDone := make(chan struct{}), make(chan struct{})
	defer func() {
		close(quit)
		<-feederDone // no call into the source after Upload returns
	}()
	u := &uploader{c: c, ctx: ctx, opts: opts, feed: feed, sum: &UploadSummary{BatchID: opts.BatchID, Rejects: []ItemRejection{}}}
	go func() {
		defer close(feederDone)
		u.runFeeder(items, feed, quit)
	}()
	failures := 0
	for {
		progressed, err := u.stream(ctx)
		u.sum.Streams++
		if err == nil {
			u.mu.Lock()
			finished := u.done && u.held == nil && len(u.requeue) == 0 && len(u.pending) == 0
			u.mu.Unlock()
			if finished {
				break
			}
			// The stream closed cleanly after MaxStreamItems, or items the
			// server could not store this time wait for a resend.
			if progressed {
				failures = 0
			}
			failures++
			if failures > opts.Attempts {
				u.sum.Duration = time.Since(start)
				return u.sum, errors.New("the server could not store some items after repeated attempts; run again to resend them")
			}
			continue
		}
		if ctx.Err() != nil {
			u.sum.Duration = time.Since(start)
			return u.sum, ctx.Err()
		}
		err = FromStatus(err)
		if Definite(err) {
			u.sum.Duration = time.Since(start)
			return u.sum, err
		}
		if progressed {
			failures = 0
		}
		failures++
		if failures >= opts.Attempts {
			u.sum.Duration = time.Since(start)
			return u.sum, fmt.Errorf("upload interrupted %d times in a row; acknowledged items are stored, run again to resend the rest: %w", failures, err)
		}
		d := retryAfter(opts.Backoff, failures, err)
		if opts.OnRetry != nil {
			opts.OnRetry(failures, d, err)
		}
		if serr := sleep(ctx, d); serr != nil {
			u.sum.Duration = time.Since(start)
			return u.sum, serr
		}
	}
	u.sum.Duration = time.Since(start)
	return u.sum, nil
}

// feedAhead is how many items the feeder encodes ahead of the sender, and
// messageItems and messageBytes how many items, and how many bytes of them,
// one stream message carries at most (the server refuses messages over 64
// KiB by default): items ready to go share a message, which saves most of
// the per-message cost of a large upload, and an item that is alone is sent
// at once.
const (
	feedAhead    = 256
	messageItems = 128
	messageBytes = 32 << 10
)

// runFeeder pulls items from the source, encodes them and hands them to the
// sender, so that encoding overlaps with sending. It stops when the source
// is exhausted (closing feed) or when the upload ends (quit): then the next
// item the source yields is its last, and Upload returns after that.
func (u *uploader) runFeeder(items iter.Seq[BatchItem], feed chan<- pendingItem, quit <-chan struct{}) {
	defer close(feed)
	for it := range items {
		msg := &sipasv1.BatchItem{Line: it.Line, Response: u.encode(it.Response)}
		p := pendingItem{item: it, msg: msg, size: proto.Size(msg)}
		select {
		case feed <- p:
		case <-quit:
			return
		}
	}
}

// take returns the next item to send, if it is at most maxSize bytes: a
// requeued one first, then the source's. An item too big stays first in
// line. With wait it waits for the source (or ctx); without, it returns
// false when no item is ready. It also returns false once the source is
// exhausted.
func (u *uploader) take(ctx context.Context, wait bool, maxSize int) (pendingItem, bool) {
	u.mu.Lock()
	if len(u.requeue) > 0 {
		p := u.requeue[0]
		if p.size > maxSize {
			u.mu.Unlock()
			return pendingItem{}, false
		}
		u.requeue[0] = pendingItem{}
		u.requeue = u.requeue[1:]
		u.pending = append(u.pending, p)
		u.prog.Resent++
		u.sum.Resent++
		u.mu.Unlock()
		return p, true
	}
	if u.held != nil {
		p := *u.held
		if p.size > maxSize {
			u.mu.Unlock()
			return pendingItem{}, false
		}
		u.held = nil
		u.pending = append(u.pending, p)
		u.sum.Items++
		u.mu.Unlock()
		return p, true
	}
	if u.done {
		u.mu.Unlock()
		return pendingItem{}, false
	}
	u.mu.Unlock()
	var (
		p  pendingItem
		ok bool
	)
	if wait {
		select {
		case p, ok = <-u.feed:
		case <-ctx.Done():
			return pendingItem{}, false
		}
	} else {
		select {
		case p, ok = <-u.feed:
		default:
			return pendingItem{}, false
		}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if !ok {
		u.done = true
		return pendingItem{}, false
	}
	if p.size > maxSize {
		u.held = &p
		return pendingItem{}, false
	}
	u.pending = append(u.pending, p)
	u.sum.Items++
	return p, true
}

// stream runs one UploadBatch stream. It reports whether any chunk was
// acknowledged. On failure the unacknowledged items move to the requeue.
func (u *uploader) stream(ctx context.Context) (progressed bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer func() {
		u.mu.Lock()
		if len(u.pending) > 0 {
			u.requeue = append(u.pending, u.requeue...)
			u.pending = nil
		}
		u.mu.Unlock()
	}()
	st, err := u.c.Survey.UploadBatch(sctx)
	if err != nil {
		return false, err
	}
	window := make(chan struct{}, u.opts.Window)
	sendDone := make(chan struct{})
	go func() {
		defer close(sendDone)
		defer st.CloseSend()
		first := true
		for n := 0; n < u.opts.MaxStreamItems; {
			// The first item of a message: wait for room in the window and
			// for an item.
			select {
			case window <- struct{}{}:
			case <-sctx.Done():
				return
			}
			p, ok := u.take(sctx, true, math.MaxInt)
			if !ok {
				<-window
				return
			}
			req := &sipasv1.UploadBatchRequest{Items: make([]*sipasv1.BatchItem, 0, messageItems)}
			req.Items = append(req.Items, p.msg)
			size := p.size
			n++
			// More items join the message while they are ready, fit in it
			// and the window has room. An item that does not fit goes first
			// in the next message.
		more:
			for len(req.Items) < messageItems && n < u.opts.MaxStreamItems {
				select {
				case window <- struct{}{}:
				default:
					break more // the window is full
				}
				p, ok := u.take(sctx, false, messageBytes-size)
				if !ok {
					<-window // nothing ready, or too big: give the room back
					break
				}
				req.Items = append(req.Items, p.msg)
				size += p.size
				n++
			}
			if first {
				req.BatchId = u.opts.BatchID
				req.Amend, req.AmendReason = u.opts.Amend, u.opts.AmendReason
				first = false
			}
			if err := st.Send(req); err != nil {
				return // the receiver sees the cause
			}
			u.mu.Lock()
			u.prog.Sent += int64(len(req.Items))
			u.mu.Unlock()
		}
	}()
	defer func() {
		cancel()
		<-sendDone
	}()

	idle := time.AfterFunc(u.opts.IdleTimeout, cancel)
	defer idle.Stop()
	for {
		msg, err := st.Recv()
		if err == io.EOF {
			return progressed, errors.New("upload stream ended without a summary")
		}
		if err != nil {
			return progressed, err
		}
		idle.Reset(u.opts.IdleTimeout)
		switch k := msg.Kind.(type) {
		case *sipasv1.UploadBatchResponse_Chunk:
			progressed = true
			u.ack(k.Chunk.GetResults())
			for range k.Chunk.GetResults() {
				select {
				case <-window:
				default:
				}
			}
		case *sipasv1.UploadBatchResponse_Summary:
			<-sendDone
			u.mu.Lock()
			left := len(u.pending)
			u.mu.Unlock()
			if left > 0 {
				return progressed, fmt.Errorf("upload summary came with %d items unacknowledged", left)
			}
			return progressed, nil
		}
	}
}

// ack applies a chunk acknowledgement to the head of the pending items.
func (u *uploader) ack(results []*sipasv1.ItemResult) {
	u.mu.Lock()
	var retry []pendingItem
	for _, res := range results {
		if len(u.pending) == 0 {
			break
		}
		p := u.pending[0]
		u.pending[0] = pendingItem{}
		u.pending = u.pending[1:]
		u.prog.Acknowledged++
		outcome := ""
		switch res.GetOutcome() {
		case sipasv1.ItemOutcome_ITEM_OUTCOME_ACCEPTED:
			u.prog.Accepted++
			u.sum.Accepted++
			outcome = "new"
		case sipasv1.ItemOutcome_ITEM_OUTCOME_DUPLICATE:
			u.prog.Duplicate++
			u.sum.Duplicate++
			outcome = "unchanged"
		case sipasv1.ItemOutcome_ITEM_OUTCOME_AMENDED:
			u.prog.Amended++
			u.sum.Amended++
			outcome = "amended"
		default:
			if res.GetReason() == "INTERNAL" {
				// The server could not store it this time: not a refusal of
				// the item, so it goes round again.
				u.prog.Acknowledged--
				retry = append(retry, p)
				continue
			}
			u.prog.Rejected++
			u.sum.Rejected++
			line := res.GetLine()
			if line == 0 {
				line = p.item.Line
			}
			u.sum.Rejects = append(u.sum.Rejects, ItemRejection{Line: line, ResponseID: res.GetResponseId(),
				Reason: res.GetReason(), Field: res.GetField(), Message: res.GetMessage()})
			outcome = "rejected"
		}
		if u.opts.Amend {
			u.sum.Rows = append(u.sum.Rows, RowOutcome{Line: p.item.Line, ResponseID: res.GetResponseId(), Outcome: outcome})
		}
		for _, w := range res.GetWarnings() {
			if len(u.sum.Warnings) < 1000 {
				u.sum.Warnings = append(u.sum.Warnings, fmt.Sprintf("line %d: %s", p.item.Line, w))
			}
		}
	}
	if len(retry) > 0 {
		u.requeue = append(u.requeue, retry...)
	}
	prog := u.prog
	u.mu.Unlock()
	if u.opts.Progress != nil {
		u.opts.Progress(prog)
	}
}

// encode converts a response for the stream, in the packed answer form when
// the server gave the questionnaire's item order.
func (u *uploader) encode(r *sipas.Response) *sipasv1.Response {
	if r == nil {
		return nil
	}
	return responseToWire(r, u.c.itemOrder(u.ctx, r.QuestionnaireID))
}

// WireResponse returns the API form in which this client sends r: the
// packed answer form when the server gave the questionnaire's item order,
// else the answer map.
func (c *Client) WireResponse(ctx context.Context, r *sipas.Response) *sipasv1.Response {
	return responseToWire(r, c.itemOrder(ctx, r.QuestionnaireID))
}
