package pgstore

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/store"
)

// The aggregate cells live in the tallies table, updated by each insert
// transaction, so every replica reads the same truth and no process keeps
// counters of its own. Each replica caches the cells for index reads: the
// cache is loaded at Open and then, every RefreshInterval, reads only the
// rows written by transactions it may not have seen yet. A row carries the
// id of the transaction that last wrote it (xid); a refresh runs in one
// REPEATABLE READ snapshot and remembers that snapshot's xmin, below which
// every transaction had ended when the snapshot was taken, so the next
// refresh asks for rows with xid >= xmin and misses no commit, however the
// commits of several replicas interleave. Rows read again are harmless: a
// cell's rev (its number of updates) only grows, and the cache keeps the
// highest.

const cellColumns = "questionnaire_id, month, province_id, unit_id, channel, data, rev"

// cellRow is one stored cell.
type cellRow struct {
	key sipas.CellKey
	t   *sipas.Tally
	rev int64
}

func collectCells(rows pgx.Rows) ([]cellRow, error) {
	var out []cellRow
	var (
		k    sipas.CellKey
		m    int32
		ch   int16
		data []byte
		rev  int64
	)
	_, err := pgx.ForEachRow(rows, []any{&k.QuestionnaireID, &m, &k.ProvinceID, &k.UnitID, &ch, &data, &rev}, func() error {
		k.Month, k.Channel = int(m), sipas.Channel(ch)
		var st sipas.SparseTally
		if err := st.UnmarshalBinary(data); err != nil {
			return fmt.Errorf("cell %v: %w", k, err)
		}
		out = append(out, cellRow{key: k, t: st.Dense(), rev: rev})
		return nil
	})
	return out, err
}

type cachedCell struct {
	t   *sipas.Tally
	rev int64
}

type block struct {
	key   store.BlockKey
	cells map[sipas.CellKey]cachedCell
	size  int
}

// cellOverhead is what a cached cell costs beyond its counters.
const cellOverhead = 160

func cellSize(t *sipas.Tally) int { return cellOverhead + 8*(len(t.Slots)+len(t.NodeN)) }

// cellCache is this replica's least-recently-used cache of blocks, bounded
// by the bytes they hold (Options.CellCacheBytes). A block is read from the
// tallies table by one range read when missed; the refresher updates the
// cells of cached blocks that other replicas (or this one) changed.
// Tallies in it are never modified: a newer version replaces the pointer,
// and a version is replaced only by a higher rev.
type cellCache struct {
	mu     sync.Mutex
	budget int
	size   int
	lru    *list.List // of *block, most recent first
	byKey  map[store.BlockKey]*list.Element

	hits, misses, evictions uint64

	refreshMu   sync.Mutex // one refresh or block load at a time
	watermark   string     // xid8 of the last refresh's snapshot xmin; "" before the first
	lastRefresh time.Time
}

func newCellCache(budget int) *cellCache {
	return &cellCache{budget: budget, lru: list.New(), byKey: map[store.BlockKey]*list.Element{}}
}

// get returns a copy of the cells of cached block k (ok false on a miss).
func (c *cellCache) get(k store.BlockKey) (cells []cellRow, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.byKey[k]
	if e == nil {
		c.misses++
		return nil, false
	}
	c.hits++
	c.lru.MoveToFront(e)
	b := e.Value.(*block)
	cells = make([]cellRow, 0, len(b.cells))
	for key, cc := range b.cells {
		cells = append(cells, cellRow{key: key, t: cc.t, rev: cc.rev})
	}
	return cells, true
}

