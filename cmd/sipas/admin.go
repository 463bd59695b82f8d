package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sipas-vn/sipas/export"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
)

func init() {
	register(command{name: "admin", summary: "manage units, credentials, backups, closed periods; list kiosks; read the audit trail and response counts", run: runAdmin})
}

func runAdmin(ctx context.Context, e *env, args []string) error {
	return subcommands(ctx, e, "admin", args, map[string]func(context.Context, *env, []string) error{
		"units": func(ctx context.Context, e *env, args []string) error {
			return subcommands(ctx, e, "admin units", args, map[string]func(context.Context, *env, []string) error{
				"create": unitsCreate, "list": unitsList,
			})
		},
		"credentials": func(ctx context.Context, e *env, args []string) error {
			return subcommands(ctx, e, "admin credentials", args, map[string]func(context.Context, *env, []string) error{
				"create": credentialsCreate, "list": credentialsList, "revoke": credentialsRevoke,
			})
		},
		"kiosks": func(ctx context.Context, e *env, args []string) error {
			return subcommands(ctx, e, "admin kiosks", args, map[string]func(context.Context, *env, []string) error{
				"list": kiosksList,
			})
		},
		"audit":   adminAudit,
		"backup":  adminBackup,
		"counts":  adminCounts,
		"periods": adminPeriods,
	})
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
	cl, cctx, done, err := c.connect(ctx, e)
	if err != nil {
		return err
	}
	defer done()
	resp, err := cl.Admin.CreateUnit(cctx, &sipasv1.CreateUnitRequest{Unit: &sipasv1.Unit{
		UnitId: id, DisplayName: name, ProvinceCode: province, CommuneCode: commune}})
	if err != nil {
		return err
	}
	return unitTable([]*sipasv1.Unit{resp.Unit}).write(e.stdout, c.format)
}

func unitTable(units []*sipasv1.Unit) *table {
	t := &table{header: []string{"unit_id", "name", "province", "commune", "created"}}
	for _, u := range units {
		t.add(u.UnitId, u.DisplayName, u.ProvinceCode, u.CommuneCode, formatTime(u.CreateTime))
	}
	return t
}

func formatTime(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return ""
	}
	return ts.AsTime().UTC().Format(time.RFC3339)
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
	var all []*sipasv1.Unit
	token := ""
	for {
		cctx, cancel := cl.WithTimeout(ctx)
		resp, err := cl.Admin.ListUnits(cctx, &sipasv1.ListUnitsRequest{PageToken: token, PageSize: 1000, ProvinceCode: province})
		cancel()
		if err != nil {
			return err
		}
		all = append(all, resp.Units...)
		if token = resp.NextPageToken; token == "" {
			break
		}
	}
	return unitTable(all).write(e.stdout, c.format)
}

var roleByName = map[string]sipasv1.Role{
	"kiosk": sipasv1.Role_ROLE_KIOSK, "surveyor": sipasv1.Role_ROLE_SURVEYOR,
	"analyst": sipasv1.Role_ROLE_ANALYST, "admin": sipasv1.Role_ROLE_ADMIN,
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

func credentialToJSON(c *sipasv1.Credential) credentialJSON {
	return credentialJSON{ID: c.CredentialId, Role: enumName(c.Role.String(), "ROLE_"), Unit: c.UnitId,
		Provinces: c.ProvinceCodes, All: c.AllProvinces, Description: c.Description,
		Created: formatTime(c.CreateTime), Expires: formatTime(c.ExpireTime), Revoked: formatTime(c.RevokeTime)}
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
	r, ok := roleByName[role]
	if !ok {
		return usageError{"--role must be kiosk, surveyor, analyst or admin"}
	}
	cred := &sipasv1.Credential{Role: r, UnitId: unit, Description: description}
	if provinces == "all" {
		cred.AllProvinces = true
	} else if provinces != "" {
		for _, p := range strings.Split(provinces, ",") {
			cred.ProvinceCodes = append(cred.ProvinceCodes, strings.TrimSpace(p))
		}
	}
	req := &sipasv1.CreateCredentialRequest{Credential: cred}
	if expires > 0 {
		req.Ttl = durationpb.New(expires)
	}
	cl, cctx, done, err := c.connect(ctx, e)
	if err != nil {
		return err
	}
	defer done()
	resp, err := cl.Admin.CreateCredential(cctx, req)
	if err != nil {
		return err
	}
	out := credentialToJSON(resp.Credential)
	if tokenOut != nil {
		if err := writeTokenFile(tokenOut, resp.Token); err != nil {
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
	out.Token = resp.Token
	switch c.format {
	case "json":
		return writeJSON(e.stdout, out)
	case "csv":
		t := credentialTable([]credentialJSON{out})
		t.header = append(t.header, "token")
		t.rows[0] = append(t.rows[0], resp.Token)
		return t.write(e.stdout, "csv")
	}
	if err := credentialTable([]credentialJSON{out}).write(e.stdout, "table"); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "\ntoken (shown once, store it now):\n%s\n", resp.Token)
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
	var creds []credentialJSON
	token := ""
	for {
		cctx, cancel := cl.WithTimeout(ctx)
		resp, err := cl.Admin.ListCredentials(cctx, &sipasv1.ListCredentialsRequest{PageToken: token, PageSize: 1000, ShowInactive: all})
		cancel()
		if err != nil {
			return err
		}
		for _, cr := range resp.Credentials {
			creds = append(creds, credentialToJSON(cr))
		}
		if token = resp.NextPageToken; token == "" {
			break
		}
	}
	return credentialTable(creds).write(e.stdout, c.format)
}

func credentialsRevoke(ctx context.Context, e *env, args []string) error {
	var c common
	fs := newFlags(e, "admin credentials revoke", "sipas admin credentials revoke ID", "sipas admin credentials revoke 0193a6f2")
	c.register(fs, e)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"give the id of the credential to revoke (see 'sipas admin credentials list')"}
	}
	cl, cctx, done, err := c.connect(ctx, e)
	if err != nil {
		return err
	}
	defer done()
	id, err := resolveCredentialID(cctx, cl.Admin, fs.Arg(0))
	if err != nil {
		return err
	}
	resp, err := cl.Admin.RevokeCredential(cctx, &sipasv1.RevokeCredentialRequest{Name: "credentials/" + id})
	if err != nil {
		return err
	}
	return credentialTable([]credentialJSON{credentialToJSON(resp.Credential)}).write(e.stdout, c.format)
}

