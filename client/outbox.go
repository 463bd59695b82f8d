package client

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	_ "github.com/mattn/go-sqlite3" // the outbox's SQLite driver
	"google.golang.org/protobuf/proto"

	"github.com/sipas-vn/sipas"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// OutboxOptions tune an Outbox.
type OutboxOptions struct {
	// InFlight is how many SubmitResponse calls run at once while draining
	// (default 16). Order is kept per round: a round sends the oldest
	// BatchSize responses, at most InFlight at a time.
	InFlight int
	// BatchSize is how many queued responses one round reads (default 512).
	BatchSize int
	// Backoff after a round with an indeterminate failure (default 0.5 s
	// doubling to 30 s, with jitter).
	Backoff Backoff
	// Poll is how often an idle sender looks at the queue even without a
	// new Submit (default 5 s).
	Poll time.Duration
	// Logf, when set, receives one line per retry or dead letter (never
	// response content).
	Logf func(format string, args ...any)
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Outbox is a kiosk's durable queue of responses: Submit stores a response
// in a local SQLite file (WAL, synchronous=FULL) and returns; a background
// sender drains the queue in order through SubmitResponse. An accepted or
// duplicate response leaves the queue; a definite refusal moves it to the
// dead_letter table with the reason (nothing is ever dropped); anything
// else is retried with exponential backoff and jitter. The queue survives
// restarts: reopening the file resumes the drain, and resending a response
// the server already stored is harmless (it comes back as a duplicate).
type Outbox struct {
	db   *sql.DB
	c    *Client
	opts OutboxOptions

	wake chan struct{}

	mu       sync.Mutex
	cancel   context.CancelFunc
	done     chan struct{}
	lastErr  error
	sent     int64     // acknowledged since open
	lastSent time.Time // when a response was last acknowledged
}

const outboxSchema = `
CREATE TABLE IF NOT EXISTS outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    response_id TEXT    NOT NULL UNIQUE,
    payload     BLOB    NOT NULL,           -- sipas.v1.Response, protobuf
    created_at  INTEGER NOT NULL,           -- unix nanoseconds
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT    NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS dead_letter (
    response_id TEXT    PRIMARY KEY,
    payload     BLOB    NOT NULL,
    created_at  INTEGER NOT NULL,
    failed_at   INTEGER NOT NULL,
    code        TEXT    NOT NULL,           -- error kind, e.g. "invalid"
    reason      TEXT    NOT NULL            -- machine reason and message
);`

// OpenOutbox opens (or creates) the outbox file at path. c may be nil for an
// outbox that only queues (Start then fails). Call Start to begin draining.
func OpenOutbox(path string, c *Client, opts OutboxOptions) (*Outbox, error) {
	if opts.InFlight <= 0 {
		opts.InFlight = 16
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 512
	}
	if opts.Poll <= 0 {
		opts.Poll = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	// The outbox holds citizens' answers: readable by the kiosk's own user
	// only. SQLite gives the -wal and -shm files the mode of the database
	// file, so creating it 0600 first covers them too.
	if err := createPrivate(path); err != nil {
		return nil, fmt.Errorf("opening outbox %s: %w", path, err)
	}
	dsn := fmt.Sprintf("file:%s?mode=rwc&_journal=WAL&_sync=FULL&_busy_timeout=10000&_txlock=immediate",
		strings.ReplaceAll(path, "%", "%25"))
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, err
	}
	// One connection: Submit and the sender take turns, so no SQLITE_BUSY.
	db.SetMaxOpenConns(1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, outboxSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening outbox %s: %w", path, err)
	}
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		db.Close()
		return nil, fmt.Errorf("opening outbox %s: journal mode is %q, want wal (%v)", path, mode, err)
	}
	var syncMode int
	if err := db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&syncMode); err != nil || syncMode != 2 {
		db.Close()
		return nil, fmt.Errorf("opening outbox %s: synchronous is %d, want FULL (2) (%v)", path, syncMode, err)
	}
	return &Outbox{db: db, c: c, opts: opts, wake: make(chan struct{}, 1)}, nil
}

// Submit stores r durably (the commit is fsync'd before Submit returns) and
// wakes the sender. A response without an id gets a UUIDv7 first (written
// back into r.ID). Submitting an id that is already queued is a no-op.
func (o *Outbox) Submit(ctx context.Context, r *sipas.Response) error {
	if r == nil {
		return errors.New("outbox: nil response")
	}
	return o.SubmitBatch(ctx, []*sipas.Response{r})
}