// add caches a complete block read from the database and evicts the least
// recently used blocks beyond the budget.
func (c *cellCache) add(k store.BlockKey, rows []cellRow) {
	b := &block{key: k, cells: make(map[sipas.CellKey]cachedCell, len(rows))}
	for _, r := range rows {
		b.cells[r.key] = cachedCell{t: r.t, rev: r.rev}
		b.size += cellSize(r.t)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.byKey[k]; e != nil {
		c.size -= e.Value.(*block).size
		c.lru.Remove(e)
		delete(c.byKey, k)
	}
	if b.size > c.budget {
		return
	}
	c.byKey[k] = c.lru.PushFront(b)
	c.size += b.size
	c.evict()
}

func (c *cellCache) evict() {
	for c.size > c.budget {
		e := c.lru.Back()
		b := e.Value.(*block)
		c.lru.Remove(e)
		delete(c.byKey, b.key)
		c.size -= b.size
		c.evictions++
	}
}

// apply puts newer versions of cells into their blocks when those are
// cached (a block not cached is read whole when next needed).
func (c *cellCache) apply(rows []cellRow) {
	if len(rows) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range rows {
		e := c.byKey[store.BlockOf(r.key)]
		if e == nil {
			continue
		}
		b := e.Value.(*block)
		if old, ok := b.cells[r.key]; ok {
			if old.rev >= r.rev {
				continue
			}
			b.size -= cellSize(old.t)
			c.size -= cellSize(old.t)
		}
		b.cells[r.key] = cachedCell{t: r.t, rev: r.rev}
		b.size += cellSize(r.t)
		c.size += cellSize(r.t)
	}
	c.evict()
}

// lookup returns cell k from the cache: found when cached, known when its
// block is cached (a cached block without k means k is not stored).
func (c *cellCache) lookup(k sipas.CellKey) (cc cachedCell, found, known bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.byKey[store.BlockOf(k)]
	if e == nil {
		return cc, false, false
	}
	cc, found = e.Value.(*block).cells[k]
	return cc, found, true
}

func (c *cellCache) sinceRefresh() time.Duration {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	return time.Since(c.lastRefresh)
}

// CacheStats returns the state of the cell cache.
func (s *Store) CacheStats() store.CacheStats {
	c := s.cells
	c.mu.Lock()
	defer c.mu.Unlock()
	return store.CacheStats{Bytes: c.size, Budget: c.budget, Blocks: c.lru.Len(), Hits: c.hits, Misses: c.misses, Evictions: c.evictions}
}

// maxMonthsPerRead bounds the months one read walks (a hundred years).
const maxMonthsPerRead = 1200

// QueryCells calls fn for every cell cq selects (sipas.CellQuerier), read
// by block from the cache or, on a miss, by one range read of the tallies
// table. The cells are this replica's view: at most FreshnessBound behind
// the database.
func (s *Store) QueryCells(cq sipas.CellQuery, fn func(k sipas.CellKey, t *sipas.Tally)) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.TxTimeout)
	defer cancel()
	from, to := cq.FromMonth, cq.ToMonth
	if from <= 0 || to <= 0 {
		var lo, hi *int32
		err := s.read(ctx, "pgstore.query_cells", func(c *pgxpool.Conn) error {
			return c.QueryRow(ctx, "SELECT min(month), max(month) FROM tallies WHERE questionnaire_id = $1", cq.QuestionnaireID).Scan(&lo, &hi)
		})
		if err != nil {
			return err
		}
		if lo == nil {
			return nil
		}
		if from <= 0 {
			from = int(*lo)
		}
		if to <= 0 {
			to = int(*hi)
		}
	}
	n := 0
	for m := from; m <= to; m = nextMonth(m) {
		if n++; n > maxMonthsPerRead {
			return fmt.Errorf("read cells: more than %d months asked for", maxMonthsPerRead)
		}
		if err := s.readBlock(ctx, store.BlockKey{QuestionnaireID: cq.QuestionnaireID, Month: m}, fn); err != nil {
			return err
		}
		if !cq.Units {
			continue
		}
		if cq.UnitProvinceIDs == nil {
			// Every province's unit cells of the month: one range read,
			// not cached (the blocks are per province).
			err := s.read(ctx, "pgstore.query_cells", func(c *pgxpool.Conn) error {
				rows, err := c.Query(ctx, "SELECT "+cellColumns+" FROM tallies WHERE questionnaire_id = $1 AND kind = 1 AND month = $2", cq.QuestionnaireID, int32(m))
				if err != nil {
					return err
				}
				cells, err := collectCells(rows)
				emitCells(cells, fn)
				return err
			})
			if err != nil {
				return err
			}
			continue
		}
		for _, pid := range cq.UnitProvinceIDs {
			if err := s.readBlock(ctx, store.BlockKey{QuestionnaireID: cq.QuestionnaireID, Month: m, Units: true, ProvinceID: pid}, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

func nextMonth(m int) int {
	if m%100 >= 12 {
		return (m/100+1)*100 + 1
	}
	return m + 1
}

// readBlock calls fn for the cells of block k, loading it on a miss. The
// load holds refreshMu, so no refresh runs meanwhile: the next refresh
// reads every change committed after the load's snapshot (see refresh).
func (s *Store) readBlock(ctx context.Context, k store.BlockKey, fn func(k sipas.CellKey, t *sipas.Tally)) error {
	c := s.cells
	cells, ok := c.get(k)
	if !ok {
		c.refreshMu.Lock()
		cells, ok = c.get(k)
		if !ok {
			err := s.read(ctx, "pgstore.read_block", func(conn *pgxpool.Conn) error {
				q := "SELECT " + cellColumns + " FROM tallies WHERE questionnaire_id = $1 AND kind = $2 AND month = $3"
				args := []any{k.QuestionnaireID, int16(0), int32(k.Month)}
				if k.Units {
					q += " AND province_id = $4"
					args = append(args[:1], int16(1), int32(k.Month), k.ProvinceID)
				}
				rows, err := conn.Query(ctx, q, args...)
				if err != nil {
					return err
				}
				cells, err = collectCells(rows)
				return err
			})
			if err != nil {
				c.refreshMu.Unlock()
				return err
			}
			c.add(k, cells)
		}
		c.refreshMu.Unlock()
	}
	emitCells(cells, fn)
	return nil
}

// emitCells calls fn for each cell that counts a respondent. A cell whose
// responses were all withdrawn or amended out of it keeps its row (holding
// zero, so that every replica's cache learns of the change through its
// xid) and reads as absent, as in the SQLite store.
func emitCells(cells []cellRow, fn func(k sipas.CellKey, t *sipas.Tally)) {
	for _, r := range cells {
		if r.t.Respondents != 0 {
			fn(r.key, r.t)
		}
	}
}

// EachCell calls fn for every cell of the questionnaire whose month is in
// fromMonth..toMonth (sipas.CellSource; the engine uses QueryCells). A
// read that fails is logged and reads as no cells.
func (s *Store) EachCell(questionnaireID string, fromMonth, toMonth int, fn func(k sipas.CellKey, t *sipas.Tally)) {
	err := s.QueryCells(sipas.CellQuery{QuestionnaireID: questionnaireID, FromMonth: fromMonth, ToMonth: toMonth, Units: true}, fn)
	if err != nil {
		s.opts.Logger.Error("pgstore: reading cells failed", "err", err)
	}
}

// refresh reads the cells written since the last refresh into the blocks
// of the cache (the first time it only sets the watermark).
func (s *Store) refresh(ctx context.Context) error {
	c := s.cells
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	var rows []cellRow
	var mark string
	err := s.tx(ctx, "pgstore.refresh", pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(ctx context.Context, tx pgx.Tx) error {
		var err error
		rows, mark, err = changedCells(ctx, tx, c.watermark)
		return err
	})
	if err != nil {
		return err
	}
	c.apply(rows)
	c.watermark = mark
	c.lastRefresh = time.Now()
	return nil
}

// changedCells returns the cells written by transactions with xid >= since
// (none when since is "") and the xmin of tx's snapshot, the next
// watermark.
// tx must be REPEATABLE READ, so both statements see the same snapshot.
func changedCells(ctx context.Context, tx pgx.Tx, since string) ([]cellRow, string, error) {
	var mark string
	if err := tx.QueryRow(ctx, "SELECT pg_snapshot_xmin(pg_current_snapshot())::text").Scan(&mark); err != nil {
		return nil, "", err
	}
	if since == "" {
		// The first refresh: nothing is cached yet, blocks are read when
		// needed.
		return nil, mark, nil
	}
	rows, err := tx.Query(ctx, "SELECT "+cellColumns+" FROM tallies WHERE xid >= $1::text::xid8", since)
	if err != nil {
		return nil, "", err
	}
	cells, err := collectCells(rows)
	return cells, mark, err
}

// refreshLoop refreshes the cache every RefreshInterval until Close. A
// failed refresh is logged and retried on the next tick; Ping reports the
// replica not ready while the cache is older than FreshnessBound.
func (s *Store) refreshLoop() {
	defer close(s.refreshDone)
	t := time.NewTicker(s.opts.RefreshInterval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), FreshnessBound)
		err := s.refresh(ctx)
		cancel()
		if err != nil && !failing {
			s.opts.Logger.Warn("pgstore: reading changed aggregate cells failed; retrying", "err", err)
		}
		if err == nil && failing {
			s.opts.Logger.Info("pgstore: aggregate cells read again")
		}
		failing = err != nil
	}
}

// Recount recomputes every aggregate cell from the stored responses,
// independently of the tallies table and of the cache.
func (s *Store) Recount(ctx context.Context) (map[sipas.CellKey]*sipas.Tally, error) {
	var out map[sipas.CellKey]*sipas.Tally
	err := s.tx(ctx, "pgstore.recount", pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(ctx context.Context, tx pgx.Tx) error {
		var err error
		out, err = s.recount(ctx, tx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore.recount: %w", err)
	}
	return out, nil
}

func (s *Store) recount(ctx context.Context, tx pgx.Tx) (map[sipas.CellKey]*sipas.Tally, error) {
	rows, err := tx.Query(ctx, "SELECT questionnaire_id, province_id, month, channel, unit_id, payload, flags FROM responses WHERE NOT withdrawn ORDER BY seq")
	if err != nil {
		return nil, err
	}
	out := map[sipas.CellKey]*sipas.Tally{}
	var (
		k       sipas.CellKey
		m       int32
		ch      int16
		payload []byte
		seen    []bool
		flags   int32
	)
	_, err = pgx.ForEachRow(rows, []any{&k.QuestionnaireID, &k.ProvinceID, &m, &ch, &k.UnitID, &payload, &flags}, func() error {
		k.Month, k.Channel = int(m), sipas.Channel(ch)
		q := s.cat.Get(k.QuestionnaireID)
		if q == nil {
			return fmt.Errorf("stored response of unknown questionnaire %q", k.QuestionnaireID)
		}
		r := &sipas.Response{QuestionnaireID: k.QuestionnaireID}
		if err := store.DecodePayload(q, payload, r); err != nil {
			return err
		}
		if len(seen) < len(q.Nodes) {
			seen = make([]bool, len(q.Nodes))
		}
		for _, key := range store.CountedIn(k, sipas.Flags(flags)) {
			t := out[key]
			if t == nil {
				t = sipas.NewTally(q)
				out[key] = t
			}
			t.Add(q, r, seen)
		}
		return nil
	})
	return out, err
}

// CheckAggregates verifies, in one snapshot of the database, that the
// tallies table equals a recount of every stored response, and that the
// blocks in this replica's cache, refreshed from the same snapshot, hold
// every cell of theirs as stored (a cell the cache has in a newer version,
// written after the snapshot, is not a difference).
func (s *Store) CheckAggregates(ctx context.Context) error {
	const op = "pgstore.check_aggregates"
	c := s.cells
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	var diffs []string
	err := s.tx(ctx, op, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(ctx context.Context, tx pgx.Tx) error {
		changed, mark, err := changedCells(ctx, tx, c.watermark)
		if err != nil {
			return err
		}
		c.apply(changed)
		c.watermark, c.lastRefresh = mark, time.Now()
		rows, err := tx.Query(ctx, "SELECT "+cellColumns+" FROM tallies")
		if err != nil {
			return err
		}
		stored, err := collectCells(rows)
		if err != nil {
			return err
		}
		table := make(map[sipas.CellKey]*sipas.Tally, len(stored))
		for _, r := range stored {
			if r.t.Respondents != 0 || !r.t.Equal(&sipas.Tally{Slots: make([]int64, len(r.t.Slots)), NodeN: make([]int64, len(r.t.NodeN))}) {
				table[r.key] = r.t // an emptied cell (zero) is not a difference
			}
		}
		recount, err := s.recount(ctx, tx)
		if err != nil {
			return err
		}
		diffs = append(diffs, store.DiffCells("recount", recount, "tallies table", table)...)
		for _, r := range stored {
			cc, ok, known := c.lookup(r.key)
			switch {
			case !known:
				// Its block is not cached: reads take it from the table.
			case !ok:
				diffs = append(diffs, fmt.Sprintf("cell %v in the tallies table, not in its cached block", r.key))
			case cc.rev == r.rev && !cc.t.Equal(r.t):
				diffs = append(diffs, fmt.Sprintf("cell %v: cache and tallies table differ at rev %d", r.key, r.rev))
			case cc.rev < r.rev:
				diffs = append(diffs, fmt.Sprintf("cell %v: cache at rev %d behind the tallies table at rev %d", r.key, cc.rev, r.rev))
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return store.DisagreementError(op, diffs)
}
