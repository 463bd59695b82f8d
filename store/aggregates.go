package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/sipas-vn/sipas"
)

// scanTally reads one row of SELECT questionnaire_id, month, province_id,
// unit_id, channel, data FROM tallies.
func scanTally(rows *sql.Rows) (sipas.CellKey, []byte, error) {
	var k sipas.CellKey
	var ch int64
	var data []byte
	if err := rows.Scan(&k.QuestionnaireID, &k.Month, &k.ProvinceID, &k.UnitID, &ch, &data); err != nil {
		return k, nil, err
	}
	k.Channel = sipas.Channel(ch)
	return k, data, nil
}

const tallyColumns = "questionnaire_id, month, province_id, unit_id, channel, data"

// Block reads, prepared on the reader pool: the province-level cells of a
// month, the unit cells of a province and month, the unit cells of a month.
const (
	provinceBlockSQL = "SELECT " + tallyColumns + " FROM tallies WHERE questionnaire_id = ? AND kind = 0 AND month = ?"
	unitBlockSQL     = "SELECT " + tallyColumns + " FROM tallies WHERE questionnaire_id = ? AND kind = 1 AND month = ? AND province_id = ?"
	unitMonthSQL     = "SELECT " + tallyColumns + " FROM tallies WHERE questionnaire_id = ? AND kind = 1 AND month = ?"
)

// loadBlocks reads blocks from the table: the block of bk, or with allUnits
// every unit block of bk's month (by province).
func (s *Store) loadBlocks(ctx context.Context, bk BlockKey, allUnits bool) (map[string]*block, error) {
	var rows *sql.Rows
	var err error
	switch {
	case allUnits:
		rows, err = s.unitMonthStmt.QueryContext(ctx, bk.QuestionnaireID, bk.Month)
	case bk.Units:
		rows, err = s.unitBlockStmt.QueryContext(ctx, bk.QuestionnaireID, bk.Month, bk.ProvinceID)
	default:
		rows, err = s.provinceBlockStmt.QueryContext(ctx, bk.QuestionnaireID, bk.Month)
	}
	if err != nil {
		return nil, fmt.Errorf("read cells: %w", err)
	}
	defer rows.Close()
	out := map[string]*block{}
	if !allUnits {
		out[bk.ProvinceID] = &block{key: bk, cells: map[sipas.CellKey][]byte{}}
	}
	interned := map[string]string{bk.QuestionnaireID: bk.QuestionnaireID}
	intern := func(v string) string {
		if w, ok := interned[v]; ok {
			return w
		}
		interned[v] = v
		return v
	}
	for rows.Next() {
		k, data, err := scanTally(rows)
		if err != nil {
			return nil, fmt.Errorf("read cells: %w", err)
		}
		// Cached keys share their questionnaire and province strings.
		k.QuestionnaireID, k.ProvinceID = intern(k.QuestionnaireID), intern(k.ProvinceID)
		pid := bk.ProvinceID
		if allUnits {
			pid = k.ProvinceID
		}
		b := out[pid]
		if b == nil {
			b = &block{key: BlockOf(k), cells: map[sipas.CellKey][]byte{}}
			out[pid] = b
		}
		b.put(k, data)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read cells: %w", err)
	}
	return out, nil
}

// cellReader emits the cells of the blocks a read asks for: each stored
// cell plus its delta, then the cells with only a delta, decoded one after
// the other into one scratch tally.
type cellReader struct {
	s       *Store
	q       *sipas.Questionnaire
	scratch *sipas.Tally
	fn      func(sipas.CellKey, *sipas.Tally)
	// detail is sipas.CellQuery.Detail: the cells it refuses are passed
	// as counts, a tally with the respondents alone (never decoded).
	detail func(sipas.CellKey) bool
	counts *sipas.Tally
}

// emit decodes cell k (stored as data, nil when only a delta) and its delta
// when withDelta, and passes it on.
func (r *cellReader) emit(k sipas.CellKey, data []byte, withDelta bool) error {
	if r.detail != nil && !r.detail(k) {
		return r.emitCount(k, data, withDelta)
	}
	r.scratch.Clear()
	if data != nil {
		if err := r.scratch.AddEncoded(data); err != nil {
			return fmt.Errorf("cell %v: %w", k, err)
		}
	}
	if withDelta {
		if d := r.s.deltas.cells[k]; d != nil {
			d.AddTo(r.scratch)
		}
	}
	if r.scratch.Respondents == 0 {
		return nil // every response taken back out
	}
	r.fn(k, r.scratch)
	return nil
}

