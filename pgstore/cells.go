package pgstore

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

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

const cellColumns = "questionnaire_id, month, province_id, unit_id, channel, respondents, slots, node_n, rev"

// cellRow is one stored cell.
type cellRow struct {
	key sipas.CellKey
	t   *sipas.Tally
	rev int64
}

func collectCells(rows pgx.Rows) ([]cellRow, error) {
	var out []cellRow
	var (
		k   sipas.CellKey
		m   int32
		ch  int16
		t   sipas.Tally
		rev int64
	)
	_, err := pgx.ForEachRow(rows, []any{&k.QuestionnaireID, &m, &k.ProvinceID, &k.UnitID, &ch, &t.Respondents, &t.Slots, &t.NodeN, &rev}, func() error {
		k.Month, k.Channel = int(m), sipas.Channel(ch)
		c := &sipas.Tally{Respondents: t.Respondents, Slots: t.Slots, NodeN: t.NodeN}
		out = append(out, cellRow{key: k, t: c, rev: rev})
		t.Slots, t.NodeN = nil, nil // scanned anew for the next row
		return nil
	})
	return out, err
}

type cachedCell struct {
	t   *sipas.Tally
	rev int64
}

// cellCache holds the cells by questionnaire and month. Tallies in it are
// never modified: a newer version of a cell replaces the pointer.
type cellCache struct {
	mu    sync.RWMutex
	cells map[string]map[int]map[sipas.CellKey]cachedCell

	refreshMu   sync.Mutex // one refresh at a time
	watermark   string     // xid8 of the last refresh's snapshot xmin; "" before the first
	lastRefresh time.Time
}

func newCellCache() *cellCache {
	return &cellCache{cells: map[string]map[int]map[sipas.CellKey]cachedCell{}}
}

// apply puts newer versions of cells into the cache.
func (c *cellCache) apply(rows []cellRow) {
	if len(rows) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range rows {
		months := c.cells[r.key.QuestionnaireID]
		if months == nil {
			months = map[int]map[sipas.CellKey]cachedCell{}
			c.cells[r.key.QuestionnaireID] = months
		}
		cells := months[r.key.Month]
		if cells == nil {
			cells = map[sipas.CellKey]cachedCell{}
			months[r.key.Month] = cells
		}
		if old, ok := cells[r.key]; ok && old.rev >= r.rev {
			continue
		}
		cells[r.key] = cachedCell{t: r.t, rev: r.rev}
	}
}

func (c *cellCache) sinceRefresh() time.Duration {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	return time.Since(c.lastRefresh)
}

// EachCell calls fn for every cached cell of the questionnaire whose month
// is in fromMonth..toMonth (0 leaves that end open).
func (s *Store) EachCell(questionnaireID string, fromMonth, toMonth int, fn func(k sipas.CellKey, t *sipas.Tally)) {
	c := s.cells
	c.mu.RLock()
	defer c.mu.RUnlock()
	for m, cells := range c.cells[questionnaireID] {
		if (fromMonth > 0 && m < fromMonth) || (toMonth > 0 && m > toMonth) {
			continue
		}
		for k, cc := range cells {
			fn(k, cc.t)
		}
	}
}

// Cells returns a copy of every cached cell.
func (s *Store) Cells() map[sipas.CellKey]*sipas.Tally {
	c := s.cells
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := map[sipas.CellKey]*sipas.Tally{}
	for _, months := range c.cells {
		for _, cells := range months {
			for k, cc := range cells {
				t := *cc.t
				out[k] = &t
			}
		}
	}
	return out
}

// refresh reads the cells written since the last refresh (all of them the
// first time) into the cache.
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
// ("" for every cell) and the xmin of tx's snapshot, the next watermark.
// tx must be REPEATABLE READ, so both statements see the same snapshot.
func changedCells(ctx context.Context, tx pgx.Tx, since string) ([]cellRow, string, error) {
	var mark string
	if err := tx.QueryRow(ctx, "SELECT pg_snapshot_xmin(pg_current_snapshot())::text").Scan(&mark); err != nil {
		return nil, "", err
	}
	q := "SELECT " + cellColumns + " FROM tallies"
	var args []any
	if since != "" {
		q += " WHERE xid >= $1::text::xid8"
		args = append(args, since)
	}
	rows, err := tx.Query(ctx, q, args...)
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
	rows, err := tx.Query(ctx, "SELECT questionnaire_id, province_id, month, channel, unit_id, payload FROM responses ORDER BY seq")
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
	)
	_, err = pgx.ForEachRow(rows, []any{&k.QuestionnaireID, &k.ProvinceID, &m, &ch, &k.UnitID, &payload}, func() error {
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
		for _, key := range store.CountedIn(k) {
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
// tallies table equals a recount of every stored response, and that this
// replica's cache, refreshed from the same snapshot, holds every cell as
// stored (a cell the cache has in a newer version, written after the
// snapshot, is not a difference).
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
			table[r.key] = r.t
		}
		recount, err := s.recount(ctx, tx)
		if err != nil {
			return err
		}
		diffs = append(diffs, store.DiffCells("recount", recount, "tallies table", table)...)
		c.mu.RLock()
		for _, r := range stored {
			cc, ok := c.cells[r.key.QuestionnaireID][r.key.Month][r.key]
			switch {
			case !ok:
				diffs = append(diffs, fmt.Sprintf("cell %v in the tallies table, not in the cache", r.key))
			case cc.rev == r.rev && !cc.t.Equal(r.t):
				diffs = append(diffs, fmt.Sprintf("cell %v: cache and tallies table differ at rev %d", r.key, r.rev))
			case cc.rev < r.rev:
				diffs = append(diffs, fmt.Sprintf("cell %v: cache at rev %d behind the tallies table at rev %d", r.key, cc.rev, r.rev))
			}
		}
		c.mu.RUnlock()
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if len(diffs) == 0 {
		return nil
	}
	sort.Strings(diffs)
	more := ""
	if len(diffs) > 10 {
		more = fmt.Sprintf(" (and %d more)", len(diffs)-10)
		diffs = diffs[:10]
	}
	return fmt.Errorf("%s: aggregates disagree in %s%s", op, strings.Join(diffs, "; "), more)
}
