// Command sipasbench measures the ingestion and index figures of
// docs/benchmarks.md and prints one line per figure on stdout:
//
//	BENCH name=<id> value=<v> unit=<u> ceiling=<c> ratio=<v/c>
//
// with a short explanation of each line on stderr. Every figure is compared
// with a ceiling measured in the same run on the same machine, so that the
// ratio stays meaningful on a noisy, shared machine.
//
// The load figures run against the real server binary (cmd/sipasd, built
// into a temporary directory and started as a child process on loopback),
// so that its memory can be read from /proc without the load generator in
// it. The index figures use the store in-process.
//
// Usage (from the module root, as `make bench` does):
//
//	go run -tags sqlite_omit_load_extension ./cmd/sipasbench [-only NAME] [-quick] [-keep]
//
// Environment: SIPAS_BENCH_INDEX_N overrides the number of responses of the
// large index store (default 10000000).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/questionnaires"
)

// Figure names, in the order they are printed.
const (
	figUnary     = "unary_submit_c64"
	figBatch     = "batch_upload"
	figRSS       = "server_rss_mib"
	figBytes     = "bytes_per_response"
	figRank      = "index_rank_year"
	figTree      = "index_tree_province_year"
	figCLIUpload = "cli_upload"

	figNatRSS      = "national_rss_mib"
	figNatIngest   = "national_ingest"
	figNatStart    = "national_start_s"
	figNatRank     = "national_rank_ms"
	figNatUnitRank = "national_unit_rank_ms"
	figNatSeries   = "national_series_ms"
	figNatBytes    = "national_bytes_per_response"
)

var figureNames = append([]string{figUnary, figBatch, figRSS, figBytes, figRank, figTree, figCLIUpload,
	figPGUnary, figPGBatch, figPGReplicas,
	figNatRSS, figNatIngest, figNatStart, figNatRank, figNatUnitRank, figNatSeries, figNatBytes}, webFigureNames...)

// result is one printed figure.
type result struct {
	name    string
	value   float64
	unit    string
	ceiling float64
	explain string
}

func (r result) ratio() float64 {
	if r.ceiling == 0 {
		return 0
	}
	return r.value / r.ceiling
}

// formatNum prints a figure without exponent: integers for large values,
// three decimals for small ones.
func formatNum(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		v = 0
	}
	if math.Abs(v) >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

// Line returns the BENCH line of r.
func (r result) Line() string {
	return fmt.Sprintf("BENCH name=%s value=%s unit=%s ceiling=%s ratio=%s",
		r.name, formatNum(r.value), r.unit, formatNum(r.ceiling), strconv.FormatFloat(r.ratio(), 'f', 3, 64))
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "sipasbench:", err)
		os.Exit(1)
	}
}

