package main

import (
	"bytes"
	"flag"
	"slices"
	"strings"
	"testing"
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
		if err := parse(fs, tc.args); err != nil {
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
