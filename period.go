package sipas

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Period is a survey period: a calendar year (Quarter and Month zero), a
// quarter of it (Quarter 1..4) or a month of it (Month 1..12). Periods are
// fixed calendar windows in Vietnam time, never arbitrary date ranges, so that
// adjacent windows cannot be differenced to recover a suppressed cell.
type Period struct {
	Year    int
	Quarter int // 1..4, or 0
	Month   int // 1..12, or 0
}

// Period bounds accepted by Validate.
const (
	MinPeriodYear = 2015
	MaxPeriodYear = 2100
)

// Validate returns a KindInvalid *Error with field "period" unless the year
// is in 2015..2100, the quarter in 0..4, the month in 0..12 and at most one of
// quarter and month is set.
func (p Period) Validate() error {
	var desc string
	switch {
	case p.Year < MinPeriodYear || p.Year > MaxPeriodYear:
		desc = fmt.Sprintf("year %d is outside %d..%d", p.Year, MinPeriodYear, MaxPeriodYear)
	case p.Quarter < 0 || p.Quarter > 4:
		desc = fmt.Sprintf("quarter %d is outside 1..4", p.Quarter)
	case p.Month < 0 || p.Month > 12:
		desc = fmt.Sprintf("month %d is outside 1..12", p.Month)
	case p.Quarter != 0 && p.Month != 0:
		desc = "give a quarter or a month, not both"
	default:
		return nil
	}
	return Invalid("validate period", Violation{Field: "period", Reason: "INVALID_PERIOD", Description: desc})
}

// IsYear, IsQuarter and IsMonth report the period's granularity.
func (p Period) IsYear() bool    { return p.Quarter == 0 && p.Month == 0 }
func (p Period) IsQuarter() bool { return p.Quarter != 0 }
func (p Period) IsMonth() bool   { return p.Month != 0 }

// SameGranularity reports whether p and o are both years, both quarters or
// both months.
func (p Period) SameGranularity(o Period) bool {
	return p.IsYear() == o.IsYear() && p.IsQuarter() == o.IsQuarter() && p.IsMonth() == o.IsMonth()
}

// Months returns the first and last month of the period in the cell form
// year*100+month (see CellKey.Month), both inclusive.
func (p Period) Months() (from, to int) {
	y := p.Year * 100
	switch {
	case p.Month != 0:
		return y + p.Month, y + p.Month
	case p.Quarter != 0:
		return y + 3*p.Quarter - 2, y + 3*p.Quarter
	default:
		return y + 1, y + 12
	}
}

// Contains reports whether the cell month m (year*100+month) is in the period.
func (p Period) Contains(m int) bool {
	from, to := p.Months()
	return from <= m && m <= to
}

// Start returns the first instant of the period, midnight Vietnam time.
func (p Period) Start() time.Time {
	from, _ := p.Months()
	return time.Date(from/100, time.Month(from%100), 1, 0, 0, 0, 0, VietnamZone)
}

// End returns the first instant after the period, midnight Vietnam time.
func (p Period) End() time.Time {
	_, to := p.Months()
	return time.Date(to/100, time.Month(to%100)+1, 1, 0, 0, 0, 0, VietnamZone)
}

// Previous returns the period of the same length just before p: the previous
// year, quarter (Q1's is the previous year's Q4) or month (January's is the
// previous year's December).
func (p Period) Previous() Period {
	switch {
	case p.Month != 0:
		if p.Month == 1 {
			return Period{Year: p.Year - 1, Month: 12}
		}
		return Period{Year: p.Year, Month: p.Month - 1}
	case p.Quarter != 0:
		if p.Quarter == 1 {
			return Period{Year: p.Year - 1, Quarter: 4}
		}
		return Period{Year: p.Year, Quarter: p.Quarter - 1}
	default:
		return Period{Year: p.Year - 1}
	}
}

// Next returns the period of the same length just after p.
func (p Period) Next() Period {
	switch {
	case p.Month != 0:
		if p.Month == 12 {
			return Period{Year: p.Year + 1, Month: 1}
		}
		return Period{Year: p.Year, Month: p.Month + 1}
	case p.Quarter != 0:
		if p.Quarter == 4 {
			return Period{Year: p.Year + 1, Quarter: 1}
		}
		return Period{Year: p.Year, Quarter: p.Quarter + 1}
	default:
		return Period{Year: p.Year + 1}
	}
}

// ordinal numbers periods of one granularity consecutively.
func (p Period) ordinal() int {
	switch {
	case p.Month != 0:
		return p.Year*12 + p.Month - 1
	case p.Quarter != 0:
		return p.Year*4 + p.Quarter - 1
	default:
		return p.Year
	}
}

// PeriodsBetween returns the number of periods from p to o inclusive (o
// after p gives a positive count), or 0 when they differ in granularity or
// o is before p.
func PeriodsBetween(p, o Period) int {
	if !p.SameGranularity(o) || o.ordinal() < p.ordinal() {
		return 0
	}
	return o.ordinal() - p.ordinal() + 1
}

// String formats the period as "2026", "2026-Q3" or "2026-07".
func (p Period) String() string {
	switch {
	case p.Month != 0:
		return fmt.Sprintf("%04d-%02d", p.Year, p.Month)
	case p.Quarter != 0:
		return fmt.Sprintf("%04d-Q%d", p.Year, p.Quarter)
	default:
		return fmt.Sprintf("%04d", p.Year)
	}
}

// ParsePeriod parses what String formats ("2026", "2026-Q3" or "2026-q3",
// "2026-07") and validates it.
func ParsePeriod(s string) (Period, error) {
	bad := func() (Period, error) {
		return Period{}, Invalid("parse period", Violation{Field: "period", Reason: "INVALID_PERIOD",
			Description: fmt.Sprintf("%q is not a period; expected YYYY, YYYY-Qn or YYYY-MM", s)})
	}
	ys, rest, dash := strings.Cut(s, "-")
	if len(ys) != 4 {
		return bad()
	}
	y, err := strconv.Atoi(ys)
	if err != nil || y < 0 {
		return bad()
	}
	p := Period{Year: y}
	if dash {
		switch {
		case len(rest) == 2 && (rest[0] == 'Q' || rest[0] == 'q') && rest[1] >= '1' && rest[1] <= '4':
			p.Quarter = int(rest[1] - '0')
		case len(rest) == 2 && rest[0] >= '0' && rest[0] <= '9' && rest[1] >= '0' && rest[1] <= '9':
			p.Month = int(rest[0]-'0')*10 + int(rest[1]-'0')
			if p.Month == 0 {
				return bad()
			}
		default:
			return bad()
		}
	}
	if err := p.Validate(); err != nil {
		return Period{}, err
	}
	return p, nil
}
