package main

import (
	"context"
	"fmt"

	"github.com/sipas-vn/sipas/client"
)

func periodsClose(ctx context.Context, e *env, args []string) error {
	var c common
	var reason string
	fs := newFlags(e, "admin periods close", "sipas admin periods close PERIOD [--reason TEXT]",
		`sipas admin periods close 2025 --reason "2025 figures published"`)
	c.register(fs, e)
	fs.StringVar(&reason, "reason", "", "why (kept in the audit log)")
	if err := parseArgs(fs, args, "PERIOD"); err != nil {
		return err
	}
	per, err := periodArg("PERIOD", fs.Arg(0))
	if err != nil {
		return err
	}
	cl, err := c.dial(e)
	if err != nil {
		return err
	}
	defer cl.Close()
	cp, already, err := cl.ClosePeriod(ctx, per, reason)
	if err != nil {
		return err
	}
	return writeClosedPeriods(e, c.format, []client.ClosedPeriod{cp}, map[string]any{"already_closed": already})
}

func periodsList(ctx context.Context, e *env, args []string) error {
	var c common
	fs := newFlags(e, "admin periods list", "sipas admin periods list", "sipas admin periods list --format json")
	c.register(fs, e)
	if err := parse(fs, args); err != nil {
		return err
	}
	cl, err := c.dial(e)
	if err != nil {
		return err
	}
	defer cl.Close()
	all, err := cl.ClosedPeriods(ctx)
	if err != nil {
		return err
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
	if err := parseArgs(fs, args, "PERIOD"); err != nil {
		return err
	}
	per, err := periodArg("PERIOD", fs.Arg(0))
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
	if err := cl.ReopenPeriod(ctx, per, reason); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "sipas: period %s reopened\n", per)
	return nil
}

func writeClosedPeriods(e *env, format string, ps []client.ClosedPeriod, extra map[string]any) error {
	type periodJSON struct {
		Period    string  `json:"period"`
		CloseTime *string `json:"close_time"`
		ClosedBy  string  `json:"closed_by"`
		Reason    string  `json:"reason"`
	}
	t := &table{header: []string{"period", "closed", "closed_by", "reason"}}
	objs := []periodJSON{}
	for _, p := range ps {
		j := periodJSON{Period: p.Period.String(), CloseTime: optTime(p.CloseTime), ClosedBy: p.ClosedBy, Reason: p.Reason}
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
