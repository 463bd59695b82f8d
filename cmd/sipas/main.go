// Command sipas is the command-line tool for every audience of the SIPAS
// service: survey teams (upload), kiosks (kiosk), analysts (index,
// questionnaire) and operators (admin).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"google.golang.org/grpc/status"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/client"
	"github.com/sipas-vn/sipas/internal/version"
)

// Exit codes scripts can rely on.
const (
	exitOK       = 0
	exitError    = 1 // the command failed (server refused, I/O error…)
	exitUsage    = 2 // bad flags or arguments
	exitRejected = 3 // the command ran but some input was rejected (e.g. bad rows)
	exitAuth     = 4 // missing, invalid or insufficient credential
	exitNetwork  = 5 // the server could not be reached; retrying later is safe
	// exitInterrupted is the shell's convention for a command stopped by
	// Ctrl-C (128 + SIGINT).
	exitInterrupted = 130
)

// env is what a command runs with: streams, environment and arguments.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

// command is one subcommand; run gets the arguments after its name.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

var commands []command

func register(c command) { commands = append(commands, c) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := runMain(ctx, &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}, os.Args[1:])
	stop()
	os.Exit(code)
}

// runMain dispatches to a subcommand and turns its error into an exit code.
func runMain(ctx context.Context, e *env, args []string) int {
	sort.Slice(commands, func(i, j int) bool { return commands[i].name < commands[j].name })
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(e.stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	if args[0] == "--version" || args[0] == "-version" || args[0] == "version" {
		fmt.Fprintln(e.stdout, "sipas", version.String())
		return exitOK
	}
	for _, c := range commands {
		if c.name == args[0] {
			err := c.run(ctx, e, args[1:])
			return exitCode(e, err)
		}
	}
	fmt.Fprintf(e.stderr, "sipas: unknown command %q\n\n", args[0])
	usage(e.stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "sipas — the SIPAS survey service's command-line tool")
	fmt.Fprintln(w, "\nUsage: sipas COMMAND [flags]\n\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-14s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nEvery command takes --server (env SIPAS_SERVER), --token-file (env SIPAS_TOKEN_FILE,")
	fmt.Fprintln(w, "or the token itself in SIPAS_TOKEN) and --format table|csv|json. Run 'sipas COMMAND --help'.")
	fmt.Fprintln(w, "'sipas --version' prints the version.")
	fmt.Fprintln(w, "\nExit codes: 0 ok, 1 error, 2 usage, 3 some input rejected, 4 credential refused, 5 server unreachable,")
	fmt.Fprintln(w, "130 interrupted (Ctrl-C; run the same command again to go on).")
}

// usageError marks a bad invocation (exit 2).
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

// interruptedError marks a run the user stopped (exit 130); what was done
// before is kept and the message says how to go on.
type interruptedError struct{ msg string }

func (i interruptedError) Error() string { return i.msg }

// fileError is a problem in a local input file (its format, its header, a
// line that cannot be read): reported once, naming the file, with exit 3 and
// no hint about the server, which was never asked.
type fileError struct {
	path string
	err  error
}

func (f fileError) Error() string { return f.path + ": " + f.err.Error() }
func (f fileError) Unwrap() error { return f.err }

// rejectedError marks a run that completed but refused some input (exit 3).
type rejectedError struct{ msg string }

func (r rejectedError) Error() string { return r.msg }

func exitCode(e *env, err error) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintln(e.stderr, "sipas:", ue.msg)
		return exitUsage
	}
	var ie interruptedError
	if errors.As(err, &ie) {
		fmt.Fprintln(e.stderr, "sipas:", ie.msg)
		return exitInterrupted
	}
	var fe fileError
	if errors.As(err, &fe) {
		fmt.Fprintln(e.stderr, "sipas:", fe.Error())
		return exitRejected
	}
	var re rejectedError
	if errors.As(err, &re) {
		fmt.Fprintln(e.stderr, "sipas:", re.msg)
		return exitRejected
	}
	var de *sipas.Error
	if _, fromServer := status.FromError(err); !fromServer && !errors.As(err, &de) && !errors.Is(err, context.DeadlineExceeded) {
		// A local failure (a certificate file, a directory): the server
		// was never asked, so no hint about it.
		msg := err.Error()
		if h := tlsHint(msg); h != "" {
			msg += "\n  hint: " + h
		}
		fmt.Fprintln(e.stderr, "sipas:", msg)
		return exitError
	}
	err = client.FromStatus(err)
	fmt.Fprintln(e.stderr, "sipas:", describe(err))
	switch sipas.KindOf(err) {
	case sipas.KindUnauthenticated, sipas.KindPermissionDenied:
		return exitAuth
	case sipas.KindUnavailable:
		return exitNetwork
	}
	return exitError
}

