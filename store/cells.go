package store

import "github.com/sipas-vn/sipas"

// cellIndex holds the in-memory aggregate cells by questionnaire and month,
// so that an index read touches only the months it asks for, however many
// years of data are stored.
type cellIndex map[string]map[int]map[sipas.CellKey]*sipas.Tally

func (c cellIndex) get(k sipas.CellKey) *sipas.Tally {
	return c[k.QuestionnaireID][k.Month][k]
}

func (c cellIndex) put(k sipas.CellKey, t *sipas.Tally) {
	months := c[k.QuestionnaireID]
	if months == nil {
		months = map[int]map[sipas.CellKey]*sipas.Tally{}
		c[k.QuestionnaireID] = months
	}
	cells := months[k.Month]
	if cells == nil {
		cells = map[sipas.CellKey]*sipas.Tally{}
		months[k.Month] = cells
	}
	cells[k] = t
}

// each calls fn for the cells of a questionnaire in fromMonth..toMonth
// (0 leaves that end open).
func (c cellIndex) each(questionnaireID string, fromMonth, toMonth int, fn func(sipas.CellKey, *sipas.Tally)) {
	months := c[questionnaireID]
	visit := func(cells map[sipas.CellKey]*sipas.Tally) {
		for k, t := range cells {
			fn(k, t)
		}
	}
	if fromMonth > 0 && toMonth > 0 && toMonth-fromMonth < 100*12 {
		// Walk the calendar months of the range: cheaper than scanning every
		// stored month when the history is long.
		for m := fromMonth; m <= toMonth; m = nextMonth(m) {
			visit(months[m])
		}
		return
	}
	for m, cells := range months {
		if (fromMonth > 0 && m < fromMonth) || (toMonth > 0 && m > toMonth) {
			continue
		}
		visit(cells)
	}
}

// all calls fn for every cell.
func (c cellIndex) all(fn func(sipas.CellKey, *sipas.Tally)) {
	for _, months := range c {
		for _, cells := range months {
			for k, t := range cells {
				fn(k, t)
			}
		}
	}
}

func nextMonth(m int) int {
	if m%100 >= 12 {
		return (m/100+1)*100 + 1
	}
	return m + 1
}
