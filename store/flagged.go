package store

import (
	"context"
	"fmt"

	"github.com/sipas-vn/sipas"
)

// FlaggedCells tallies the flagged responses of a questionnaire collected
// in fromMonth..toMonth (and through channel, unless unspecified) into the
// cells they would be counted in were they not flagged, and returns how
// many responses it read. The aggregates never count flagged responses;
// an index that includes them, or says how many it left out, merges these
// cells with the aggregates. Flagged responses are rare, and the partial
// index responses_flagged holds only them, so this read costs what there is
// of them in the months asked, whatever the number of other responses.
func (s *Store) FlaggedCells(ctx context.Context, questionnaireID string, fromMonth, toMonth int, channel sipas.Channel) (map[sipas.CellKey]*sipas.Tally, int, error) {
	const op = "store.flagged_cells"
	q := s.cat.Get(questionnaireID)
	if q == nil {
		return nil, 0, nil
	}
	query := `SELECT province_id, month, channel, unit_id, payload FROM responses
		WHERE questionnaire_id = ? AND month BETWEEN ? AND ? AND flags <> 0 AND withdrawn = 0`
	args := []any{questionnaireID, fromMonth, toMonth}
	if channel != sipas.ChannelUnspecified {
		query += " AND channel = ?"
		args = append(args, int64(channel))
	}
	rows, err := s.reader.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", op, err)
	}
	defer rows.Close()
	out := map[sipas.CellKey]*sipas.Tally{}
	n := 0
	var (
		payload []byte
		answers []uint8
	)
	for rows.Next() {
		k := sipas.CellKey{QuestionnaireID: questionnaireID}
		var ch int64
		if err := rows.Scan(&k.ProvinceID, &k.Month, &ch, &k.UnitID, &payload); err != nil {
			return nil, 0, fmt.Errorf("%s: %w", op, err)
		}
		k.Channel = sipas.Channel(ch)
		if answers, err = payloadAnswers(q, payload, answers); err != nil {
			return nil, 0, fmt.Errorf("%s: %w", op, err)
		}
		keys, nk := countedIn(k, 0)
		for _, key := range keys[:nk] {
			t := out[key]
			if t == nil {
				t = sipas.NewTally(q)
				out[key] = t
			}
			t.AddAnswers(q, answers)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("%s: %w", op, err)
	}
	return out, n, nil
}