// emitCount passes on cell k with its respondents alone, read from the
// header of its encoding (and its delta's).
func (r *cellReader) emitCount(k sipas.CellKey, data []byte, withDelta bool) error {
	var n int64
	if data != nil {
		var err error
		if n, err = sipas.EncodedRespondents(data); err != nil {
			return fmt.Errorf("cell %v: %w", k, err)
		}
	}
	if withDelta {
		if d := r.s.deltas.cells[k]; d != nil {
			n += d.Respondents
		}
	}
	if n == 0 {
		return nil // every response taken back out
	}
	r.counts.Respondents = n
	r.fn(k, r.counts)
	return nil
}

func (r *cellReader) block(b *block) error {
	withDeltas := r.s.deltas.byBlock[b.key]
	for k, data := range b.cells {
		if err := r.emit(k, data, len(withDeltas) > 0); err != nil {
			return err
		}
	}
	for _, k := range withDeltas {
		if _, stored := b.cells[k]; !stored {
			if err := r.emit(k, nil, true); err != nil {
				return err
			}
		}
	}
	return nil
}

// read emits block bk, from the cache or the table (then caching it).
func (r *cellReader) read(ctx context.Context, bk BlockKey) error {
	b := r.s.cache.get(bk)
	if b == nil {
		bs, err := r.s.loadBlocks(ctx, bk, false)
		if err != nil {
			return err
		}
		b = bs[bk.ProvinceID]
		r.s.cache.add(b)
	}
	return r.block(b)
}

// readUnitsOfMonth emits every unit block of a month: one range read of the
// table, with the blocks already cached taken from the cache.
func (r *cellReader) readUnitsOfMonth(ctx context.Context, questionnaireID string, month int) error {
	bs, err := r.s.loadBlocks(ctx, BlockKey{QuestionnaireID: questionnaireID, Month: month, Units: true}, true)
	if err != nil {
		return err
	}
	for bk := range r.s.deltas.byBlock {
		if bk.Units && bk.Month == month && bk.QuestionnaireID == questionnaireID && bs[bk.ProvinceID] == nil {
			bs[bk.ProvinceID] = &block{key: bk, cells: map[sipas.CellKey][]byte{}}
		}
	}
	for _, b := range bs {
		if c := r.s.cache.get(b.key); c != nil {
			b = c
		} else {
			r.s.cache.add(b)
		}
		if err := r.block(b); err != nil {
			return err
		}
	}
	return nil
}

// QueryCells calls fn for every cell cq selects (sipas.CellQuerier): the
// stored cells, read by block from the cache or the table, plus the
// deltas of the commits since the last checkpoint. fn runs with the
// store's read lock held, and commits and checkpoints wait for it; fn must
// neither modify nor keep t (one scratch tally is reused), nor call into
// the store.
func (s *Store) QueryCells(cq sipas.CellQuery, fn func(k sipas.CellKey, t *sipas.Tally)) error {
	s.cellsMu.RLock()
	defer s.cellsMu.RUnlock()
	return s.queryCells(context.Background(), cq, fn)
}

// maxMonthsPerRead bounds the months one read walks (a hundred years).
const maxMonthsPerRead = 1200

func (s *Store) queryCells(ctx context.Context, cq sipas.CellQuery, fn func(k sipas.CellKey, t *sipas.Tally)) error {
	q := s.cat.Get(cq.QuestionnaireID)
	if q == nil {
		return nil // no cells of an unknown questionnaire
	}
	from, to := cq.FromMonth, cq.ToMonth
	if from <= 0 || to <= 0 {
		lo, hi, err := s.monthRange(ctx, q.ID)
		if err != nil {
			return err
		}
		if from <= 0 {
			from = lo
		}
		if to <= 0 {
			to = hi
		}
	}
	if from <= 0 || to < from {
		return nil
	}
	scratch := sipas.NewTally(q)
	scratch.TrackNonzero()
	r := &cellReader{s: s, q: q, scratch: scratch, fn: fn, detail: cq.Detail}
	if cq.Detail != nil {
		r.counts = sipas.NewTally(q)
	}
	n := 0
	for m := from; m <= to; m = nextMonth(m) {
		if n++; n > maxMonthsPerRead {
			return fmt.Errorf("read cells: more than %d months asked for", maxMonthsPerRead)
		}
		if err := r.read(ctx, BlockKey{QuestionnaireID: q.ID, Month: m}); err != nil {
			return err
		}
		if !cq.Units {
			continue
		}
		if cq.UnitProvinceIDs == nil {
			if err := r.readUnitsOfMonth(ctx, q.ID, m); err != nil {
				return err
			}
			continue
		}
		for _, pid := range cq.UnitProvinceIDs {
			if err := r.read(ctx, BlockKey{QuestionnaireID: q.ID, Month: m, Units: true, ProvinceID: pid}); err != nil {
				return err
			}
		}
	}
	return nil
}

