package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/sipas-vn/sipas"
)

// loadTallies reads every tallies row into memory. A cell whose layout does
// not match its questionnaire (a definition edited after responses were
// stored) is refused: counting on would mix two layouts.
func (s *Store) loadTallies(ctx context.Context) error {
	rows, err := s.reader.QueryContext(ctx, "SELECT questionnaire_id, province_id, month, channel, unit_id, data FROM tallies")
	if err != nil {
		return fmt.Errorf("load tallies: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		k, t, err := scanTally(rows)
		if err != nil {
			return fmt.Errorf("load tallies: %w", err)
		}
		if q := s.cat.Get(k.QuestionnaireID); q != nil && (len(t.Slots) != q.Slots || len(t.NodeN) != len(q.Nodes)) {
			return fmt.Errorf("load tallies: cell %v has %d slots and %d nodes, questionnaire %s has %d and %d",
				k, len(t.Slots), len(t.NodeN), q.ID, q.Slots, len(q.Nodes))
		}
		t.TrackNonzero()
		s.cells.put(k, t)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load tallies: %w", err)
	}
	return nil
}

func scanTally(rows *sql.Rows) (sipas.CellKey, *sipas.Tally, error) {
	var k sipas.CellKey
	var ch int64
	var data []byte
	if err := rows.Scan(&k.QuestionnaireID, &k.ProvinceID, &k.Month, &ch, &k.UnitID, &data); err != nil {
		return k, nil, err
	}
	k.Channel = sipas.Channel(ch)
	t := new(sipas.Tally)
	if err := t.UnmarshalBinary(data); err != nil {
		return k, nil, fmt.Errorf("cell %v: %w", k, err)
	}
	return k, t, nil
}

// EachCell calls fn for every aggregate cell of the questionnaire whose month
// is within [fromMonth, toMonth] (year*100+month; 0 leaves that end open).
// The cells are those of one instant between two commits: fn runs with the
// store's read lock held, and commits wait for it. fn must neither modify
// nor keep t (cells are updated in place), nor call into the store.
func (s *Store) EachCell(questionnaireID string, fromMonth, toMonth int, fn func(k sipas.CellKey, t *sipas.Tally)) {
	s.cellsMu.RLock()
	defer s.cellsMu.RUnlock()
	s.cells.each(questionnaireID, fromMonth, toMonth, fn)
}

// Cells returns a copy of every aggregate cell in memory, as of one instant
// between two commits.
func (s *Store) Cells() map[sipas.CellKey]*sipas.Tally {
	s.cellsMu.RLock()
	defer s.cellsMu.RUnlock()
	out := map[sipas.CellKey]*sipas.Tally{}
	s.cells.all(func(k sipas.CellKey, t *sipas.Tally) {
		out[k] = &sipas.Tally{Respondents: t.Respondents, Slots: slices.Clone(t.Slots), NodeN: slices.Clone(t.NodeN)}
	})
	return out
}

// CellCount returns the number of aggregate cells in memory.
func (s *Store) CellCount() int {
	s.cellsMu.RLock()
	defer s.cellsMu.RUnlock()
	n := 0
	s.cells.all(func(sipas.CellKey, *sipas.Tally) { n++ })
	return n
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
	rows, err := tx.QueryContext(ctx, "SELECT questionnaire_id, province_id, month, channel, unit_id, payload, flags FROM responses ORDER BY seq")
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

// CheckAggregates verifies that the aggregates in memory, what a restart
// would rebuild (the tallies checkpoint plus the responses stored after it)
// and a recount from every stored response all agree, as of one instant:
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
	mem := s.Cells()
	s.commitMu.Unlock()
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}

	rebuilt := map[sipas.CellKey]*sipas.Tally{}
	rows, err := tx.QueryContext(ctx, "SELECT questionnaire_id, province_id, month, channel, unit_id, data FROM tallies")
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	for rows.Next() {
		k, t, err := scanTally(rows)
		if err != nil {
			rows.Close()
			return fmt.Errorf("%s: %w", op, err)
		}
		rebuilt[k] = t
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if _, _, err := s.replay(ctx, tx, seq, func(k sipas.CellKey, q *sipas.Questionnaire) *sipas.Tally {
		t := rebuilt[k]
		if t == nil {
			t = sipas.NewTally(q)
			rebuilt[k] = t
		}
		return t
	}); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	recount, err := s.recount(ctx, tx)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	var diffs []string
	diffs = append(diffs, diffCells("recount", recount, "checkpoint+replay", rebuilt)...)
	diffs = append(diffs, diffCells("recount", recount, "memory", mem)...)
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