// SubmitBatch stores several responses in one durable transaction (one
// fsync), e.g. when importing responses kept elsewhere. Like Submit, it
// assigns missing ids and ignores ids already queued.
func (o *Outbox) SubmitBatch(ctx context.Context, rs []*sipas.Response) error {
	tx, err := o.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO outbox (response_id, payload, created_at) VALUES (?, ?, ?)
		ON CONFLICT (response_id) DO NOTHING`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	now := o.opts.Now().UnixNano()
	for _, r := range rs {
		if err := assignID(r); err != nil {
			return err
		}
		payload, err := proto.MarshalOptions{Deterministic: true}.Marshal(ResponseToProto(r))
		if err != nil {
			return err
		}
		if _, err := stmt.ExecContext(ctx, r.ID, payload, now); err != nil {
			return fmt.Errorf("outbox: storing response: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("outbox: storing responses: %w", err)
	}
	select {
	case o.wake <- struct{}{}:
	default:
	}
	return nil
}

// Start begins draining in the background. It is a no-op when already started.
func (o *Outbox) Start() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.c == nil {
		return errors.New("outbox: no client to send with")
	}
	if o.cancel != nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	o.cancel, o.done = cancel, make(chan struct{})
	go o.run(ctx, o.done)
	return nil
}

// Close stops the sender without waiting for the queue to drain (queued
// responses stay in the file for the next open) and closes the file.
// Calls in flight are cancelled; their responses stay queued and are
// resent later, which is safe.
func (o *Outbox) Close() error {
	o.mu.Lock()
	cancel, done := o.cancel, o.done
	o.cancel = nil
	o.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	return o.db.Close()
}

// Flush waits until the queue is empty or ctx is done.
func (o *Outbox) Flush(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		depth, _, _ := o.Stats()
		if depth == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("outbox: %d responses still queued: %w", depth, ctx.Err())
		case <-t.C:
		}
	}
}

// Stats returns the number of queued responses, the age of the oldest
// (zero when empty) and the number of dead letters.
func (o *Outbox) Stats() (depth int, oldestPending time.Duration, dead int) {
	var oldest sql.NullInt64
	if err := o.db.QueryRow(`SELECT count(*), min(created_at) FROM outbox`).Scan(&depth, &oldest); err != nil {
		return 0, 0, 0
	}
	if oldest.Valid {
		oldestPending = o.opts.Now().Sub(time.Unix(0, oldest.Int64))
		if oldestPending < 0 {
			oldestPending = 0
		}
	}
	_ = o.db.QueryRow(`SELECT count(*) FROM dead_letter`).Scan(&dead)
	return depth, oldestPending, dead
}

// Acknowledged returns how many responses this Outbox has seen acknowledged
// (accepted or duplicate) since it was opened.
func (o *Outbox) Acknowledged() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.sent
}

// LastSent returns when a response was last acknowledged since open (zero
// if none was).
func (o *Outbox) LastSent() time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.lastSent
}

// LastError returns the last indeterminate error the sender met (nil after
// a fully successful round).
func (o *Outbox) LastError() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.lastErr
}

// DeadLetter is a response the server refused for good.
type DeadLetter struct {
	ResponseID string
	Code       string
	Reason     string
	FailedAt   time.Time
	Response   *sipasv1.Response
}

// DeadLetters lists the dead letters, oldest first.
func (o *Outbox) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	rows, err := o.db.QueryContext(ctx, `SELECT response_id, payload, failed_at, code, reason FROM dead_letter ORDER BY failed_at`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []DeadLetter
	for rows.Next() {
		var d DeadLetter
		var payload []byte
		var at int64
		if err := rows.Scan(&d.ResponseID, &payload, &at, &d.Code, &d.Reason); err != nil {
			return nil, err
		}
		d.FailedAt = time.Unix(0, at)
		d.Response = &sipasv1.Response{}
		if err := proto.Unmarshal(payload, d.Response); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func (o *Outbox) logf(format string, args ...any) {
	if o.opts.Logf != nil {
		o.opts.Logf(format, args...)
	}
}

type queued struct {
	seq     int64
	id      string
	payload []byte
	created int64
}

// outcome of one send.
type sendResult struct {
	q    queued
	err  error // nil: acknowledged
	dead bool
}

func (o *Outbox) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	failures := 0
	for ctx.Err() == nil {
		batch, err := o.head(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			o.logf("outbox: reading queue: %v", err)
			failures++
			_ = sleep(ctx, o.opts.Backoff.Delay(failures))
			continue
		}
		if len(batch) == 0 {
			t := time.NewTimer(o.opts.Poll)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-o.wake:
			case <-t.C:
			}
			t.Stop()
			continue
		}
		results := o.send(ctx, batch)
		indeterminate, firstErr := o.settle(results)
		o.mu.Lock()
		o.lastErr = firstErr
		o.mu.Unlock()
		if indeterminate == 0 {
			failures = 0
			continue
		}
		if ctx.Err() != nil {
			return
		}
		failures++
		d := retryAfter(o.opts.Backoff, failures, firstErr)
		o.logf("outbox: %d of %d responses not acknowledged (%v); retrying in %s", indeterminate, len(batch), firstErr, d.Round(time.Millisecond))
		if sleep(ctx, d) != nil {
			return
		}
	}
}

// head reads the oldest queued responses.
func (o *Outbox) head(ctx context.Context) ([]queued, error) {
	rows, err := o.db.QueryContext(ctx, `SELECT seq, response_id, payload, created_at FROM outbox ORDER BY seq LIMIT ?`, o.opts.BatchSize)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []queued
	for rows.Next() {
		var q queued
		if err := rows.Scan(&q.seq, &q.id, &q.payload, &q.created); err != nil {
			return nil, err
		}
		out = append(out, q)
	}
	return out, rows.Err()
}

// send submits a round with at most InFlight calls at a time. Once one call
// fails indeterminately (the server is likely down) the rest of the round
// is not tried.
func (o *Outbox) send(ctx context.Context, batch []queued) []sendResult {
	results := make([]sendResult, len(batch))
	sem := make(chan struct{}, o.opts.InFlight)
	var wg sync.WaitGroup
	var mu sync.Mutex
	stopped := false
	for i, q := range batch {
		results[i].q = q
		sem <- struct{}{}
		mu.Lock()
		skip := stopped || ctx.Err() != nil
		mu.Unlock()
		if skip {
			<-sem
			results[i].err = errors.New("not sent: an earlier call of the round failed")
			continue
		}
		wg.Add(1)
		go func(i int, q queued) {
			defer wg.Done()
			defer func() { <-sem }()
			err := o.sendOne(ctx, q)
			results[i].err = err
			if err != nil {
				if Definite(err) {
					results[i].dead = true
				} else {
					mu.Lock()
					stopped = true
					mu.Unlock()
				}
			}
		}(i, q)
	}
	wg.Wait()
	return results
}

func (o *Outbox) sendOne(ctx context.Context, q queued) error {
	var r sipasv1.Response
	if err := proto.Unmarshal(q.payload, &r); err != nil {
		// A corrupt row can never be sent: dead-letter it.
		return &sipas.Error{Kind: sipas.KindInvalid, Reason: "CORRUPT_OUTBOX_ROW", Message: "the queued payload cannot be decoded", Err: err}
	}
	// The compact answer form: a tenth of the bytes on a kiosk's poor link.
	packAnswers(&r, o.c.itemOrder(ctx, r.GetQuestionnaireId()))
	cctx, cancel := o.c.WithTimeout(ctx)
	defer cancel()
	_, err := o.c.Survey.SubmitResponse(cctx, &sipasv1.SubmitResponseRequest{Response: &r})
	if err != nil {
		return FromStatus(err)
	}
	return nil
}

// settle records a round's outcomes in one transaction: acknowledged rows
// leave the queue, definite refusals move to dead_letter, the rest stay.
func (o *Outbox) settle(results []sendResult) (indeterminate int, firstErr error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tx, err := o.db.BeginTx(ctx, nil)
	if err != nil {
		return len(results), err
	}
	defer tx.Rollback()
	now := o.opts.Now().UnixNano()
	acked := int64(0)
	for _, r := range results {
		switch {
		case r.err == nil:
			if _, err := tx.Exec(`DELETE FROM outbox WHERE seq = ?`, r.q.seq); err != nil {
				return len(results), err
			}
			acked++
		case r.dead:
			code, reason := deadReason(r.err)
			if _, err := tx.Exec(`INSERT INTO dead_letter (response_id, payload, created_at, failed_at, code, reason) VALUES (?, ?, ?, ?, ?, ?)
				ON CONFLICT (response_id) DO UPDATE SET failed_at = excluded.failed_at, code = excluded.code, reason = excluded.reason`,
				r.q.id, r.q.payload, r.q.created, now, code, reason); err != nil {
				return len(results), err
			}
			if _, err := tx.Exec(`DELETE FROM outbox WHERE seq = ?`, r.q.seq); err != nil {
				return len(results), err
			}
			o.logf("outbox: response %s refused for good (%s: %s); kept in dead_letter", r.q.id, code, reason)
		default:
			indeterminate++
			if firstErr == nil {
				firstErr = r.err
			}
			msg := r.err.Error()
			if len(msg) > 200 {
				msg = msg[:200]
			}
			if _, err := tx.Exec(`UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE seq = ?`, msg, r.q.seq); err != nil {
				return len(results), err
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return len(results), err
	}
	o.mu.Lock()
	o.sent += acked
	if acked > 0 {
		o.lastSent = o.opts.Now()
	}
	o.mu.Unlock()
	return indeterminate, firstErr
}

func deadReason(err error) (code, reason string) {
	var de *sipas.Error
	if !errors.As(err, &de) {
		return "other", err.Error()
	}
	code = de.Kind.String()
	reason = de.Reason
	if len(de.Violations) > 0 {
		var parts []string
		for _, v := range de.Violations {
			parts = append(parts, v.Reason+" "+v.Field+": "+v.Description)
		}
		reason += " " + strings.Join(parts, "; ")
	} else if de.Message != "" {
		reason += " " + de.Message
	}
	return code, strings.TrimSpace(reason)
}

// createPrivate creates the file at path with mode 0600 when it does not
// exist, and takes group and other permissions away when it does.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return f.Chmod(fi.Mode().Perm() &^ 0o077)
	}
	return nil
}
