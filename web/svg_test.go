package web

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/export"
	"github.com/sipas-vn/sipas/questionnaires"
)

// TestTileMapCoversTodaysProvinces: every province valid today has a tile
// of its own, and no tile is left for a province that no longer exists.
func TestTileMapCoversTodaysProvinces(t *testing.T) {
	_, reg, err := questionnaires.Load("")
	if err != nil {
		t.Fatal(err)
	}
	now := reg.ValidOn(time.Date(2026, 6, 1, 0, 0, 0, 0, sipas.VietnamZone))
	seen := map[[2]int]string{}
	for _, p := range now {
		pos, ok := tilePos[p.Code]
		if !ok {
			t.Errorf("province %s %s has no tile", p.Code, p.NameVi)
			continue
		}
		if other, dup := seen[pos]; dup {
			t.Errorf("provinces %s and %s share tile %v", other, p.Code, pos)
		}
		seen[pos] = p.Code
	}
	if len(tilePos) != len(now) {
		t.Errorf("%d tiles for %d provinces", len(tilePos), len(now))
	}
}

func wellFormed(t *testing.T, name, svg string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(svg))
	for {
		_, err := d.Token()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("%s is not well-formed XML: %v\n%s", name, err, svg)
		}
	}
}

// TestChartsEscapeLabelsAndSkipMissingValues: labels from the data are
// escaped, rows without a value are not drawn, and both charts are
// well-formed SVG documents (they are also served as files).
func TestChartsEscapeLabelsAndSkipMissingValues(t *testing.T) {
	v, lo, hi := 72.5, 60.0, 80.0
	bars := []bar{
		{Label: `<script>alert("x")</script> & co`, Code: "01", Value: &v, Lo: &lo, Hi: &hi, State: export.StateOK},
		{Label: "Nobody", Code: "02", State: export.StateNoData},
	}
	svg := string(barChart(bars, "Xếp hạng <2026>", &v, vi))
	wellFormed(t, "bar chart", svg)
	if strings.Contains(svg, "<script>") || strings.Contains(svg, "Nobody") {
		t.Fatalf("unescaped label or a bar for a row without value:\n%s", svg)
	}
	pts := []figure{{Name: "2025", Value: &v, Lo: &lo, Hi: &hi}, {Name: "2026"}, {Name: "2027", Value: &hi}}
	line := string(lineChart(pts, "Series & more", en))
	wellFormed(t, "line chart", line)
	if strings.Count(line, "<polyline") != 2 {
		t.Errorf("a missing point must break the line into two runs:\n%s", line)
	}
}
