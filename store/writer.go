package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/sipas-vn/sipas"
)

// The writer goroutine owns the single writer connection. Callers enqueue a
// request and wait; the writer takes everything queued (up to
// Options.MaxBatchItems responses) while the previous commit was flushing,
// commits all the responses in one transaction (one fsync) and hands the
// commit to the applier (applyLoop), which adds it to the aggregates and only
// then answers every caller in it, while the writer begins the next
// transaction. Other writes (units, credentials, audit,
// checkpoints) are requests too, each run in its own transaction, so there
// is never a second write connection.

type reqState int

const (
	stateQueued reqState = iota
	stateTaken
	stateAbandoned
)

// request is one caller's unit of work for the writer.
type request struct {
	// Either items (a response insert) or fn (any other write).
	items   []*prepared
	results []InsertResult
	fn      func(ctx context.Context, c *sql.Conn) error

	err      error // set by the writer before done is closed
	done     chan struct{}
	answered bool // done is closed; touched by whoever answers r
	// handedOff: the writer passed r to the applier, which answers it. Only
	// the writer goroutine touches it.
	handedOff bool
	state     reqState // guarded by Store.qmu
}

func (r *request) size() int {
	if r.fn != nil {
		return 1
	}
	return len(r.items)
}

// WriterStats are counters for metrics.
type WriterStats struct {
	// QueueDepth is the number of responses (plus other write requests)
	// waiting for the writer.
	QueueDepth int
	// Commits counts successful group commits of responses.
	Commits uint64
	// FailedCommits counts response transactions that were rolled back.
	FailedCommits uint64
	// Checkpoints and FailedCheckpoints count checkpoints of the
	// aggregates into the tallies table; CellsWritten the cells they wrote.
	Checkpoints, FailedCheckpoints uint64
	CellsWritten                   uint64
	// Inserted, Duplicates and Conflicts count committed outcomes.
	Inserted, Duplicates, Conflicts uint64
	// LastBatchSize and LastCommit describe the latest successful commit.
	LastBatchSize int
	LastCommit    time.Duration
	// StorageFullAt is when the latest response transaction failed for lack
	// of space (SQLITE_FULL); zero when none has, or a commit succeeded
	// since. Readiness uses it: a small probe write may still fit where a
	// batch's commit does not.
	StorageFullAt time.Time
}

// Stats returns a snapshot of the writer's counters.
func (s *Store) Stats() WriterStats {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	st := s.stats
	st.QueueDepth = s.pendingItems
	return st
}

func errClosed() error {
	return &sipas.Error{Kind: sipas.KindUnavailable, Op: "store", Reason: "STORE_CLOSED", Message: "store is closed"}
}

// enqueue adds r to the queue and wakes the writer.
func (s *writerQueue) enqueue(r *request) error {
	s.qmu.Lock()
	if s.closed {
		s.qmu.Unlock()
		return errClosed()
	}
	if r.fn == nil && s.pendingItems > 0 && s.pendingItems+r.size() > s.maxQueued {
		s.qmu.Unlock()
		return &sipas.Error{Kind: sipas.KindUnavailable, Op: "store.insert", Reason: "STORE_OVERLOADED",
			Message: "too many responses waiting to be written; retry later"}
	}
	s.pending = append(s.pending, r)
	s.pendingItems += r.size()
	s.qmu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// wait waits for r to be answered or for ctx to end. A request still in the
// queue when ctx ends is withdrawn: it was not, and will not be, written. A
// request the writer has already taken has an outcome the caller cannot
// learn any more: it gets an indeterminate (KindUnavailable) error, and a
// retry with the same response ids is safe.
func (s *writerQueue) wait(ctx context.Context, r *request, op string) error {
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
	}
	s.qmu.Lock()
	withdrawn := r.state == stateQueued
	if withdrawn {
		r.state = stateAbandoned
		s.pendingItems -= r.size()
	}
	s.qmu.Unlock()
	if withdrawn {
		return &sipas.Error{Kind: sipas.KindUnavailable, Op: op, Reason: "CANCELLED",
			Message: "cancelled before it was written", Err: ctx.Err()}
	}
	select {
	case <-r.done: // answered meanwhile: the true outcome
		return r.err
	default:
	}
	return &sipas.Error{Kind: sipas.KindUnavailable, Op: op, Reason: "OUTCOME_UNKNOWN",
		Message: "cancelled while being written; the outcome is unknown, retrying is safe", Err: ctx.Err()}
}

// do runs fn in its own write transaction on the writer connection.
func (s *Store) do(ctx context.Context, op string, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return s.doConn(ctx, op, func(ctx context.Context, c *sql.Conn) error {
		tx, err := c.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if err := fn(ctx, tx); err != nil {
			return err
		}
		return tx.Commit()
	})
}

// doConn runs fn on the writer connection, from the writer goroutine.
func (s *Store) doConn(ctx context.Context, op string, fn func(ctx context.Context, c *sql.Conn) error) error {
	r := &request{fn: fn, done: make(chan struct{})}
	if err := s.enqueue(r); err != nil {
		return err
	}
	return s.wait(ctx, r, op)
}

// take removes from the queue what the next round will write: every queued
// request while the responses stay within MaxBatchItems (at least one
// request).
func (s *writerQueue) take() []*request {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	var batch []*request
	items := 0
	i := 0
	for ; i < len(s.pending); i++ {
		r := s.pending[i]
		if r.state == stateAbandoned {
			continue
		}
		if len(batch) > 0 && r.fn == nil && items+r.size() > s.maxBatch {
			break
		}
		r.state = stateTaken
		s.pendingItems -= r.size()
		if r.fn == nil {
			items += r.size()
		}
		batch = append(batch, r)
	}
	rest := copy(s.pending, s.pending[i:])
	clear(s.pending[rest:])
	s.pending = s.pending[:rest]
	return batch
}

