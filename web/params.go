package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/export"
)

// params are what every view is computed for; they are all in the URL, so
// every view is linkable.
type params struct {
	Q      string // questionnaire id
	Period sipas.Period
	B      sipas.Boundaries
	Ch     sipas.Channel
	Lang   lang
	// Flagged counts responses flagged for data quality in the figures
	// (include_flagged); by default they are left out and counted apart.
	Flagged bool
}

// defaultBoundaries is current: since the 2025 merger officials compare the
// provinces that exist today.
const defaultBoundaries = sipas.BoundariesCurrent

func (h *Handler) parseParams(r *http.Request) (params, error) {
	q := r.URL.Query()
	p := params{Q: q.Get("q"), B: defaultBoundaries, Lang: langOf(q.Get("lang"))}
	if p.Q == "" {
		if l := h.cfg.Catalog.List(); len(l) > 0 {
			p.Q = l[len(l)-1].ID // the newest questionnaire
		}
	}
	p.Period = sipas.Period{Year: h.cfg.Now().In(sipas.VietnamZone).Year()}
	if s := q.Get("period"); s != "" {
		per, err := sipas.ParsePeriod(s)
		if err != nil {
			return p, statusOf(err)
		}
		p.Period = per
	}
	switch q.Get("flagged") {
	case "", "0":
	case "1":
		p.Flagged = true
	default:
		return p, invalidParam("flagged", "flagged must be 0 or 1")
	}
	switch q.Get("b") {
	case "", "current":
	case "as_collected":
		p.B = sipas.BoundariesAsCollected
	default:
		return p, invalidParam("b", "boundaries must be current or as_collected")
	}
	switch ch := q.Get("ch"); ch {
	case "", "all":
	default:
		found := false
		for _, c := range sipas.Channels {
			if export.ChannelName(channelProto(c)) == ch {
				p.Ch, found = c, true
			}
		}
		if !found {
			return p, invalidParam("ch", "channel must be all, kiosk, field, post, online or phone")
		}
	}
	return p, nil
}

func (p params) values() url.Values {
	v := url.Values{}
	v.Set("q", p.Q)
	v.Set("period", p.Period.String())
	if p.B == sipas.BoundariesAsCollected {
		v.Set("b", "as_collected")
	} else {
		v.Set("b", "current")
	}
	v.Set("ch", export.ChannelName(channelProto(p.Ch)))
	v.Set("lang", p.Lang.code())
	if p.Flagged {
		v.Set("flagged", "1")
	}
	return v
}

// Query is the URL query of the params, with "?".
func (p params) Query() string { return "?" + p.values().Encode() }

// with is the query with one parameter changed.
func (p params) with(key, value string) string {
	v := p.values()
	v.Set(key, value)
	return "?" + v.Encode()
}

// BParam and ChParam are the URL values of the boundaries and channel.
func (p params) BParam() string {
	if p.B == sipas.BoundariesAsCollected {
		return "as_collected"
	}
	return "current"
}

func (p params) ChParam() string { return export.ChannelName(channelProto(p.Ch)) }

// seriesRange is the periods a view's time series covers: the selected
// period and those before it of the same length (5 years, 8 quarters or
// 12 months).
func seriesRange(p sipas.Period) (from, to sipas.Period) {
	n := 5
	switch {
	case p.IsQuarter():
		n = 8
	case p.IsMonth():
		n = 12
	}
	from = p
	for i := 1; i < n; i++ {
		from = from.Previous()
	}
	return from, p
}

// periodOptions are the periods offered by the picker: five years back from
// the selected year's successor, each with its quarters and months.
func periodOptions(sel sipas.Period, now int, l lang) []optGroup {
	last := max(now, sel.Year)
	var out []optGroup
	for y := last; y > last-5; y-- {
		g := optGroup{Label: strings.TrimSpace(l.t("year") + " " + itoa(y))}
		add := func(p sipas.Period, label string) {
			g.Options = append(g.Options, option{Value: p.String(), Label: label, Selected: p == sel})
		}
		add(sipas.Period{Year: y}, l.t("whole_year")+" "+itoa(y))
		for q := 1; q <= 4; q++ {
			add(sipas.Period{Year: y, Quarter: q}, l.t("quarter")+" "+itoa(q)+"/"+itoa(y))
		}
		for m := 1; m <= 12; m++ {
			add(sipas.Period{Year: y, Month: m}, l.t("month")+" "+itoa(m)+"/"+itoa(y))
		}
		out = append(out, g)
	}
	return out
}

type option struct {
	Value, Label string
	Selected     bool
}

type optGroup struct {
	Label   string
	Options []option
}

// LangCode is the page language, "vi" or "en".
func (p params) LangCode() string { return p.Lang.code() }