// resolveCredentialID turns a credential id or a unique prefix of one (as
// 'credentials list' shows it) into the full id.
func resolveCredentialID(ctx context.Context, admin sipasv1.AdminServiceClient, arg string) (string, error) {
	if _, err := uuid.Parse(arg); err == nil {
		return arg, nil
	}
	if len(arg) < 4 {
		return "", usageError{fmt.Sprintf("credential id %q: give the full id or at least its first 4 characters", arg)}
	}
	var matches []string
	page := ""
	for {
		resp, err := admin.ListCredentials(ctx, &sipasv1.ListCredentialsRequest{PageToken: page, PageSize: 1000, ShowInactive: true})
		if err != nil {
			return "", err
		}
		for _, c := range resp.Credentials {
			if id := c.CredentialId; strings.HasPrefix(id, strings.ToLower(arg)) {
				matches = append(matches, id)
			}
		}
		if page = resp.NextPageToken; page == "" {
			break
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
	var events []eventJSON
	t := &table{header: []string{"sequence", "time", "actor", "action", "target", "detail"}}
	token := ""
	for len(events) < limit {
		cctx, cancel := cl.WithTimeout(ctx)
		resp, err := cl.Admin.ListAuditEvents(cctx, &sipasv1.ListAuditEventsRequest{PageToken: token, PageSize: int32(min(limit-len(events), 1000))})
		cancel()
		if err != nil {
			return err
		}
		for _, ev := range resp.Events {
			ej := eventJSON{ev.Sequence, formatTime(ev.Time), ev.Actor, ev.Action, ev.Target, ev.Detail}
			events = append(events, ej)
			t.add(fmt.Sprint(ej.Sequence), ej.Time, ej.Actor, ej.Action, ej.Target, ej.Detail)
		}
		if token = resp.NextPageToken; token == "" {
			break
		}
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
	stream, err := cl.Admin.Backup(ctx, &sipasv1.BackupRequest{})
	if err != nil {
		f.Close()
		return err
	}
	h := sha256.New()
	w := io.MultiWriter(f, h)
	var last *sipasv1.BackupResponse
	for {
		chunk, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			f.Close()
			return err
		}
		if _, err := w.Write(chunk.Data); err != nil {
			f.Close()
			return err
		}
		last = chunk
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if last == nil || last.Sha256 != sum {
		return fmt.Errorf("backup incomplete or corrupted in transfer (checksum mismatch); nothing written to %s", out)
	}
	if _, err := os.Stat(out); err == nil {
		return fmt.Errorf("%s exists; choose another --out", out)
	}
	if err := os.Rename(f.Name(), out); err != nil {
		return err
	}
	abs, _ := filepath.Abs(out)
	fmt.Fprintf(e.stdout, "backup written to %s (%d responses, sha256 %s)\n", abs, last.Responses, sum)
	fmt.Fprintf(e.stdout, "restore with: sipasd --data-dir DIR --restore %s (server stopped)\n", abs)
	return nil
}

// adminCounts prints exact response counts (AdminService.CountResponses):
// for confirming that data arrived, below the disclosure threshold too.
func adminCounts(ctx context.Context, e *env, args []string) error {
	var c common
	var p periodFlags
	var province, unit string
	fs := newFlags(e, "admin counts", "sipas admin counts --year Y [--quarter Q | --month M] [--province CODE] [--unit ID] [--channel C] [--questionnaire ID]",
		"sipas admin counts --year 2026 --month 7 --unit dn-haichau")
	c.register(fs, e)
	p.register(fs)
	fs.StringVar(&province, "province", "", "only this province code (as collected)")
	fs.StringVar(&unit, "unit", "", "only this unit")
	if err := parse(fs, args); err != nil {
		return err
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "questionnaire" })
	if !explicit {
		p.questionnaire = "" // every questionnaire
	}
	period, err := p.period()
	if err != nil {
		return err
	}
	_, ch, err := p.enums()
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
	resp, err := cl.Admin.CountResponses(cctx, &sipasv1.CountResponsesRequest{QuestionnaireId: p.questionnaire, Period: period,
		ProvinceCode: province, UnitId: unit, Channel: ch})
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
	rows := make([]countJSON, 0, len(resp.Counts))
	t := &table{header: []string{"questionnaire", "province", "unit", "month", "channel", "responses"}}
	for _, r := range resp.Counts {
		cj := countJSON{r.QuestionnaireId, r.ProvinceCode, r.UnitId, export.PeriodString(r.Month),
			strings.ToLower(strings.TrimPrefix(r.Channel.String(), "CHANNEL_")), r.Responses}
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
