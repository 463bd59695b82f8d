package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/sipas-vn/sipas"
	"github.com/sipas-vn/sipas/client"
)

func init() {
	register(command{name: "admin", summary: "manage units, credentials, backups, closed periods; list kiosks; read the audit trail and response counts", run: runAdmin})
}

func runAdmin(ctx context.Context, e *env, args []string) error {
	return subcommands(ctx, e, "admin", args, adminCommands)
}

// adminCommands are the subcommands of "sipas admin" (set in init: the
// groups refer to subcommands, which refer back to their help).
var adminCommands []subcommand

func init() {
	group := func(name string, subs []subcommand) func(context.Context, *env, []string) error {
		return func(ctx context.Context, e *env, args []string) error { return subcommands(ctx, e, name, args, subs) }
	}
	adminCommands = []subcommand{
		{"units", "create and list one-stop units", group("admin units", []subcommand{
			{"create", "register a one-stop unit in a province", unitsCreate},
			{"list", "list the registered units", unitsList},
		})},
		{"credentials", "create, list and revoke credentials (tokens)", group("admin credentials", []subcommand{
			{"create", "issue a credential; the token is shown once (or written with --out FILE)", credentialsCreate},
			{"list", "list credentials (never their tokens)", credentialsList},
			{"revoke", "revoke a credential by id or unique id prefix", credentialsRevoke},
		})},
		{"kiosks", "list kiosks and their last heartbeat", group("admin kiosks", []subcommand{
			{"list", "list kiosks with their unit, version and last contact", kiosksList},
		})},
		{"audit", "read the audit trail of administrative actions", adminAudit},
		{"backup", "copy a consistent backup of the database into a local file", adminBackup},
		{"counts", "exact response counts by province, unit and channel (admins only)", adminCounts},
		{"periods", "close, list and reopen periods whose figures are frozen", group("admin periods", []subcommand{
			{"close", "freeze a period: new responses, amendments and withdrawals in it are refused", periodsClose},
			{"list", "list the closed periods", periodsList},
			{"reopen", "reopen a closed period (with a reason, audited)", periodsReopen},
		})},
	}
}

func unitsCreate(ctx context.Context, e *env, args []string) error {
	var c common
	var id, name, province, commune string
	fs := newFlags(e, "admin units create", "sipas admin units create --id ID --name NAME --province CODE [--commune CODE]",
		`sipas admin units create --id dn-haichau --name "Bộ phận Một cửa phường Hải Châu" --province 48`)
	c.register(fs, e)
	fs.StringVar(&id, "id", "", "unit id: letters, digits, '-', '_', '.'")
	fs.StringVar(&name, "name", "", "display name")
	fs.StringVar(&province, "province", "", "two-digit province code (valid today)")
	fs.StringVar(&commune, "commune", "", "commune code (optional)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if id == "" || name == "" || province == "" {
		return usageError{"--id, --name and --province are required"}
	}
	cl, err := c.dial(e)
	if err != nil {
		return err
	}
	defer cl.Close()
	u, err := cl.CreateUnit(ctx, sipas.Unit{ID: id, DisplayName: name, ProvinceCode: province, CommuneCode: commune})
	if err != nil {
		return err
	}
	return unitTable([]sipas.Unit{*u}).write(e.stdout, c.format)
}

func unitTable(units []sipas.Unit) *table {
	t := &table{header: []string{"unit_id", "name", "province", "commune", "created"}}
	for _, u := range units {
		t.add(u.ID, u.DisplayName, u.ProvinceCode, u.CommuneCode, formatTime(&u.CreateTime))
	}
	return t
}

// formatTime is t in RFC 3339 (UTC), "" for nil or the zero time.
func formatTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func unitsList(ctx context.Context, e *env, args []string) error {
	var c common
	var province string
	fs := newFlags(e, "admin units list", "sipas admin units list [--province CODE]", "sipas admin units list --province 48")
	c.register(fs, e)
	fs.StringVar(&province, "province", "", "only units of this province")
	if err := parse(fs, args); err != nil {
		return err
	}
	cl, err := c.dial(e)
	if err != nil {
		return err
	}
	defer cl.Close()
	units, err := cl.Units(ctx, province)
	if err != nil {
		return err
	}
	return unitTable(units).write(e.stdout, c.format)
}

