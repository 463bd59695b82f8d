package main

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// benchLine is the format every figure is printed in.
var benchLine = regexp.MustCompile(`^BENCH name=([a-z0-9_]+) value=(-?[0-9]+(?:\.[0-9]+)?) unit=(\S+) ceiling=(-?[0-9]+(?:\.[0-9]+)?) ratio=(-?[0-9]+\.[0-9]{3})$`)

// runQuick runs sipasbench -quick -only name and returns the BENCH lines.
func runQuick(t *testing.T, name string) []string {
	t.Helper()
	var out, errb bytes.Buffer
	if err := run([]string{"-quick", "-only", name}, &out, &errb); err != nil {
		t.Fatalf("sipasbench -quick -only %s: %v\nstderr:\n%s", name, err, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	for _, l := range lines {
		m := benchLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("line %q does not match the BENCH format", l)
		}
		if m[1] != name {
			t.Errorf("line %q: name %s, want %s", l, m[1], name)
		}
		for _, v := range []string{m[2], m[4], m[5]} {
			if _, err := strconv.ParseFloat(v, 64); err != nil {
				t.Errorf("line %q: %q is not a number", l, v)
			}
		}
	}
	if len(lines) != 1 {
		t.Fatalf("got %d lines, want 1:\n%s", len(lines), out.String())
	}
	if !strings.Contains(errb.String(), "# "+name+": ") {
		t.Errorf("no explanation of %s on stderr:\n%s", name, errb.String())
	}
	return lines
}

// TestQuickIndex runs the in-process index figure in quick mode.
func TestQuickIndex(t *testing.T) {
	runQuick(t, figTree)
}

// TestQuickUnary runs the unary figure in quick mode against a sipasd
// child process (it builds cmd/sipasd, so it is skipped with -short).
func TestQuickUnary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts sipasd")
	}
	runQuick(t, figUnary)
}

// TestQuickNational runs the seven national figures in quick mode (a small
// fleet) in one go: in-process store, sipasd children, in-process reads.
func TestQuickNational(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts sipasd")
	}
	var out, errb bytes.Buffer
	if err := run([]string{"-quick", "-only", "national"}, &out, &errb); err != nil {
		t.Fatalf("sipasbench -quick -only national: %v\nstderr:\n%s", err, errb.String())
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		m := benchLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("line %q does not match the BENCH format", l)
		}
		if v, _ := strconv.ParseFloat(m[2], 64); v <= 0 {
			t.Errorf("line %q: want a positive value", l)
		}
		names = append(names, m[1])
	}
	want := []string{figNatRSS, figNatIngest, figNatStart, figNatRank, figNatUnitRank, figNatSeries, figNatBytes}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("figures %v, want %v", names, want)
	}
}

func TestLineFormat(t *testing.T) {
	for _, r := range []result{
		{name: "a", value: 123456.7, unit: "x/s", ceiling: 2.5},
		{name: "b", value: 0, unit: "ms", ceiling: 0},
		{name: "c", value: 0.0004, unit: "MiB", ceiling: 150},
	} {
		if l := r.Line(); !benchLine.MatchString(l) {
			t.Errorf("%q does not match the BENCH format", l)
		}
	}
	if got := (result{name: "a", value: 1, unit: "ms", ceiling: 4}).Line(); got != "BENCH name=a value=1.000 unit=ms ceiling=4.000 ratio=0.250" {
		t.Errorf("Line() = %q", got)
	}
}

func TestUnknownFigure(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run([]string{"-only", "nope"}, &out, &errb); err == nil {
		t.Fatal("want an error for an unknown figure")
	}
}

// TestQuickWeb runs the dashboard figures in quick mode.
func TestQuickWeb(t *testing.T) {
	runQuick(t, figWebProvince)
}
