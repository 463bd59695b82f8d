package server

import (
	"context"

	"github.com/sipas-vn/sipas"
)

// withFlagged is the aggregates plus the cells of the flagged responses,
// for an index that includes them.
type withFlagged struct {
	base  sipas.CellSource
	extra map[sipas.CellKey]*sipas.Tally
}

func (w withFlagged) EachCell(questionnaireID string, fromMonth, toMonth int, fn func(k sipas.CellKey, t *sipas.Tally)) {
	w.base.EachCell(questionnaireID, fromMonth, toMonth, fn)
	for k, t := range w.extra {
		if k.QuestionnaireID == questionnaireID && k.Month >= fromMonth && k.Month <= toMonth {
			fn(k, t)
		}
	}
}

// indexWithFlags computes an index without the flagged responses (the
// default) or with them, and says how many respondents of the scope the
// flagged ones are: left out, or included. The count is the difference of
// the two computations' respondents, so it follows the index's own rules
// (scope, boundaries, channel, a respondent counts with one valid answer);
// it is withheld (0) when either computation is suppressed, so that it
// never discloses a small count.
func (s *Server) indexWithFlags(ctx context.Context, q sipas.Query, include bool) (rep *sipas.Report, excluded, included int64, err error) {
	rep, err = s.cfg.Engine.Index(q)
	if err != nil {
		return nil, 0, 0, err
	}
	from, to := q.Period.Months()
	cells, n, err := s.cfg.Store.FlaggedCells(ctx, q.QuestionnaireID, from, to, q.Channel)
	if err != nil || n == 0 {
		return rep, 0, 0, err
	}
	eng := *s.cfg.Engine
	eng.Source = withFlagged{base: s.cfg.Engine.Source, extra: cells}
	all, err := eng.Index(q)
	if err != nil {
		return nil, 0, 0, err
	}
	diff := all.Respondents - rep.Respondents
	if rep.Suppressed || all.Suppressed {
		diff = 0
	}
	if include {
		return all, 0, diff, nil
	}
	return rep, diff, 0, nil
}