// credentialJSON is the machine form of a credential (token only on create).
type credentialJSON struct {
	ID          string   `json:"id"`
	Role        string   `json:"role"`
	Unit        string   `json:"unit,omitempty"`
	Provinces   []string `json:"provinces,omitempty"`
	All         bool     `json:"all_provinces,omitempty"`
	Description string   `json:"description,omitempty"`
	Created     string   `json:"created"`
	Expires     string   `json:"expires,omitempty"`
	Revoked     string   `json:"revoked,omitempty"`
	Token       string   `json:"token,omitempty"`
	TokenFile   string   `json:"token_file,omitempty"`
}

func credentialToJSON(c *sipas.Credential) credentialJSON {
	return credentialJSON{ID: c.ID, Role: c.Role.String(), Unit: c.UnitID,
		Provinces: c.Provinces, All: c.AllProvinces, Description: c.Description,
		Created: formatTime(&c.CreateTime), Expires: formatTime(c.ExpireTime), Revoked: formatTime(c.RevokeTime)}
}

func credentialTable(creds []credentialJSON) *table {
	t := &table{header: []string{"id", "role", "scope", "description", "created", "expires", "revoked"}, objects: creds}
	for _, c := range creds {
		scope := c.Unit
		if c.All {
			scope = "all provinces"
		} else if len(c.Provinces) > 0 {
			scope = strings.Join(c.Provinces, ",")
		}
		t.add(c.ID, c.Role, scope, c.Description, c.Created, c.Expires, c.Revoked)
	}
	return t
}

func credentialsCreate(ctx context.Context, e *env, args []string) error {
	var c common
	var role, unit, provinces, description, outFile string
	var expires time.Duration
	fs := newFlags(e, "admin credentials create", "sipas admin credentials create --role ROLE [--unit ID | --provinces CODES|all] [--expires DURATION] [--out FILE]",
		"sipas admin credentials create --role kiosk --unit dn-haichau --out data/kiosk.token",
		"sipas admin credentials create --role surveyor --provinces 48,49 --expires 720h",
		"sipas admin credentials create --role analyst --provinces all --format json")
	c.register(fs, e)
	fs.StringVar(&role, "role", "", "kiosk, surveyor, analyst or admin")
	fs.StringVar(&unit, "unit", "", "kiosk: the unit it submits for")
	fs.StringVar(&provinces, "provinces", "", "surveyor/analyst: comma-separated province codes, or 'all'")
	fs.StringVar(&description, "description", "", "a note for operators")
	fs.DurationVar(&expires, "expires", 0, "valid for this long (e.g. 720h); 0 means no expiry")
	fs.StringVar(&outFile, "out", "", "write the token to this new file (mode 0600) and print only its path, not the token")
	if err := parse(fs, args); err != nil {
		return err
	}
	var tokenOut *os.File
	if outFile != "" {
		// The file is created (new, 0600) before the credential exists: a
		// token that cannot be written is a credential nobody can use, and
		// an existing token file is never overwritten.
		f, err := os.OpenFile(outFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			if errors.Is(err, os.ErrExist) {
				return usageError{fmt.Sprintf("--out %s: the file exists; choose a new path (a token file is never overwritten)", outFile)}
			}
			return usageError{fmt.Sprintf("--out: %v", err)}
		}
		tokenOut = f
		defer func() {
			if tokenOut != nil { // not written: remove the empty file
				tokenOut.Close()
				os.Remove(outFile)
			}
		}()
	}
	r, err := sipas.ParseCredentialRole(role)
	if err != nil {
		return usageError{"--role must be kiosk, surveyor, analyst or admin"}
	}
	cred := sipas.Credential{Role: r, UnitID: unit, Description: description}
	if provinces == "all" {
		cred.AllProvinces = true
	} else if provinces != "" {
		for _, p := range strings.Split(provinces, ",") {
			cred.Provinces = append(cred.Provinces, strings.TrimSpace(p))
		}
	}
	cl, err := c.dial(e)
	if err != nil {
		return err
	}
	defer cl.Close()
	created, token, err := cl.CreateCredential(ctx, cred, expires)
	if err != nil {
		return err
	}
	out := credentialToJSON(created)
	if tokenOut != nil {
		if err := writeTokenFile(tokenOut, token); err != nil {
			return fmt.Errorf("credential %s was created but its token could not be written to %s (%v): revoke it with 'sipas admin credentials revoke %s' and create another", out.ID, outFile, err, out.ID)
		}
		tokenOut = nil
		out.TokenFile = outFile
		switch c.format {
		case "json":
			return writeJSON(e.stdout, out)
		case "csv":
			return credentialTable([]credentialJSON{out}).write(e.stdout, "csv")
		}
		if err := credentialTable([]credentialJSON{out}).write(e.stdout, "table"); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "\ntoken written to %s (mode 0600); use it with --token-file %s\n", outFile, outFile)
		return nil
	}
	out.Token = token
	switch c.format {
	case "json":
		return writeJSON(e.stdout, out)
	case "csv":
		t := credentialTable([]credentialJSON{out})
		t.header = append(t.header, "token")
		t.rows[0] = append(t.rows[0], token)
		return t.write(e.stdout, "csv")
	}
	if err := credentialTable([]credentialJSON{out}).write(e.stdout, "table"); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "\ntoken (shown once, store it now):\n%s\n", token)
	return nil
}