// monthRange returns the first and last month with cells of a
// questionnaire, stored or in the deltas (0, 0 when none).
func (s *Store) monthRange(ctx context.Context, questionnaireID string) (lo, hi int, err error) {
	var a, b sql.NullInt64
	if err := s.reader.QueryRowContext(ctx, "SELECT min(month), max(month) FROM tallies WHERE questionnaire_id = ?",
		questionnaireID).Scan(&a, &b); err != nil {
		return 0, 0, fmt.Errorf("read cells: %w", err)
	}
	lo, hi = int(a.Int64), int(b.Int64)
	for k := range s.deltas.cells {
		if k.QuestionnaireID != questionnaireID {
			continue
		}
		if lo == 0 || k.Month < lo {
			lo = k.Month
		}
		hi = max(hi, k.Month)
	}
	return lo, hi, nil
}

// EachCell calls fn for every aggregate cell of the questionnaire whose month
// is within [fromMonth, toMonth] (year*100+month; 0 leaves that end open),
// as QueryCells with every unit. A failed read of the table ends it early
// (it is logged); the engine uses QueryCells, which reports it.
func (s *Store) EachCell(questionnaireID string, fromMonth, toMonth int, fn func(k sipas.CellKey, t *sipas.Tally)) {
	err := s.QueryCells(sipas.CellQuery{QuestionnaireID: questionnaireID, FromMonth: fromMonth, ToMonth: toMonth, Units: true}, fn)
	if err != nil {
		s.opts.Logger.Error("store: reading cells failed", "err", err)
	}
}

// Cells returns a copy of every aggregate cell as reads see it (through the
// cache and the deltas), as of one instant between two commits. It reads
// the whole table: for tests and checks, not for serving.
func (s *Store) Cells() map[sipas.CellKey]*sipas.Tally {
	out, err := s.cells(context.Background())
	if err != nil {
		s.opts.Logger.Error("store: reading cells failed", "err", err)
	}
	return out
}

func (s *Store) cells(ctx context.Context) (map[sipas.CellKey]*sipas.Tally, error) {
	s.cellsMu.RLock()
	defer s.cellsMu.RUnlock()
	out := map[sipas.CellKey]*sipas.Tally{}
	qids := map[string]bool{}
	rows, err := s.reader.QueryContext(ctx, "SELECT DISTINCT questionnaire_id FROM tallies")
	if err != nil {
		return out, err
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return out, err
		}
		qids[id] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return out, err
	}
	for k := range s.deltas.cells {
		qids[k.QuestionnaireID] = true
	}
	for id := range qids {
		err := s.queryCells(ctx, sipas.CellQuery{QuestionnaireID: id, Units: true}, func(k sipas.CellKey, t *sipas.Tally) {
			out[k] = &sipas.Tally{Respondents: t.Respondents, Slots: slices.Clone(t.Slots), NodeN: slices.Clone(t.NodeN)}
		})
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// CellCount returns the number of aggregate cells: those stored and those
// that only the deltas have so far.
func (s *Store) CellCount() int {
	s.cellsMu.RLock()
	defer s.cellsMu.RUnlock()
	ctx := context.Background()
	var n int
	if err := s.reader.QueryRowContext(ctx, "SELECT count(*) FROM tallies").Scan(&n); err != nil {
		return -1
	}
	for k := range s.deltas.cells {
		if data, cached := s.cache.peek(k); cached {
			if data == nil {
				n++
			}
			continue
		}
		var one int
		args := cellKeyArgs(k)
		if err := s.reader.QueryRowContext(ctx, "SELECT 1 FROM tallies WHERE "+cellKeyWhere, args...).Scan(&one); errors.Is(err, sql.ErrNoRows) {
			n++
		}
	}
	return n
}

// CacheStats returns the state of the cell cache.
func (s *Store) CacheStats() CacheStats { return s.cache.stats() }

// DropCellCache empties the cell cache, as if every block had been
// evicted: the next reads take the cells from the table.
func (s *Store) DropCellCache() {
	s.cellsMu.Lock()
	defer s.cellsMu.Unlock()
	s.cache.clear()
}

// Recount recomputes every aggregate cell from the stored responses, decoding
// their payloads, independently of the tallies table and of memory.
func (s *Store) Recount(ctx context.Context) (map[sipas.CellKey]*sipas.Tally, error) {
	tx, err := s.reader.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("store.recount: %w", err)
	}
	defer tx.Rollback()
	return s.recount(ctx, tx)
}

