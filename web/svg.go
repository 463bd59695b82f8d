package web

import (
	"fmt"
	"html/template"
	"math"
	"strings"

	"github.com/sipas-vn/sipas/export"
)

// Charts are drawn on the server as SVG: they print sharply, need no
// script, download as files, and each sits beside a table holding the same
// figures (the accessible alternative). Colours meet WCAG AA against white.

type bar struct {
	Label, Code string
	Value       *float64
	Lo, Hi      *float64
	State       export.State
}

func esc(s string) string { return template.HTMLEscapeString(s) }

// barChart draws horizontal bars (0–100 %) with their 95% intervals as
// whiskers, and an optional reference line (a mean). Rows without a value
// are left out; the table beside the chart lists them with their state.
func barChart(bars []bar, title string, ref *float64, l lang) template.HTML {
	var rows []bar
	for _, b := range bars {
		if b.Value != nil {
			rows = append(rows, b)
		}
	}
	const labelW, plotW, rowH, top = 230.0, 420.0, 18.0, 28.0
	width := labelW + plotW + 50
	height := top + rowH*float64(len(rows)) + 26
	if len(rows) == 0 {
		height = top + 30
	}
	x := func(v float64) float64 { return labelW + plotW*math.Max(0, math.Min(100, v))/100 }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-labelledby="t%p" font-family="sans-serif" font-size="11">`,
		width, height, width, height, &b)
	fmt.Fprintf(&b, `<title id="t%p">%s</title><rect width="100%%" height="100%%" fill="#fff"/>`, &b, esc(title))
	fmt.Fprintf(&b, `<text x="0" y="14" font-size="13" font-weight="bold" fill="#1a1a1a">%s</text>`, esc(title))
	for _, t := range []float64{0, 25, 50, 75, 100} {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.0f" y2="%.0f" stroke="#d0d0d0"/><text x="%.1f" y="%.0f" text-anchor="middle" fill="#444">%.0f</text>`,
			x(t), x(t), top-4, height-20, x(t), height-8, t)
	}
	if len(rows) == 0 {
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" fill="#444">%s</text>`, labelW, top+14, esc(l.t("no_rows")))
	}
	for i, r := range rows {
		y := top + rowH*float64(i)
		label := r.Label
		if r.Code != "" && r.Code != r.Label {
			label = r.Code + " " + r.Label
		}
		if len([]rune(label)) > 36 {
			label = string([]rune(label)[:35]) + "…"
		}
		fill := "#2a6fb0"
		if r.State == export.StateInsufficient {
			fill = "#8c8c8c"
		}
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end" fill="#1a1a1a">%s</text>`, labelW-6, y+12, esc(label))
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.1f" width="%.1f" height="%.0f" fill="%s"><title>%s: %.2f</title></rect>`,
			labelW, y+3, x(*r.Value)-labelW, rowH-6, fill, esc(label), *r.Value)
		if r.Lo != nil && r.Hi != nil {
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#1a1a1a" stroke-width="1.2"/>`, x(*r.Lo), x(*r.Hi), y+rowH/2, y+rowH/2)
			for _, v := range []float64{*r.Lo, *r.Hi} {
				fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#1a1a1a" stroke-width="1.2"/>`, x(v), x(v), y+4, y+rowH-4)
			}
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="#1a1a1a">%.2f</text>`, labelW+plotW+4, y+12, *r.Value)
	}
	if ref != nil && len(rows) > 0 {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.0f" y2="%.0f" stroke="#b2182b" stroke-dasharray="4 3" stroke-width="1.5"><title>%s %.2f</title></line>`,
			x(*ref), x(*ref), top-4, height-20, esc(l.t("mean")), *ref)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// lineChart draws a series as a line with its 95% interval as a band;
