package main

import (
	"context"
	"fmt"

	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

// adminPeriods is `sipas admin periods close|list|reopen`.
func adminPeriods(ctx context.Context, e *env, args []string) error {
	return subcommands(ctx, e, "admin periods", args, map[string]func(context.Context, *env, []string) error{
		"close": periodsClose, "list": periodsList, "reopen": periodsReopen,
	})
}

// periodArg parses the one PERIOD argument of a periods subcommand.
func periodArg(args []string, example string) (*sipasv1.Period, error) {
	if len(args) != 1 {
		return nil, usageError{"give one period (2025, 2025-Q3 or 2025-07), e.g. " + example}
	}
	return parsePeriod(args[0])
}

func periodsClose(ctx context.Context, e *env, args []string) error {
	var c common
	var reason string
	fs := newFlags(e, "admin periods close", "sipas admin periods close PERIOD [--reason TEXT]",
		`sipas admin periods close 2025 --reason "2025 figures published"`)
	c.register(fs, e)
	fs.StringVar(&reason, "reason", "", "why (kept in the audit log)")
	if err := parse(fs, args); err != nil {
		return err
	}
	per, err := periodArg(fs.Args(), "sipas admin periods close 2025")
	if err != nil {
		return err
	}
	cl, err := c.dial(e)
	if err != nil {
		return err
	}
	defer cl.Close()
	cctx, cancel := cl.WithTimeout(ctx)
	defer cancel()
	resp, err := cl.Admin.ClosePeriod(cctx, &sipasv1.ClosePeriodRequest{Period: per, Reason: reason})
	if err != nil {
		return err
	}
	return writeClosedPeriods(e, c.format, []*sipasv1.ClosedPeriod{resp.ClosedPeriod}, map[string]any{"already_closed": resp.AlreadyClosed})
}

func periodsList(ctx context.Context, e *env, args []string) error {
	var c common
	fs := newFlags(e, "admin periods list", "sipas admin periods list", "sipas admin periods list --format json")
	c.register(fs, e)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	cl, err := c.dial(e)
	if err != nil {
		return err
	}
	defer cl.Close()
	var all []*sipasv1.ClosedPeriod
	token := ""
	for {
		cctx, cancel := cl.WithTimeout(ctx)
		resp, err := cl.Admin.ListClosedPeriods(cctx, &sipasv1.ListClosedPeriodsRequest{PageToken: token, PageSize: 1000})
		cancel()
		if err != nil {
			return err
		}
		all = append(all, resp.ClosedPeriods...)
		if token = resp.NextPageToken; token == "" {
			break
		}
	}
	return writeClosedPeriods(e, c.format, all, nil)
}

func periodsReopen(ctx context.Context, e *env, args []string) error {
	var c common
	var reason string
	fs := newFlags(e, "admin periods reopen", "sipas admin periods reopen PERIOD --reason TEXT",
		`sipas admin periods reopen 2025 --reason "late field batch of Quảng Ngãi"`)
	c.register(fs, e)
	fs.StringVar(&reason, "reason", "", "why the period is reopened (required; kept in the audit log)")
	if err := parse(fs, args); err != nil {
		return err
	}
	per, err := periodArg(fs.Args(), "sipas admin periods reopen 2025 --reason ...")
	if err != nil {
		return err
	}
	if reason == "" {
		return usageError{"--reason is required: say why the period is reopened"}
	}
	cl, err := c.dial(e)
	if err != nil {
		return err
	}
	defer cl.Close()
	cctx, cancel := cl.WithTimeout(ctx)
	defer cancel()
	if _, err := cl.Admin.ReopenPeriod(cctx, &sipasv1.ReopenPeriodRequest{Period: per, Reason: reason}); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "sipas: period %s reopened\n", periodLabel(per))
	return nil
}

func periodLabel(p *sipasv1.Period) string {
	switch {
	case p.GetMonth() != 0:
		return fmt.Sprintf("%04d-%02d", p.GetYear(), p.GetMonth())
	case p.GetQuarter() != 0:
		return fmt.Sprintf("%04d-Q%d", p.GetYear(), p.GetQuarter())
	}
	return fmt.Sprintf("%04d", p.GetYear())
}

func writeClosedPeriods(e *env, format string, ps []*sipasv1.ClosedPeriod, extra map[string]any) error {
	type periodJSON struct {
		Period    string  `json:"period"`
		CloseTime *string `json:"close_time"`
		ClosedBy  string  `json:"closed_by"`
		Reason    string  `json:"reason"`
	}
	t := &table{header: []string{"period", "closed", "closed_by", "reason"}}
	objs := []periodJSON{}
	for _, p := range ps {
		j := periodJSON{Period: periodLabel(p.Period), CloseTime: optTime(p.CloseTime), ClosedBy: p.ClosedBy, Reason: p.Reason}
		objs = append(objs, j)
		t.add(j.Period, orDash(j.CloseTime), j.ClosedBy, j.Reason)
	}
	obj := map[string]any{"closed_periods": objs}
	for k, v := range extra {
		obj[k] = v
	}
	t.objects = obj
	return t.write(e.stdout, format)
}
