package server

import (
	"context"

	"github.com/sipas-vn/sipas"
)

// withFlagged is the aggregates plus the cells of the flagged responses,
// for figures that include them. It keeps the base's ranged reads (a
// CellQuerier stays one), so including flagged responses costs the query
// what it costs without them plus the flagged cells.
type withFlagged struct {
	base  sipas.CellSource
	extra map[sipas.CellKey]*sipas.Tally
}

func (w withFlagged) EachCell(questionnaireID string, fromMonth, toMonth int, fn func(k sipas.CellKey, t *sipas.Tally)) {
	w.base.EachCell(questionnaireID, fromMonth, toMonth, fn)
	w.eachExtra(questionnaireID, fromMonth, toMonth, fn)
}

// QueryCells reads the base's cells as the base reads them (by range when
// it can), then the flagged cells of the months asked; callers filter.
func (w withFlagged) QueryCells(cq sipas.CellQuery, fn func(k sipas.CellKey, t *sipas.Tally)) error {
	if q, ok := w.base.(sipas.CellQuerier); ok {
		if err := q.QueryCells(cq, fn); err != nil {
			return err
		}
	} else {
		w.base.EachCell(cq.QuestionnaireID, cq.FromMonth, cq.ToMonth, fn)
	}
	w.eachExtra(cq.QuestionnaireID, cq.FromMonth, cq.ToMonth, fn)
	return nil
}

func (w withFlagged) eachExtra(questionnaireID string, fromMonth, toMonth int, fn func(k sipas.CellKey, t *sipas.Tally)) {
	for k, t := range w.extra {
		if k.QuestionnaireID == questionnaireID && k.Month >= fromMonth && k.Month <= toMonth {
			fn(k, t)
		}
	}
}

// flaggedEngine returns an engine whose cells include the flagged responses
// of the questionnaire collected in the whole years of fromMonth..toMonth
// (the years disclosure control reads), or nil when there are none.
func (s *Server) flaggedEngine(ctx context.Context, questionnaireID string, fromMonth, toMonth int, channel sipas.Channel) (*sipas.Engine, error) {
	cells, n, err := s.cfg.Store.FlaggedCells(ctx, questionnaireID, fromMonth/100*100+1, toMonth/100*100+12, channel)
	if err != nil || n == 0 {
		return nil, err
	}
	eng := *s.cfg.Engine
	eng.Source = withFlagged{base: s.cfg.Engine.Source, extra: cells}
	return &eng, nil
}

// flagCounts says how many flagged responses a figure left out or counted:
// the difference of its respondents with and without them (so it follows
// the figure's own rules: scope, boundaries, channel, a respondent counts
// with one valid answer), withheld (0) when either is suppressed so that it
// never discloses a small count.
func flagCounts(without, with int64, suppressed, include bool) (excluded, included int64) {
	diff := with - without
	if suppressed || diff < 0 {
		diff = 0
	}
	if include {
		return 0, diff
	}
	return diff, 0
}

// indexWithFlags computes an index without the flagged responses (the
// default) or with them, and says how many respondents of the scope the
// flagged ones are: left out, or included (see flagCounts).
func (s *Server) indexWithFlags(ctx context.Context, q sipas.Query, include bool) (rep *sipas.Report, excluded, included int64, err error) {
	from, to := q.Period.Months()
	flagged, err := s.flaggedEngine(ctx, q.QuestionnaireID, from, to, q.Channel)
	if err != nil {
		return nil, 0, 0, err
	}
	rep, err = s.cfg.Engine.Index(q)
	if err != nil || flagged == nil {
		return rep, 0, 0, err
	}
	all, err := flagged.Index(q)
	if err != nil {
		return nil, 0, 0, err
	}
	excluded, included = flagCounts(rep.Respondents, all.Respondents, rep.Suppressed || all.Suppressed, include)
	if include {
		return all, excluded, included, nil
	}
	return rep, excluded, included, nil
}

// withFlags is what a ranking or weak-points read needs about flagged
// responses: the engine it computes with (with them only when asked), and
// how many of them the scope it covers has in its period.
func (s *Server) withFlags(ctx context.Context, q sipas.Query, scope sipas.Scope, include bool) (eng *sipas.Engine, excluded, included int64, err error) {
	from, _ := q.Period.Previous().Months()
	_, to := q.Period.Months()
	flagged, err := s.flaggedEngine(ctx, q.QuestionnaireID, from, to, q.Channel)
	if err != nil || flagged == nil {
		return s.cfg.Engine, 0, 0, err
	}
	// The scope's index, with and without them: the count follows the
	// index's own rules, as GetIndex says it.
	sq := q
	sq.Scope, sq.NodeCode = scope, ""
	without, err := s.cfg.Engine.Index(sq)
	if err != nil {
		return nil, 0, 0, err
	}
	with, err := flagged.Index(sq)
	if err != nil {
		return nil, 0, 0, err
	}
	excluded, included = flagCounts(without.Respondents, with.Respondents, without.Suppressed || with.Suppressed, include)
	if include {
		return flagged, excluded, included, nil
	}
	return s.cfg.Engine, excluded, included, nil
}
