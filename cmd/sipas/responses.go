package main

import (
	"context"
	"fmt"
)

func init() {
	register(command{name: "responses", summary: "correct stored responses: withdraw one, or read its versions (amend by re-uploading with upload --amend)", run: runResponses})
}

func runResponses(ctx context.Context, e *env, args []string) error {
	return subcommands(ctx, e, "responses", args, []subcommand{
		{"withdraw", "take a stored response out of every figure, with a reason (audited)", responsesWithdraw},
		{"history", "show a response's versions, amendments and withdrawal", responsesHistory},
	})
}

// responsesWithdraw takes a stored response out of every figure.
func responsesWithdraw(ctx context.Context, e *env, args []string) error {
	var c common
	var reason string
	fs := newFlags(e, "responses withdraw", "sipas responses withdraw RESPONSE_ID --reason TEXT",
		`sipas responses withdraw 0190c2a4-7d1e-7c3a-9b1e-2f4a5c6d7e8f --reason "interview keyed twice"`)
	c.register(fs, e)
	fs.StringVar(&reason, "reason", "", "why the response is withdrawn (required; kept in the audit log)")
	if err := parseArgs(fs, args, "RESPONSE_ID"); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"give one response id, e.g. sipas responses withdraw ID --reason \"keyed twice\""}
	}
	if reason == "" {
		return usageError{"--reason is required: say why the response is withdrawn"}
	}
	cl, err := c.dial(e)
	if err != nil {
		return err
	}
	defer cl.Close()
	res, err := cl.Withdraw(ctx, fs.Arg(0), reason)
	if err != nil {
		return err
	}
	t := &table{header: []string{"response_id", "version", "outcome"}}
	outcome := "withdrawn"
	if res.Unchanged {
		outcome = "already withdrawn"
	}
	t.add(res.ResponseID, fmt.Sprint(res.Version), outcome)
	t.objects = map[string]any{"response_id": res.ResponseID, "version": res.Version, "already_withdrawn": res.Unchanged}
	return t.write(e.stdout, c.format)
}

// responsesHistory lists the versions of a stored response.
func responsesHistory(ctx context.Context, e *env, args []string) error {
	var c common
	fs := newFlags(e, "responses history", "sipas responses history RESPONSE_ID",
		"sipas responses history 0190c2a4-7d1e-7c3a-9b1e-2f4a5c6d7e8f")
	c.register(fs, e)
	if err := parseArgs(fs, args, "RESPONSE_ID"); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"give one response id"}
	}
	cl, err := c.dial(e)
	if err != nil {
		return err
	}
	defer cl.Close()
	hist, err := cl.ResponseHistory(ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	type versionJSON struct {
		Version     int     `json:"version"`
		ReplacedBy  string  `json:"replaced_by,omitempty"`
		ReplaceTime *string `json:"replace_time,omitempty"`
		CorrectedBy string  `json:"corrected_by,omitempty"`
		Reason      string  `json:"reason,omitempty"`
		ContentHash string  `json:"content_hash"`
	}
	t := &table{header: []string{"version", "replaced_by", "time", "corrected_by", "reason", "content_hash"}}
	vs := []versionJSON{}
	for _, v := range hist.Versions {
		j := versionJSON{Version: v.Version, ReplacedBy: v.ReplacedBy, ReplaceTime: optTime(v.ReplaceTime), CorrectedBy: v.CorrectedBy, Reason: v.Reason, ContentHash: v.ContentHash}
		vs = append(vs, j)
		replaced := j.ReplacedBy
		if replaced == "" {
			replaced = "(current)"
		}
		t.add(fmt.Sprint(v.Version), replaced, orDash(j.ReplaceTime), v.CorrectedBy, v.Reason, v.ContentHash[:16])
	}
	t.objects = map[string]any{"response_id": fs.Arg(0), "withdrawn": hist.Withdrawn, "versions": vs}
	return t.write(e.stdout, c.format)
}