// run parses flags and measures the selected figures.
func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sipasbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	only := fs.String("only", "", "measure one figure only (or \"national\": the seven national_* figures; \"pg\": the three pg_* figures): "+strings.Join(figureNames, ", "))
	quick := fs.Bool("quick", false, "a fast smoke run with small sizes and short durations (numbers are not meaningful)")
	keep := fs.Bool("keep", false, "keep the temporary directory (databases, server logs) and print its path")
	dur := fs.Duration("duration", 0, "measured duration of each unary load (default 5s, 1s with -quick)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process (the load generator and the in-process figures) to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	names := figureNames
	if *only != "" {
		names = nil
		for _, n := range figureNames {
			if n == *only || (*only == "national" && strings.HasPrefix(n, "national_")) || (*only == "pg" && strings.HasPrefix(n, "pg_")) {
				names = append(names, n)
			}
		}
		if len(names) == 0 {
			return fmt.Errorf("-only %q: want national (its seven figures), pg (its three) or one of %s", *only, strings.Join(figureNames, ", "))
		}
	}
	b, err := newBench(*quick, *dur, stderr)
	if err != nil {
		return err
	}
	defer b.cleanup(*keep)
	start := time.Now()
	var errs []error
	for _, name := range names {
		r, err := b.figure(name)
		if errors.Is(err, errSkipped) {
			fmt.Fprintf(stderr, "# %s: SKIPPED: %v\n", name, err)
			continue
		}
		if err != nil {
			fmt.Fprintf(stderr, "# %s: FAILED: %v\n", name, err)
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		fmt.Fprintln(stdout, r.Line())
		fmt.Fprintf(stderr, "# %s: %s\n", r.name, r.explain)
	}
	b.logf("total time %s", time.Since(start).Round(100*time.Millisecond))
	for _, t := range b.timings {
		b.logf("  part %-28s %s", t.part, t.d.Round(100*time.Millisecond))
	}
	return errors.Join(errs...)
}

// timing is how long one part of the run took.
type timing struct {
	part string
	d    time.Duration
}

// bench holds what the figures share; each part is measured at most once.
type bench struct {
	quick   bool
	unaryD  time.Duration
	warmD   time.Duration
	tmp     string
	stderr  io.Writer
	cat     *sipas.Catalog
	reg     *sipas.Registry
	timings []timing

	bins    map[string]string // built binaries by package
	batchRS []*sipas.Response // the responses of the upload and the floor

	unary    *unaryResult
	unaryErr error
	batchErr error
	batch    *batchResult
	floor    *floorResult
	index    *indexResult
	cli      *cliResult
	national *nationalResult
	pg       *pgResult
	pgErr    error
	web      *webResult
	webErr   error
}

func newBench(quick bool, dur time.Duration, stderr io.Writer) (*bench, error) {
	cat, reg, err := questionnaires.Load("")
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "sipasbench-")
	if err != nil {
		return nil, err
	}
	b := &bench{quick: quick, tmp: tmp, stderr: stderr, cat: cat, reg: reg, bins: map[string]string{},
		unaryD: 5 * time.Second, warmD: time.Second}
	if quick {
		b.unaryD, b.warmD = time.Second, 300*time.Millisecond
	}
	if dur > 0 {
		b.unaryD = dur
	}
	return b, nil
}

func (b *bench) cleanup(keep bool) {
	if keep {
		b.logf("kept %s", b.tmp)
		return
	}
	os.RemoveAll(b.tmp)
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.stderr, "sipasbench: "+format+"\n", args...)
}

// timed runs fn and records its duration under part.
func (b *bench) timed(part string, fn func() error) error {
	start := time.Now()
	b.logf("%s ...", part)
	err := fn()
	d := time.Since(start)
	b.timings = append(b.timings, timing{part, d})
	b.logf("%s done in %s", part, d.Round(100*time.Millisecond))
	return err
}

// figure measures (or takes from an earlier part) one figure.
func (b *bench) figure(name string) (result, error) {
	switch name {
	case figUnary:
		u, err := b.runUnary()
		if err != nil {
			return result{}, err
		}
		return u.figure(), nil
	case figBatch, figBytes:
		bt, err := b.runBatch()
		if err != nil {
			return result{}, err
		}
		fl := b.floor
		if name == figBytes {
			return bytesFigure(bt, fl), nil
		}
		return batchFigure(bt, fl), nil
	case figRSS:
		u, err := b.runUnary()
		if err != nil {
			return result{}, err
		}
		bt, err := b.runBatch()
		if err != nil {
			return result{}, err
		}
		return rssFigure(u, bt), nil
	case figRank, figTree:
		ix, err := b.runIndex()
		if err != nil {
			return result{}, err
		}
		if name == figRank {
			return ix.rank, nil
		}
		return ix.tree, nil
	case figCLIUpload:
		return b.cliFigure()
	case figPGUnary, figPGBatch, figPGReplicas:
		return b.pgFigure(name)
	case figNatRSS, figNatIngest, figNatStart, figNatRank, figNatUnitRank, figNatSeries, figNatBytes:
		n, err := b.runNational()
		if err != nil {
			return result{}, err
		}
		return map[string]result{figNatRSS: n.rss, figNatIngest: n.ingest, figNatStart: n.start, figNatRank: n.rank,
			figNatUnitRank: n.unitRank, figNatSeries: n.series, figNatBytes: n.bytes}[name], nil
	case figWebNational, figWebProvince, figWebPageKB:
		w, err := b.runWeb()
		if err != nil {
			return result{}, err
		}
		switch name {
		case figWebNational:
			return w.national, nil
		case figWebProvince:
			return w.province, nil
		}
		return w.pageKB, nil
	}
	return result{}, fmt.Errorf("unknown figure %q", name)
}