func (s *Store) writeLoop() {
	defer close(s.writerDone)
	tick := time.NewTicker(s.opts.CheckpointInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.wake:
		case <-tick.C:
			s.maybeCheckpoint(false)
			continue
		case <-s.stop:
			// Closed: no new requests can arrive; write what is queued,
			// then checkpoint the aggregates.
			for {
				batch := s.take()
				if len(batch) == 0 {
					s.maybeCheckpoint(true)
					close(s.applies)
					<-s.applierDone
					return
				}
				s.run(batch)
			}
		}
		for {
			s.linger()
			batch := s.take()
			if len(batch) == 0 {
				break
			}
			s.run(batch)
			s.maybeCheckpoint(false)
		}
	}
}

// linger waits, for at most Options.CommitLinger, while fewer than
// lingerItems responses are queued but more keep arriving: a group commit's
// cost (the WAL write and its fsync) is mostly per transaction, so a slightly
// later commit of more responses costs every caller less. It returns at once
// when nothing is queued, when a non-response write is queued, or on Close.
func (s *Store) linger() {
	if s.opts.CommitLinger <= 0 {
		return
	}
	var deadline <-chan time.Time
	for {
		s.qmu.Lock()
		n, other := s.pendingItems, len(s.pending) > 0 && s.pending[0].fn != nil
		s.qmu.Unlock()
		if n == 0 || other || n >= lingerItems {
			return
		}
		if deadline == nil {
			t := time.NewTimer(s.opts.CommitLinger)
			defer t.Stop()
			deadline = t.C
		}
		select {
		case <-s.wake:
		case <-deadline:
			return
		case <-s.stop:
			return
		}
	}
}

// lingerItems is how many queued responses end a linger.
const lingerItems = 48

// answer closes r.done once.
func (r *request) answer() {
	if !r.answered {
		r.answered = true
		close(r.done)
	}
}

// run writes one round: all response inserts in one transaction, then each
// other request in its own. A panic (a bug) is turned into an error for
// every caller not yet answered, so that no caller waits forever and the
// writer goes on.
func (s *Store) run(batch []*request) {
	defer func() {
		if p := recover(); p != nil {
			s.opts.Logger.Error("store: writer panic", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			s.resetConn()
			for _, r := range batch {
				if !r.handedOff && !r.answered {
					r.err = &sipas.Error{Kind: sipas.KindUnavailable, Op: "store.write", Reason: "STORAGE_UNAVAILABLE",
						Message: "internal error in the writer; the outcome is unknown, retrying is safe"}
					r.answer()
				}
			}
		}
	}()
	var inserts []*request
	for _, r := range batch {
		if r.fn == nil {
			inserts = append(inserts, r)
		}
	}
	if len(inserts) > 0 {
		s.commitInserts(inserts)
	}
	for _, r := range batch {
		if r.fn == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.TxTimeout)
		c, err := s.conn(ctx)
		if err == nil {
			err = r.fn(ctx, c)
		}
		r.err = err
		cancel()
		s.resetConn()
		r.answer()
	}
}

// resetConn makes sure the writer connection is not left inside a
// transaction: a context interrupt can end a statement (and roll the
// transaction back) or make BeginTx report failure after BEGIN ran, and
// later statements would then run outside, or fail to begin, a transaction.
//
// database/sql also discards the connection when a transaction's context
// ends before COMMIT (go-sqlite3 implements neither SessionResetter nor
// Validator). The writer then takes a fresh connection from the writer pool
// (still at most one open) in conn, so the store recovers without a restart.
func (s *Store) resetConn() {
	if s.wconn == nil {
		return
	}
	err := s.wconn.Raw(func(dc any) error {
		c, ok := dc.(*sqlite3.SQLiteConn)
		if ok && !c.AutoCommit() {
			_, err := c.Exec("ROLLBACK", nil)
			return err
		}
		return nil
	})
	if err != nil {
		// A connection that is gone or cannot roll back is not reused.
		s.opts.Logger.Warn("store: replacing the writer connection", "err", err)
		s.wconn.Raw(func(any) error { return driver.ErrBadConn }) // discard it
		s.wconn.Close()
		s.wconn = nil
	}
}

// conn returns the writer connection, opening a new one when the previous
// one was discarded.
func (s *Store) conn(ctx context.Context) (*sql.Conn, error) {
	if s.wconn == nil {
		c, err := s.writer.Conn(ctx)
		if err != nil {
			return nil, err
		}
		s.wconn = c
	}
	return s.wconn, nil
}

// storageError turns a failed write transaction into the indeterminate error
// every caller in it receives.
// reasonStorageFull is the reason of a write that failed for lack of space.
const reasonStorageFull = "STORAGE_FULL"

func storageError(op string, err error) *sipas.Error {
	e := &sipas.Error{Kind: sipas.KindUnavailable, Op: op, Reason: "STORAGE_UNAVAILABLE",
		Message: "the write did not complete; retrying is safe", Err: err}
	var se sqlite3.Error
	if errors.As(err, &se) && se.Code == sqlite3.ErrFull {
		e.Reason = reasonStorageFull
		e.Message = "storage is full; retrying is safe"
	}
	return e
}