func (s *Store) recount(ctx context.Context, tx *sql.Tx) (map[sipas.CellKey]*sipas.Tally, error) {
	const op = "store.recount"
	rows, err := tx.QueryContext(ctx, "SELECT questionnaire_id, province_id, month, channel, unit_id, payload, flags FROM responses WHERE withdrawn = 0 ORDER BY seq")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer rows.Close()
	out := map[sipas.CellKey]*sipas.Tally{}
	var seen []bool
	var payload []byte
	for rows.Next() {
		var k sipas.CellKey
		var ch, flags int64
		if err := rows.Scan(&k.QuestionnaireID, &k.ProvinceID, &k.Month, &ch, &k.UnitID, &payload, &flags); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		k.Channel = sipas.Channel(ch)
		q := s.cat.Get(k.QuestionnaireID)
		if q == nil {
			return nil, fmt.Errorf("%s: stored response of unknown questionnaire %q", op, k.QuestionnaireID)
		}
		r := &sipas.Response{QuestionnaireID: k.QuestionnaireID}
		if err := decodePayload(q, payload, r); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if len(seen) < len(q.Nodes) {
			seen = make([]bool, len(q.Nodes))
		}
		keys, nk := countedIn(k, sipas.Flags(flags))
		for _, key := range keys[:nk] {
			t := out[key]
			if t == nil {
				t = sipas.NewTally(q)
				out[key] = t
			}
			t.Add(q, r, seen)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return out, nil
}

// CheckAggregates verifies that the aggregates as reads see them (stored
// cells through the cache, plus the deltas in memory), what a restart
// would rebuild (the tallies table plus the responses stored after its
// seq) and a recount from every stored response all agree, as of one instant:
// the database snapshot and the copy of memory are taken between two
// commits. It returns nil when they agree, else an error listing the
// differences.
func (s *Store) CheckAggregates(ctx context.Context) error {
	const op = "store.check_aggregates"
	tx, err := s.reader.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer tx.Rollback()
	// The writer holds commitMu from before COMMIT until memory is updated,
	// so with it held the latest commit is in both or in neither. The first
	// read of a deferred transaction fixes its snapshot.
	s.commitMu.Lock()
	seq, err := tallySeq(ctx, tx)
	var cseq int64
	if err == nil {
		cseq, err = correctionsSeq(ctx, tx)
	}
	var mem map[sipas.CellKey]*sipas.Tally
	if err == nil {
		mem, err = s.cells(ctx)
	}
	s.commitMu.Unlock()
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}

	rebuilt := map[sipas.CellKey]*sipas.Tally{}
	rows, err := tx.QueryContext(ctx, "SELECT "+tallyColumns+" FROM tallies")
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	for rows.Next() {
		k, data, err := scanTally(rows)
		if err == nil {
			var st sipas.SparseTally
			if err = st.UnmarshalBinary(data); err == nil {
				rebuilt[k] = st.Dense()
			}
		}
		if err != nil {
			rows.Close()
			return fmt.Errorf("%s: cell %v: %w", op, k, err)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if _, err := s.replayCorrections(ctx, tx, seq, cseq, func(keys []sipas.CellKey, q *sipas.Questionnaire, c *sipas.Contribution, sign int64) error {
		for _, k := range keys {
			t := rebuilt[k]
			if t == nil {
				t = sipas.NewTally(q)
				rebuilt[k] = t
			}
			t.AddContribution(c, sign)
			if t.Respondents == 0 {
				delete(rebuilt, k)
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if _, _, err := s.replay(ctx, tx, seq, func(_ int64, keys []sipas.CellKey, q *sipas.Questionnaire, c *sipas.Contribution) error {
		for _, k := range keys {
			t := rebuilt[k]
			if t == nil {
				t = sipas.NewTally(q)
				rebuilt[k] = t
			}
			t.AddContribution(c, 1)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	recount, err := s.recount(ctx, tx)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	var diffs []string
	diffs = append(diffs, diffCells("recount", recount, "checkpoint+replay", rebuilt)...)
	diffs = append(diffs, diffCells("recount", recount, "reads", mem)...)
	return DisagreementError(op, diffs)
}

func diffCells(an string, a map[sipas.CellKey]*sipas.Tally, bn string, b map[sipas.CellKey]*sipas.Tally) []string {
	var d []string
	for k, ta := range a {
		tb, ok := b[k]
		switch {
		case !ok:
			d = append(d, fmt.Sprintf("cell %v in %s, not in %s", k, an, bn))
		case !ta.Equal(tb):
			d = append(d, fmt.Sprintf("cell %v: %s has %d respondents, %s %d (or other counters differ)",
				k, an, ta.Respondents, bn, tb.Respondents))
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			d = append(d, fmt.Sprintf("cell %v in %s, not in %s", k, bn, an))
		}
	}
	return d
}