// describe turns an error into a message that says what to do next.
func describe(err error) string {
	var de *sipas.Error
	if !errors.As(err, &de) {
		return err.Error()
	}
	msg := de.Message
	for _, v := range de.Violations {
		msg += fmt.Sprintf("\n  %s: %s", v.Field, v.Description)
	}
	switch de.Kind {
	case sipas.KindUnauthenticated:
		msg += "\n  hint: pass a valid token with --token-file FILE or SIPAS_TOKEN (an admin's first token is in DATA_DIR/admin.token)"
	case sipas.KindPermissionDenied:
		msg += "\n  hint: this credential's role or scope does not allow it; ask an admin for a credential with the right role"
	case sipas.KindUnavailable:
		if h := tlsHint(msg); h != "" {
			msg += "\n  hint: " + h
		} else {
			msg += "\n  hint: is sipasd running at the --server address? Retrying is safe."
		}
	}
	return msg
}

// tlsHint explains a TLS or certificate failure, which retrying does not
// cure; it returns "" for other messages.
func tlsHint(msg string) string {
	switch {
	case strings.Contains(msg, "first record does not look like a TLS handshake"):
		return "the server speaks plaintext: connect without --ca-file/--cert-file, or start sipasd with --tls-cert/--tls-key"
	case strings.Contains(msg, "error reading server preface") || strings.Contains(msg, "frame too large") || strings.Contains(msg, "HTTP/1"):
		return "the server expects TLS (or is not sipasd): pass its CA with --ca-file (env SIPAS_CA_FILE)"
	case strings.Contains(msg, "certificate signed by unknown authority"):
		return "the server's certificate is not signed by a CA this tool trusts: pass the CA that signed it with --ca-file (env SIPAS_CA_FILE)"
	case strings.Contains(msg, "certificate is valid for") || strings.Contains(msg, "doesn't contain any IP SANs"):
		return "the server's certificate does not name the --server address: use the host name in the certificate, or reissue the certificate"
	case strings.Contains(msg, "certificate has expired") || strings.Contains(msg, "not yet valid"):
		return "a certificate has expired or is not yet valid: renew it, and check the clocks"
	case strings.Contains(msg, "bad certificate") || strings.Contains(msg, "certificate required"):
		return "the server wants a client certificate (mutual TLS): pass --cert-file and --key-file"
	case strings.Contains(msg, "PEM") || strings.Contains(msg, "x509:") || strings.Contains(msg, "tls:"):
		return "check the certificate files given with --ca-file, --cert-file and --key-file"
	}
	return ""
}

// common holds the flags every networked command shares.
type common struct {
	server, tokenFile, caFile, certFile, keyFile, format string
	insecure                                             bool
}