// writeTokenFile writes a token to its new file, flushes it to disk and
// closes it.
func writeTokenFile(f *os.File, token string) error {
	_, err := f.WriteString(token + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func credentialsList(ctx context.Context, e *env, args []string) error {
	var c common
	var all bool
	fs := newFlags(e, "admin credentials list", "sipas admin credentials list [--all]", "sipas admin credentials list --all")
	c.register(fs, e)
	fs.BoolVar(&all, "all", false, "include revoked and expired credentials")
	if err := parse(fs, args); err != nil {
		return err
	}
	cl, err := c.dial(e)
	if err != nil {
		return err
	}
	defer cl.Close()
	list, err := cl.Credentials(ctx, all)
	if err != nil {
		return err
	}
	creds := make([]credentialJSON, 0, len(list))
	for i := range list {
		creds = append(creds, credentialToJSON(&list[i]))
	}
	return credentialTable(creds).write(e.stdout, c.format)
}

func credentialsRevoke(ctx context.Context, e *env, args []string) error {
	var c common
	fs := newFlags(e, "admin credentials revoke", "sipas admin credentials revoke ID", "sipas admin credentials revoke 0193a6f2")
	c.register(fs, e)
	if err := parseArgs(fs, args, "ID"); err != nil {
		return err
	}
	cl, err := c.dial(e)
	if err != nil {
		return err
	}
	defer cl.Close()
	id, err := resolveCredentialID(ctx, cl, fs.Arg(0))
	if err != nil {
		return err
	}
	revoked, err := cl.RevokeCredential(ctx, id)
	if err != nil {
		return err
	}
	return credentialTable([]credentialJSON{credentialToJSON(revoked)}).write(e.stdout, c.format)
}

// resolveCredentialID turns a credential id or a unique prefix of one (as
// 'credentials list' shows it) into the full id.
func resolveCredentialID(ctx context.Context, cl *client.Client, arg string) (string, error) {
	if _, err := uuid.Parse(arg); err == nil {
		return arg, nil
	}
	if len(arg) < 4 {
		return "", usageError{fmt.Sprintf("credential id %q: give the full id or at least its first 4 characters", arg)}
	}
	creds, err := cl.Credentials(ctx, true)
	if err != nil {
		return "", err
	}
	var matches []string
	for _, c := range creds {
		if strings.HasPrefix(c.ID, strings.ToLower(arg)) {
			matches = append(matches, c.ID)
		}
	}
	switch len(matches) {
	case 0:
		return "", usageError{fmt.Sprintf("no credential id starts with %q (see 'sipas admin credentials list --all')", arg)}
	case 1:
		return matches[0], nil
	}
	return "", usageError{fmt.Sprintf("%d credential ids start with %q (%s): give more characters", len(matches), arg, strings.Join(matches, ", "))}
}

func adminAudit(ctx context.Context, e *env, args []string) error {
	var c common
	var limit int
	fs := newFlags(e, "admin audit", "sipas admin audit [--limit N]", "sipas admin audit --limit 20")
	c.register(fs, e)
	fs.IntVar(&limit, "limit", 100, "show at most this many events, newest first")
	if err := parse(fs, args); err != nil {
		return err
	}
	cl, err := c.dial(e)
	if err != nil {
		return err
	}
	defer cl.Close()
	type eventJSON struct {
		Sequence int64  `json:"sequence"`
		Time     string `json:"time"`
		Actor    string `json:"actor"`
		Action   string `json:"action"`
		Target   string `json:"target"`
		Detail   string `json:"detail"`
	}
	list, err := cl.AuditEvents(ctx, limit)
	if err != nil {
		return err
	}
	var events []eventJSON
	t := &table{header: []string{"sequence", "time", "actor", "action", "target", "detail"}}
	for _, ev := range list {
		ej := eventJSON{ev.Seq, formatTime(&ev.Time), ev.Actor, ev.Action, ev.Target, ev.Detail}
		events = append(events, ej)
		t.add(fmt.Sprint(ej.Sequence), ej.Time, ej.Actor, ej.Action, ej.Target, ej.Detail)
	}
	t.objects = events
	return t.write(e.stdout, c.format)
}

func adminBackup(ctx context.Context, e *env, args []string) error {
	var c common
	var out string
	fs := newFlags(e, "admin backup", "sipas admin backup --out FILE",
		"sipas admin backup --out sipas-$(date +%F).db")
	c.register(fs, e)
	fs.StringVar(&out, "out", "", "file to write the backup to (must not exist)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if out == "" {
		return usageError{"--out FILE is required"}
	}
	cl, err := c.dial(e)
	if err != nil {
		return err
	}
	defer cl.Close()
	f, err := os.OpenFile(out+".partial", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	responses, sum, err := cl.Backup(ctx, f)
	if err != nil {
		f.Close()
		if errors.Is(err, client.ErrBackupChecksum) {
			return fmt.Errorf("%w; nothing written to %s", err, out)
		}
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if _, err := os.Stat(out); err == nil {
		return fmt.Errorf("%s exists; choose another --out", out)
	}
	if err := os.Rename(f.Name(), out); err != nil {
		return err
	}
	abs, _ := filepath.Abs(out)
	fmt.Fprintf(e.stdout, "backup written to %s (%d responses, sha256 %s)\n", abs, responses, sum)
	fmt.Fprintf(e.stdout, "restore with: sipasd --data-dir DIR --restore %s (server stopped)\n", abs)
	return nil
}

// adminCounts prints exact response counts (AdminService.CountResponses):
// for confirming that data arrived, below the disclosure threshold too.
func adminCounts(ctx context.Context, e *env, args []string) error {
	var c common
	var p periodFlags
	var questionnaire, province, unit, channel string
	fs := newFlags(e, "admin counts", "sipas admin counts --period PERIOD [--province CODE] [--unit ID] [--channel C] [--questionnaire ID]",
		"sipas admin counts --period 2026-07 --unit dn-haichau", "sipas admin counts --period 2026 --province 48 --format csv")
	c.register(fs, e)
	p.register(fs)
	fs.StringVar(&questionnaire, "questionnaire", "", "only this questionnaire (default every questionnaire)")
	fs.StringVar(&province, "province", "", "only this province code (as collected)")
	fs.StringVar(&unit, "unit", "", "only this unit")
	fs.StringVar(&channel, "channel", "", "only this channel: kiosk, field, post, online or phone")
	if err := parse(fs, args); err != nil {
		return err
	}
	period, err := p.get()
	if err != nil {
		return err
	}
	ch, err := sipas.ParseChannel(channel)
	if err != nil {
		return usageError{"--channel must be kiosk, field, post, online or phone"}
	}
	cl, err := c.dial(e)
	if err != nil {
		return err
	}
	defer cl.Close()
	counts, err := cl.Counts(ctx, sipas.CountQuery{QuestionnaireID: questionnaire, Period: period, ProvinceCode: province, UnitID: unit, Channel: ch})
	if err != nil {
		return err
	}
	type countJSON struct {
		Questionnaire string `json:"questionnaire"`
		Province      string `json:"province"`
		Unit          string `json:"unit"`
		Month         string `json:"month"`
		Channel       string `json:"channel"`
		Responses     int64  `json:"responses"`
	}
	rows := make([]countJSON, 0, len(counts))
	t := &table{header: []string{"questionnaire", "province", "unit", "month", "channel", "responses"}}
	for _, r := range counts {
		month := sipas.Period{Year: r.Month / 100, Month: r.Month % 100}
		cj := countJSON{r.QuestionnaireID, r.ProvinceCode, r.UnitID, month.String(), r.Channel.String(), r.Responses}
		rows = append(rows, cj)
		u := cj.Unit
		if u == "" {
			u = "(no unit)"
		}
		t.add(cj.Questionnaire, cj.Province, u, cj.Month, cj.Channel, fmt.Sprint(cj.Responses))
	}
	t.objects = rows
	return t.write(e.stdout, c.format)
}
