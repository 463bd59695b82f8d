package main

import (
	"bytes"
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/sipas-vn/sipas"
)

// TestFlagsAfterPositionalArguments pins that flags are read wherever they
// stand, and that "--" ends the flags.
func TestFlagsAfterPositionalArguments(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		format     string
		dryRun     bool
		positional []string
	}{
		{[]string{"sipas-2023", "--format", "json"}, "json", false, []string{"sipas-2023"}},
		{[]string{"--format", "csv", "sipas-2023"}, "csv", false, []string{"sipas-2023"}},
		{[]string{"f.csv", "--dry-run"}, "table", true, []string{"f.csv"}},
		{[]string{"a", "--format=json", "b", "--dry-run", "c"}, "json", true, []string{"a", "b", "c"}},
		{[]string{"--dry-run", "--", "--format", "x"}, "table", true, []string{"--format", "x"}},
		{[]string{"a", "--", "-b"}, "table", false, []string{"a", "-b"}},
		{nil, "table", false, nil},
	} {
		var stderr bytes.Buffer
		fs := newFlags(&env{stderr: &stderr}, "t", "t")
		format := fs.String("format", "table", "")
		dryRun := fs.Bool("dry-run", false, "")
		names := make([]string, len(tc.positional))
		for i := range names {
			names[i] = fmt.Sprintf("ARG%d", i)
		}
		if err := parseArgs(fs, tc.args, names...); err != nil {
			t.Fatalf("parse(%q): %v", tc.args, err)
		}
		if *format != tc.format || *dryRun != tc.dryRun || !slices.Equal(fs.Args(), tc.positional) && len(fs.Args())+len(tc.positional) > 0 {
			t.Errorf("parse(%q): format %q dry-run %v args %q; want %q %v %q", tc.args, *format, *dryRun, fs.Args(), tc.format, tc.dryRun, tc.positional)
		}
	}
	// An unknown flag after a positional argument is still a usage error.
	fs := newFlags(&env{stderr: &bytes.Buffer{}}, "t", "t")
	if err := parse(fs, []string{"a", "--nope"}); err == nil {
		t.Error("unknown flag after a positional argument accepted")
	} else if _, ok := err.(usageError); !ok {
		t.Errorf("unknown flag: %T %v, want a usage error", err, err)
	}
	if err := parse(newFlags(&env{stderr: &bytes.Buffer{}}, "t", "t"), []string{"a", "--help"}); err != flag.ErrHelp {
		t.Errorf("--help after a positional argument: %v, want flag.ErrHelp", err)
	}
}

// TestStrayArgumentsRefused: every command refuses a positional argument
// it does not take (exit 2, naming the argument) instead of dropping it,
// and one that takes arguments says which is missing. The server is never
// asked (SIPAS_SERVER points nowhere).
func TestStrayArgumentsRefused(t *testing.T) {
	for _, args := range [][]string{
		{"admin", "units", "list", "48"},
		{"admin", "units", "create", "x", "--id", "u", "--name", "n", "--province", "48"},
		{"admin", "credentials", "list", "x"},
		{"admin", "credentials", "create", "x", "--role", "analyst", "--provinces", "all"},
		{"admin", "credentials", "revoke", "abc", "def"},
		{"admin", "kiosks", "list", "x"},
		{"admin", "audit", "x"},
		{"admin", "backup", "x", "--out", "f.db"},
		{"admin", "counts", "x", "--period", "2026"},
		{"index", "show", "x", "--nation", "--period", "2026"},
		{"index", "rank", "x", "--period", "2026"},
		{"index", "series", "x", "--nation", "--from", "2026", "--to", "2026"},
		{"index", "weak", "x", "--province", "48", "--period", "2026"},
		{"questionnaire", "list", "x"},
		{"questionnaire", "show", "sipas-2023", "x"},
		{"questionnaire", "template", "sipas-2023", "x"},
		{"upload", "a.csv", "b.csv"},
		{"kiosk", "serve", "x"},
		{"kiosk", "simulate", "x"},
		{"kiosk", "--outbox", "o.db", "x"},
	} {
		var out, errb bytes.Buffer
		code := runMain(t.Context(), &env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}, args)
		named := false
		for _, stray := range []string{"x", "def", "b.csv", "48"} {
			named = named || strings.Contains(errb.String(), fmt.Sprintf("unexpected argument %q", stray))
		}
		if code != exitUsage || !named {
			t.Errorf("sipas %s: exit %d, stderr %q; want exit 2 naming the stray argument", strings.Join(args, " "), code, errb.String())
		}
	}
	for args, want := range map[string]string{
		"upload":                       "missing FILE",
		"questionnaire show":           "missing QUESTIONNAIRE_ID",
		"admin credentials revoke":     "missing ID",
		"kiosk nope":                   `unknown subcommand "nope" of kiosk`,
		"index nope":                   `unknown subcommand "nope" of index`,
		"admin units list --format=x ": "--format must be",
	} {
		var errb bytes.Buffer
		code := runMain(t.Context(), &env{stdout: &errb, stderr: &errb, getenv: func(string) string { return "" }}, strings.Fields(args))
		if code != exitUsage || !strings.Contains(errb.String(), want) {
			t.Errorf("sipas %s: exit %d, stderr %q; want exit 2 saying %q", args, code, errb.String(), want)
		}
	}
}