func (c *common) register(fs *flag.FlagSet, e *env) {
	fs.StringVar(&c.server, "server", "", "server address host:port (env SIPAS_SERVER; default "+client.DefaultServer+")")
	fs.StringVar(&c.tokenFile, "token-file", "", "file holding the bearer token (env SIPAS_TOKEN_FILE, or SIPAS_TOKEN holding the token)")
	fs.StringVar(&c.caFile, "ca-file", e.getenv("SIPAS_CA_FILE"), "CA certificate to verify a TLS server (env SIPAS_CA_FILE)")
	fs.StringVar(&c.certFile, "cert-file", "", "client certificate for mutual TLS")
	fs.StringVar(&c.keyFile, "key-file", "", "client key for mutual TLS")
	fs.BoolVar(&c.insecure, "insecure", false, "allow a plaintext connection to a non-loopback server")
	fs.StringVar(&c.format, "format", "table", "output format: table, csv or json")
}

func (c *common) dial(e *env) (*client.Client, error) {
	if err := checkFormat(c.format); err != nil {
		return nil, err
	}
	file := c.tokenFile
	if file == "" && e.getenv("SIPAS_TOKEN") == "" {
		file = e.getenv("SIPAS_TOKEN_FILE")
	}
	warnTokenFile(e, file)
	return client.Dial(client.Options{Server: c.server, TokenFile: c.tokenFile, CAFile: c.caFile,
		CertFile: c.certFile, KeyFile: c.keyFile, Insecure: c.insecure, Getenv: e.getenv})
}

// connect dials with the common flags and returns the client, a context
// bounded by the client's unary deadline, and a function that releases both.
func (c *common) connect(ctx context.Context, e *env) (*client.Client, context.Context, func(), error) {
	cl, err := c.dial(e)
	if err != nil {
		return nil, nil, nil, err
	}
	cctx, cancel := cl.WithTimeout(ctx)
	return cl, cctx, func() { cancel(); cl.Close() }, nil
}

func checkFormat(f string) error {
	switch f {
	case "table", "csv", "json":
		return nil
	}
	return usageError{fmt.Sprintf("--format must be table, csv or json, not %q", f)}
}

// newFlags makes a flag set whose usage prints the summary and examples.
func newFlags(e *env, name, synopsis string, examples ...string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
		if len(examples) > 0 {
			fmt.Fprintf(e.stderr, "\nExamples:\n  %s\n", strings.Join(examples, "\n  "))
		}
	}
	return fs
}

// parse parses flags, turning flag errors into usage errors. Flags may come
// before, between or after positional arguments, as users of kubectl, gh and
// docker expect (`sipas upload f.csv --dry-run`); everything after "--" is
// positional.
func parse(fs *flag.FlagSet, args []string) error {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return usageError{err.Error()}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if consumed := args[:len(args)-len(rest)]; len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	// Parsing "--" alone sets fs.Args() to the positional arguments and
	// leaves the flags as they are.
	return fs.Parse(append([]string{"--"}, positional...))
}

// subcommands dispatches a command group such as "admin units".
func subcommands(ctx context.Context, e *env, group string, args []string, subs map[string]func(context.Context, *env, []string) error) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		names := make([]string, 0, len(subs))
		for n := range subs {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(e.stderr, "Usage: sipas %s {%s} [flags]\n", group, strings.Join(names, "|"))
		if len(args) == 0 {
			return usageError{"missing subcommand of " + group}
		}
		return flag.ErrHelp
	}
	f, ok := subs[args[0]]
	if !ok {
		return usageError{fmt.Sprintf("unknown subcommand %q of %s", args[0], group)}
	}
	return f(ctx, e, args[1:])
}

// warnTokenFile warns on stderr when the token file can be read or written
// by users other than its owner: anyone who reads it holds the credential.
func warnTokenFile(e *env, path string) {
	if path == "" {
		return
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&0o077 == 0 {
		return // a missing file is reported when it is read
	}
	fmt.Fprintf(e.stderr, "sipas: warning: token file %s is accessible to other users (mode %s); restrict it with: chmod 600 %s\n",
		path, fi.Mode().Perm(), path)
}
