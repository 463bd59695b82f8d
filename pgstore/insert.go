package pgstore

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/store"
)

const opInsert = "pgstore.insert"

// prepared is an item made ready for the writer by the caller's goroutine.
type prepared struct {
	idx     int
	acc     *sipas.Accepted
	month   int
	payload []byte
}

// item is one response of a transaction's batch, with its request.
type item struct {
	r *request
	p *prepared
}

// request is one Insert call waiting for the writer.
type request struct {
	items   []*prepared
	results []store.InsertResult
	err     error
	done    chan struct{}
}

// Insert stores validated responses exactly once, across every replica of
// the database: each item's outcome is in the result of the same index
// (inserted, Duplicate, or Err). The call returns after the transaction
// holding the items and the aggregate cells counting them has committed.
// The primary key of responses decides: the same id sent at the same time
// to two replicas is stored by one transaction, and the other finds it
// (a duplicate when its content hash is the stored one, else a conflict).
//
// A non-nil error is a KindUnavailable *sipas.Error: the outcome is
// unknown, and retrying the same items is safe.
func (s *Store) Insert(ctx context.Context, items []*sipas.Accepted) ([]store.InsertResult, error) {
	results := make([]store.InsertResult, len(items))
	preps := make([]*prepared, 0, len(items))
	for i, acc := range items {
		if err := store.CheckAccepted(s.cat, acc); err != nil {
			results[i].Err = err
			continue
		}
		r := acc.Response
		preps = append(preps, &prepared{idx: i, acc: acc, month: sipas.MonthOf(r.CollectedAt),
			payload: store.EncodePayload(acc.Questionnaire, &r.Demographics, acc.Answers)})
	}
	if len(preps) == 0 {
		return results, nil
	}
	r := &request{items: preps, results: results, done: make(chan struct{})}
	s.qmu.Lock()
	switch {
	case s.closed:
		s.qmu.Unlock()
		return nil, &sipas.Error{Kind: sipas.KindUnavailable, Op: opInsert, Reason: "STORE_CLOSED", Message: "the store is shutting down; retrying is safe"}
	case s.pendingItems+len(preps) > s.opts.MaxQueuedItems:
		s.qmu.Unlock()
		return nil, &sipas.Error{Kind: sipas.KindUnavailable, Op: opInsert, Reason: "WRITER_BUSY", Message: "too many responses waiting to be stored; retrying is safe"}
	}
	s.pending = append(s.pending, r)
	s.pendingItems += len(preps)
	s.qmu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		return nil, &sipas.Error{Kind: sipas.KindUnavailable, Op: opInsert, Reason: "STORAGE_UNAVAILABLE",
			Message: "the caller gave up before the write completed; retrying is safe", Err: ctx.Err()}
	}
	if r.err != nil {
		return nil, r.err
	}
	return results, nil
}

// writeLoop is one writer: it commits what is queued, up to MaxBatchItems
// responses per transaction, until Close.
func (s *Store) writeLoop() {
	for {
		s.qmu.Lock()
		var batch []*request
		n := 0
		for len(s.pending) > 0 && (n == 0 || n+len(s.pending[0].items) <= s.opts.MaxBatchItems) {
			batch = append(batch, s.pending[0])
			n += len(s.pending[0].items)
			s.pending = s.pending[1:]
		}
		s.pendingItems -= n
		closed := s.closed
		s.qmu.Unlock()
		if len(batch) > 0 {
			s.commit(batch, n)
			continue
		}
		if closed {
			return
		}
		select {
		case <-s.wake:
		case <-s.stop: // closed: every writer sees it
		}
	}
}

// commit runs the insert transaction of batch and answers its callers.
func (s *Store) commit(batch []*request, n int) {
	start := time.Now()
	var inserted []*prepared
	var written []cellRow
	err := s.write(context.Background(), opInsert, func(ctx context.Context, tx pgx.Tx) error {
		var err error
		inserted, written, err = s.insertTx(ctx, tx, batch, n)
		return err
	})
	dur := time.Since(start)
	if err != nil {
		s.qmu.Lock()
		s.stats.FailedCommits++
		s.qmu.Unlock()
		s.opts.Logger.Error("pgstore: response transaction failed", "responses", n, "err", err)
		serr := dbError(opInsert, err)
		for _, r := range batch {
			r.err = serr
			close(r.done)
		}
		return
	}
	// This replica serves its own commit at once; others within the
	// refresh interval.
	s.cells.apply(written)
	s.qmu.Lock()
	s.stats.Commits++
	s.stats.LastBatchSize = n
	s.stats.LastCommit = dur
	s.stats.Inserted += uint64(len(inserted))
	for _, r := range batch {
		for _, p := range r.items {
			switch res := r.results[p.idx]; {
			case res.Duplicate:
				s.stats.Duplicates++
			case res.Err != nil:
				s.stats.Conflicts++
			}
		}
	}
	s.qmu.Unlock()
	if s.opts.OnCommit != nil {
		s.opts.OnCommit(n, dur)
	}
	for _, r := range batch {
		close(r.done)
	}
}