// TestGroupHelp: each command group's --help lists every subcommand with a
// one-line description (exit 0); without a subcommand it is a usage error.
func TestGroupHelp(t *testing.T) {
	groups := map[string][]string{
		"admin":             {"units", "credentials", "kiosks", "audit", "backup", "counts"},
		"admin units":       {"create", "list"},
		"admin credentials": {"create", "list", "revoke"},
		"admin kiosks":      {"list"},
		"index":             {"show", "rank", "series", "weak"},
		"questionnaire":     {"list", "show", "template"},
		"kiosk":             {"serve", "simulate"},
	}
	for group, subs := range groups {
		var out, errb bytes.Buffer
		e := &env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
		if code := runMain(t.Context(), e, append(strings.Fields(group), "--help")); code != exitOK {
			t.Errorf("sipas %s --help: exit %d", group, code)
		}
		help := out.String() + errb.String()
		for _, s := range subs {
			found := false
			for _, line := range strings.Split(help, "\n") {
				f := strings.Fields(line)
				if len(f) >= 3 && f[0] == s { // name, then a description
					found = true
				}
			}
			if !found {
				t.Errorf("sipas %s --help does not describe %q:\n%s", group, s, help)
			}
		}
		if group == "kiosk" {
			continue // without a subcommand, kiosk is the terminal kiosk
		}
		errb.Reset()
		if code := runMain(t.Context(), e, strings.Fields(group)); code != exitUsage || !strings.Contains(errb.String(), "Subcommands:") {
			t.Errorf("sipas %s: exit %d, stderr %q; want exit 2 and the subcommands", group, code, errb.String())
		}
	}
}

// TestPeriodFlags: one period is --period YYYY, YYYY-Qn or YYYY-MM in
// every command; --year with --quarter or --month is the same period under
// its older spelling; mixing both, or a bad period, is a usage error.
func TestPeriodFlags(t *testing.T) {
	get := func(args ...string) (sipas.Period, error) {
		var p periodFlags
		fs := newFlags(&env{stderr: &bytes.Buffer{}}, "t", "t")
		p.register(fs)
		if err := parse(fs, args); err != nil {
			return sipas.Period{}, err
		}
		return p.get()
	}
	for _, tc := range []struct {
		args []string
		want sipas.Period
	}{
		{[]string{"--period", "2026"}, sipas.Period{Year: 2026}},
		{[]string{"--period", "2026-Q1"}, sipas.Period{Year: 2026, Quarter: 1}},
		{[]string{"--period", "2026-q4"}, sipas.Period{Year: 2026, Quarter: 4}},
		{[]string{"--period", "2026-03"}, sipas.Period{Year: 2026, Month: 3}},
		{[]string{"--year", "2026"}, sipas.Period{Year: 2026}},
		{[]string{"--year", "2026", "--quarter", "1"}, sipas.Period{Year: 2026, Quarter: 1}},
		{[]string{"--year", "2026", "--month", "3"}, sipas.Period{Year: 2026, Month: 3}},
	} {
		got, err := get(tc.args...)
		if err != nil || got != tc.want {
			t.Errorf("%q: %v %v, want %v", tc.args, got, err, tc.want)
		}
	}
	for _, args := range [][]string{
		nil,
		{"--period", "2026", "--year", "2026"},
		{"--period", "2026-13"},
		{"--period", "2026-Q5"},
		{"--period", "26"},
		{"--period", "2026-3"},
		{"--quarter", "1"},
		{"--year", "2026", "--quarter", "1", "--month", "2"},
		{"--year", "2026", "--month", "13"},
	} {
		if p, err := get(args...); err == nil {
			t.Errorf("%q accepted as %v", args, p)
		} else if _, ok := err.(usageError); !ok {
			t.Errorf("%q: %T %v, want a usage error", args, err, err)
		}
	}
	// Series ranges take the same form.
	for _, s := range []string{"2026", "2026-Q2", "2026-07"} {
		p, err := periodArg("--from", s)
		if err != nil || p.String() != s {
			t.Errorf("--from %s: %v %v", s, p, err)
		}
	}
}

func TestVersionFlag(t *testing.T) {
	for _, arg := range []string{"--version", "version"} {
		var out bytes.Buffer
		code := runMain(t.Context(), &env{stdout: &out, stderr: &out, getenv: func(string) string { return "" }}, []string{arg})
		if code != exitOK || !bytes.HasPrefix(out.Bytes(), []byte("sipas ")) || !bytes.Contains(out.Bytes(), []byte("go1.")) {
			t.Errorf("sipas %s: exit %d, output %q", arg, code, out.String())
		}
	}
}

// TestTLSHints: certificate and TLS failures get their own hint instead of
// "is sipasd running?"; other messages get none from tlsHint.
func TestTLSHints(t *testing.T) {
	for msg, want := range map[string]string{
		`connection error: desc = "transport: authentication handshake failed: tls: first record does not look like a TLS handshake"`:                             "plaintext",
		`connection error: desc = "error reading server preface: EOF"`:                                                                                            "expects TLS",
		`connection error: desc = "transport: authentication handshake failed: tls: failed to verify certificate: x509: certificate signed by unknown authority"`: "--ca-file",
		`x509: certificate is valid for localhost, not example.org`:                                                                                               "does not name",
		`tls: failed to verify certificate: x509: certificate has expired or is not yet valid`:                                                                    "expired",
		`remote error: tls: certificate required`:                                                                                                                 "--cert-file",
		`CA file ca.pem holds no PEM certificate`:                                                                                                                 "certificate files",
		`dial tcp 127.0.0.1:1: connect: connection refused`:                                                                                                       "",
	} {
		got := tlsHint(msg)
		if want == "" && got != "" || !strings.Contains(got, want) {
			t.Errorf("tlsHint(%q) = %q, want one saying %q", msg, got, want)
		}
	}
}