// periods without a value break the line.
func lineChart(pts []figure, title string, l lang) template.HTML {
	const left, plotW, plotH, top = 40.0, 600.0, 200.0, 28.0
	width, height := left+plotW+20, top+plotH+40
	n := len(pts)
	xOf := func(i int) float64 {
		if n <= 1 {
			return left + plotW/2
		}
		return left + plotW*float64(i)/float64(n-1)
	}
	lo, hi := 100.0, 0.0
	for _, p := range pts {
		for _, v := range []*float64{p.Value, p.Lo, p.Hi} {
			if v != nil {
				lo, hi = math.Min(lo, *v), math.Max(hi, *v)
			}
		}
	}
	if lo > hi {
		lo, hi = 0, 100
	}
	lo, hi = math.Max(0, math.Floor(lo/10)*10-10), math.Min(100, math.Ceil(hi/10)*10+10)
	if hi-lo < 20 {
		lo = math.Max(0, hi-20)
	}
	yOf := func(v float64) float64 { return top + plotH*(1-(v-lo)/(hi-lo)) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-labelledby="t%p" font-family="sans-serif" font-size="11">`,
		width, height, width, height, &b)
	fmt.Fprintf(&b, `<title id="t%p">%s</title><rect width="100%%" height="100%%" fill="#fff"/>`, &b, esc(title))
	fmt.Fprintf(&b, `<text x="0" y="14" font-size="13" font-weight="bold" fill="#1a1a1a">%s</text>`, esc(title))
	for t := lo; t <= hi+0.01; t += 10 {
		fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#e0e0e0"/><text x="%.0f" y="%.1f" text-anchor="end" fill="#444">%.0f</text>`,
			left, left+plotW, yOf(t), yOf(t), left-4, yOf(t)+4, t)
	}
	// Runs of consecutive points with a value.
	var runs [][]int
	var cur []int
	for i, p := range pts {
		if p.Value == nil {
			if len(cur) > 0 {
				runs = append(runs, cur)
			}
			cur = nil
			continue
		}
		cur = append(cur, i)
	}
	if len(cur) > 0 {
		runs = append(runs, cur)
	}
	for _, run := range runs {
		var upper, lower []string
		for _, i := range run {
			p := pts[i]
			if p.Lo != nil && p.Hi != nil {
				upper = append(upper, fmt.Sprintf("%.1f,%.1f", xOf(i), yOf(*p.Hi)))
				lower = append([]string{fmt.Sprintf("%.1f,%.1f", xOf(i), yOf(*p.Lo))}, lower...)
			}
		}
		if len(upper) > 1 {
			fmt.Fprintf(&b, `<polygon points="%s %s" fill="#9ecae1" fill-opacity="0.6"/>`, strings.Join(upper, " "), strings.Join(lower, " "))
		}
		var line []string
		for _, i := range run {
			line = append(line, fmt.Sprintf("%.1f,%.1f", xOf(i), yOf(*pts[i].Value)))
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="#08519c" stroke-width="2"/>`, strings.Join(line, " "))
	}
	step := max(1, n/8)
	for i, p := range pts {
		if p.Value != nil {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="#08519c"><title>%s: %.2f</title></circle>`, xOf(i), yOf(*p.Value), esc(p.Name), *p.Value)
		} else {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#444">×</text>`, xOf(i), top+plotH-4)
		}
		if i%step == 0 || i == n-1 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle" fill="#444">%s</text>`, xOf(i), top+plotH+16, esc(p.Name))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// tile is one province of the tile map.
type tile struct {
	figure
	Row, Col int
	Class    string
}

// tilePos lays the 34 provinces of today out roughly by geography, north
// at the top: {row, column} by province code.
var tilePos = map[string][2]int{
	"12": {0, 0}, "15": {0, 1}, "08": {0, 2}, "04": {0, 3},
	"11": {1, 0}, "14": {1, 1}, "25": {1, 2}, "19": {1, 3}, "20": {1, 4},
	"01": {2, 2}, "24": {2, 3}, "22": {2, 4},
	"37": {3, 2}, "33": {3, 3}, "31": {3, 4},
	"38": {4, 2},
	"40": {5, 2},
	"42": {6, 3},
	"44": {7, 3},
	"46": {8, 4},
	"48": {9, 4},
	"51": {10, 4}, "52": {10, 3},
	"66": {11, 3}, "56": {11, 4},
	"80": {12, 1}, "75": {12, 2}, "68": {12, 3},
	"91": {13, 0}, "82": {13, 1}, "79": {13, 2},
	"92": {14, 0}, "86": {14, 1},
	"96": {15, 0},
}

// valueClass is the colour band of a value (see the legend).
func valueClass(f figure) string {
	if f.Value == nil || f.State != export.StateOK {
		return "v0"
	}
	switch v := *f.Value; {
	case v < 60:
		return "v1"
	case v < 70:
		return "v2"
	case v < 80:
		return "v3"
	case v < 90:
		return "v4"
	}
	return "v5"
}

func tileMap(rows []figure) (tiles []tile, unplaced []figure) {
	for _, f := range rows {
		pos, ok := tilePos[f.ID]
		if !ok {
			unplaced = append(unplaced, f)
			continue
		}
		tiles = append(tiles, tile{figure: f, Row: pos[0], Col: pos[1], Class: valueClass(f)})
	}
	return tiles, unplaced
}