// insertTx writes the responses of batch and adds the inserted ones to
// their aggregate cells, in one transaction. Rows go in sorted by response
// id and cells are updated in key order, so that concurrent transactions of
// several replicas lock rows in the same order (no deadlock cycle).
func (s *Store) insertTx(ctx context.Context, tx pgx.Tx, batch []*request, n int) ([]*prepared, []cellRow, error) {
	items := make([]item, 0, n)
	for _, r := range batch {
		for _, p := range r.items {
			items = append(items, item{r, p})
		}
	}
	slices.SortStableFunc(items, func(a, b item) int { return bytes.Compare(a.p.acc.ID[:], b.p.acc.ID[:]) })

	// Responses of closed periods are refused in this transaction, which
	// holds the closed periods' shared lock until it commits (see
	// corrections.go): no close slips in between.
	closed, err := checkClosed(ctx, tx)
	if err != nil {
		return nil, nil, err
	}
	if len(closed) > 0 {
		var inClosed []item
		kept := items[:0]
		for _, it := range items {
			if closed.of(it.p.month) == "" {
				kept = append(kept, it)
			} else {
				inClosed = append(inClosed, it)
			}
		}
		items = kept
		if err := refuseClosed(ctx, tx, closed, inClosed); err != nil {
			return nil, nil, err
		}
		if len(items) == 0 {
			return nil, nil, nil
		}
	}

	ids := make([]pgtype.UUID, len(items))
	qids := make([]string, len(items))
	pcodes := make([]string, len(items))
	pids := make([]string, len(items))
	collected := make([]int64, len(items))
	months := make([]int32, len(items))
	channels := make([]int16, len(items))
	units := make([]string, len(items))
	hashes := make([][]byte, len(items))
	payloads := make([][]byte, len(items))
	creds, batches := make([]string, len(items)), make([]string, len(items))
	flags := make([]int32, len(items))
	for i, it := range items {
		p, r := it.p, it.p.acc.Response
		ids[i] = pgtype.UUID{Bytes: p.acc.ID, Valid: true}
		qids[i], pcodes[i], pids[i] = r.QuestionnaireID, r.ProvinceCode, p.acc.Province.ID
		collected[i], months[i], channels[i] = r.CollectedAt.UnixNano(), int32(p.month), int16(r.Channel)
		units[i], hashes[i], payloads[i] = r.UnitID, p.acc.Hash[:], p.payload
		creds[i], batches[i], flags[i] = p.acc.Source.CredentialID, p.acc.Source.BatchID, int32(r.Flags)
	}
	rows, err := tx.Query(ctx, `INSERT INTO responses
		(response_id, questionnaire_id, province_code, province_id, collected_at, month, channel, unit_id, content_hash, payload,
		 credential_id, batch_id, flags)
		SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::integer[], $7::smallint[], $8::text[], $9::bytea[], $10::bytea[],
		 $11::text[], $12::text[], $13::integer[])
		ON CONFLICT (response_id) DO NOTHING
		RETURNING response_id`,
		ids, qids, pcodes, pids, collected, months, channels, units, hashes, payloads, creds, batches, flags)
	if err != nil {
		return nil, nil, fmt.Errorf("insert: %w", err)
	}
	stored, err := pgx.CollectRows(rows, pgx.RowTo[pgtype.UUID])
	if err != nil {
		return nil, nil, fmt.Errorf("insert: %w", err)
	}
	fresh := make(map[uuid.UUID]bool, len(stored))
	for _, id := range stored {
		fresh[id.Bytes] = true
	}
	var others []pgtype.UUID
	inserted := make([]*prepared, 0, len(stored))
	isInserted := make(map[*prepared]bool, len(stored))
	for _, it := range items {
		if fresh[it.p.acc.ID] {
			// The first item with this id is the one stored; later ones
			// in the same batch are resends of it.
			delete(fresh, it.p.acc.ID)
			it.r.results[it.p.idx] = store.InsertResult{}
			inserted = append(inserted, it.p)
			isInserted[it.p] = true
			continue
		}
		others = append(others, pgtype.UUID{Bytes: it.p.acc.ID, Valid: true})
	}
	if len(others) > 0 {
		// Stored by an earlier transaction (of any replica: a concurrent
		// one that held the id has committed, since the INSERT waited for
		// it) or earlier in this one. A new statement sees both.
		rows, err := tx.Query(ctx, "SELECT response_id, content_hash FROM responses WHERE response_id = ANY($1::uuid[])", others)
		if err != nil {
			return nil, nil, fmt.Errorf("read stored hashes: %w", err)
		}
		hashOf := map[uuid.UUID][]byte{}
		var id pgtype.UUID
		var h []byte
		_, err = pgx.ForEachRow(rows, []any{&id, &h}, func() error {
			hashOf[id.Bytes] = slices.Clone(h)
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("read stored hashes: %w", err)
		}
		for _, it := range items {
			p := it.p
			if isInserted[p] {
				continue
			}
			h, ok := hashOf[p.acc.ID]
			switch {
			case !ok:
				return nil, nil, fmt.Errorf("response %s neither inserted nor stored", p.acc.ID)
			case bytes.Equal(h, p.acc.Hash[:]) || store.SameLegacyHash(p.acc, h):
				it.r.results[p.idx] = store.InsertResult{Duplicate: true}
			default:
				e := *sipas.ErrResponseConflict
				e.Op = opInsert
				it.r.results[p.idx] = store.InsertResult{Err: &e}
			}
		}
	}
	written, err := addToCells(ctx, tx, insertedDeltas(inserted))
	if err != nil {
		return nil, nil, err
	}
	if s.opts.BeforeCommit != nil {
		if err := s.opts.BeforeCommit(n); err != nil {
			return nil, nil, err
		}
	}
	return inserted, written, nil
}

// refuseClosed answers items of closed periods: a resend of a stored
// response is a duplicate; anything else would change a closed period.
func refuseClosed(ctx context.Context, tx pgx.Tx, closed closedSet, items []item) error {
	if len(items) == 0 {
		return nil
	}
	ids := make([]pgtype.UUID, len(items))
	for i, it := range items {
		ids[i] = pgtype.UUID{Bytes: it.p.acc.ID, Valid: true}
	}
	rows, err := tx.Query(ctx, "SELECT response_id, content_hash FROM responses WHERE response_id = ANY($1::uuid[])", ids)
	if err != nil {
		return fmt.Errorf("read stored hashes: %w", err)
	}
	hashOf := map[uuid.UUID][]byte{}
	var id pgtype.UUID
	var h []byte
	if _, err := pgx.ForEachRow(rows, []any{&id, &h}, func() error {
		hashOf[id.Bytes] = slices.Clone(h)
		return nil
	}); err != nil {
		return fmt.Errorf("read stored hashes: %w", err)
	}
	for _, it := range items {
		p := it.p
		if h, ok := hashOf[p.acc.ID]; ok && (bytes.Equal(h, p.acc.Hash[:]) || store.SameLegacyHash(p.acc, h)) {
			it.r.results[p.idx] = store.InsertResult{Duplicate: true}
			continue
		}
		it.r.results[p.idx] = store.InsertResult{Err: store.PeriodClosedError(opInsert, closed.of(p.month))}
	}
	return nil
}

// cellDeltas is what a transaction adds to each aggregate cell.
type cellDeltas map[sipas.CellKey]*sipas.Tally

// add adds sign times contribution c of a response of questionnaire q,
// filed under cell k with the given flags, to the cells it is counted in
// (store.CountedIn): sign 1 counts it, -1 takes it back out.
func (d cellDeltas) add(q *sipas.Questionnaire, k sipas.CellKey, flags sipas.Flags, c *sipas.Contribution, sign int64) {
	for _, key := range store.CountedIn(k, flags) {
		t := d[key]
		if t == nil {
			t = sipas.NewTally(q)
			d[key] = t
		}
		t.AddContribution(c, sign)
	}
}

// insertedDeltas is what the inserted responses add to their cells.
func insertedDeltas(inserted []*prepared) cellDeltas {
	deltas := cellDeltas{}
	var c sipas.Contribution
	for _, p := range inserted {
		q, r := p.acc.Questionnaire, p.acc.Response
		q.Contribution(p.acc.Answers, &c)
		deltas.add(q, sipas.CellKey{QuestionnaireID: r.QuestionnaireID, ProvinceID: p.acc.Province.ID, Month: p.month,
			Channel: r.Channel, UnitID: r.UnitID}, r.Flags, &c, 1)
	}
	return deltas
}

// addToCells adds deltas to their aggregate cells and returns the cells as
// written. Two statements, whatever the number of cells: the first creates
// the missing cells (holding the delta) and locks the others, in key order,
// returning what they hold; the second writes the sums. Concurrent
// transactions of several replicas lock their cells in the same order, so
// they wait for each other without a deadlock cycle. A delta that takes
// counts out (a correction) applies to a cell that counts them: a cell it
// would create, or drive below zero, is an error and nothing is written.
func addToCells(ctx context.Context, tx pgx.Tx, deltas cellDeltas) ([]cellRow, error) {
	if len(deltas) == 0 {
		return nil, nil
	}
	keys := make([]sipas.CellKey, 0, len(deltas))
	for k := range deltas {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)
	n := len(keys)
	qids, kinds, months, pids, units, chans, data := make([]string, n), make([]int16, n), make([]int32, n),
		make([]string, n), make([]string, n), make([]int16, n), make([][]byte, n)
	for i, k := range keys {
		b, err := sipas.SparseOf(deltas[k]).MarshalBinary()
		if err != nil {
			// A negative delta: the cell exists (checked below), and
			// this value is not used.
			t := deltas[k]
			b, _ = (&sipas.SparseTally{NSlots: len(t.Slots), NNodes: len(t.NodeN)}).MarshalBinary()
		}
		qids[i], kinds[i], months[i], pids[i], units[i], chans[i], data[i] = k.QuestionnaireID, kindOf(k), int32(k.Month), k.ProvinceID, k.UnitID, int16(k.Channel), b
	}
	const keyArgs = `unnest($1::text[], $2::smallint[], $3::integer[], $4::text[], $5::text[], $6::smallint[], $7::bytea[])`
	rows, err := tx.Query(ctx, `INSERT INTO tallies AS t (questionnaire_id, kind, month, province_id, unit_id, channel, data, rev)
		SELECT q, k, m, p, u, c, d, 0 FROM `+keyArgs+` WITH ORDINALITY AS x(q, k, m, p, u, c, d, o) ORDER BY o
		ON CONFLICT (questionnaire_id, kind, month, province_id, unit_id, channel) DO UPDATE SET rev = t.rev
		RETURNING `+cellColumns, qids, kinds, months, pids, units, chans, data)
	if err != nil {
		return nil, fmt.Errorf("lock cells: %w", err)
	}
	held, err := collectCells(rows)
	if err != nil {
		return nil, fmt.Errorf("lock cells: %w", err)
	}
	if len(held) != n {
		return nil, fmt.Errorf("lock cells: %d rows for %d cells", len(held), n)
	}
	pos := make(map[sipas.CellKey]int, n)
	for i, k := range keys {
		pos[k] = i
	}
	for _, h := range held {
		i, ok := pos[h.key]
		if !ok {
			return nil, fmt.Errorf("lock cells: unexpected cell %v", h.key)
		}
		if h.rev == 0 {
			if d := deltas[h.key]; !h.t.Equal(d) {
				return nil, fmt.Errorf("cell %v: taking out responses it does not count", h.key)
			}
			continue // created by this statement with the delta
		}
		h.t.Merge(deltas[h.key])
		b, err := sipas.SparseOf(h.t).MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("cell %v: %w", h.key, err)
		}
		data[i] = b
	}
	rows, err = tx.Query(ctx, `UPDATE tallies AS t SET data = x.d, rev = t.rev + 1, xid = pg_current_xact_id()
		FROM `+keyArgs+` AS x(q, k, m, p, u, c, d)
		WHERE t.questionnaire_id = x.q AND t.kind = x.k AND t.month = x.m AND t.province_id = x.p AND t.unit_id = x.u AND t.channel = x.c
		RETURNING `+strings.ReplaceAll("t."+cellColumns, ", ", ", t."), qids, kinds, months, pids, units, chans, data)
	if err != nil {
		return nil, fmt.Errorf("write cells: %w", err)
	}
	written, err := collectCells(rows)
	if err != nil {
		return nil, fmt.Errorf("write cells: %w", err)
	}
	if len(written) != n {
		return nil, fmt.Errorf("write cells: %d rows for %d cells", len(written), n)
	}
	return written, nil
}

func kindOf(k sipas.CellKey) int16 {
	if k.UnitID == "" {
		return 0
	}
	return 1
}

// compareKeys orders cells as the tallies primary key does.
func compareKeys(a, b sipas.CellKey) int {
	if c := strings.Compare(a.QuestionnaireID, b.QuestionnaireID); c != 0 {
		return c
	}
	if c := int(kindOf(a)) - int(kindOf(b)); c != 0 {
		return c
	}
	if c := a.Month - b.Month; c != 0 {
		return c
	}
	if c := strings.Compare(a.ProvinceID, b.ProvinceID); c != 0 {
		return c
	}
	if c := strings.Compare(a.UnitID, b.UnitID); c != 0 {
		return c
	}
	return int(a.Channel) - int(b.Channel)
}
