package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sipas-vn/sipas"
	sipasv1 "github.com/sipas-vn/sipas/proto/sipas/v1"
	"github.com/sipas-vn/sipas/questionnaires"
	"github.com/sipas-vn/sipas/store"
)

// mapSource serves cells from a map (a recount), for comparing indices.
type mapSource map[sipas.CellKey]*sipas.Tally

func (m mapSource) EachCell(qid string, from, to int, fn func(sipas.CellKey, *sipas.Tally)) {
	for k, t := range m {
		if k.QuestionnaireID == qid && k.Month >= from && k.Month <= to {
			fn(k, t)
		}
	}
}

// TestBackupUnderLoadAndRestore takes an online backup through the API while
// submissions go on, restores it with --restore, and checks integrity, the
// response count at the backup point, and identical index values.
func TestBackupUnderLoadAndRestore(t *testing.T) {
	dir := t.TempDir()
	d, addr, _ := startDaemon(t, dir, "--rate-limit", "0", "--min-sample", "1", "--disclosure-threshold", "5")
	conn, ctx := dialAs(t, addr, readToken(t, dir))
	adm := sipasv1.NewAdminServiceClient(conn)
	cr, err := adm.CreateCredential(ctx, &sipasv1.CreateCredentialRequest{Credential: &sipasv1.Credential{Role: sipasv1.Role_ROLE_SURVEYOR, AllProvinces: true}})
	if err != nil {
		t.Fatal(err)
	}
	_, sctx := dialAs(t, addr, cr.Token)
	survey := sipasv1.NewSurveyServiceClient(conn)
	cat, reg, _ := questionnaires.Load("")
	items := cat.Get("sipas-2023").Items
	var n atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				answers := map[string]int32{}
				for j, it := range items[45:96] {
					answers[it.Code] = int32(1 + (i+j+w)%5)
				}
				if _, err := survey.SubmitResponse(sctx, &sipasv1.SubmitResponseRequest{Response: &sipasv1.Response{
					ResponseId: uuid.Must(uuid.NewV7()).String(), QuestionnaireId: "sipas-2023", ProvinceCode: []string{"48", "01", "79"}[i%3],
					CollectedAt: timestamppb.Now(), Channel: sipasv1.Channel_CHANNEL_FIELD, Answers: answers}}); err == nil {
					n.Add(1)
				}
			}
		}()
	}
	for n.Load() < 300 {
		time.Sleep(10 * time.Millisecond)
	}
	// The backup, while the writers keep going.
	backup := filepath.Join(t.TempDir(), "backup.db")
	stream, err := adm.Backup(ctx, &sipasv1.BackupRequest{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(backup)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	var last *sipasv1.BackupResponse
	for {
		c, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		f.Write(c.Data)
		h.Write(c.Data)
		last = c
	}
	f.Close()
	atBackup := n.Load()
	for n.Load() < atBackup+200 { // ingestion went on during and after the copy
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if last.Sha256 != hex.EncodeToString(h.Sum(nil)) {
		t.Fatal("backup checksum mismatch")
	}
	d.stop()

	// Restore into a fresh data directory.
	rdir := t.TempDir()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--data-dir", rdir, "--restore", backup}, env, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	rst, err := store.Open(context.Background(), filepath.Join(rdir, dbFile), cat, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := rst.IntegrityCheck(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := rst.CheckAggregates(context.Background()); err != nil {
		t.Fatal(err)
	}
	count, _ := rst.CountResponses(context.Background())
	if count != last.Responses || count < 300 || count >= n.Load() {
		t.Fatalf("restored %d responses; backup said %d; %d acknowledged before, %d in all", count, last.Responses, atBackup, n.Load())
	}
	recount, err := rst.Recount(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rst.Close()
	// The restored server's indices equal those recomputed from the raw
	// restored responses.
	_, raddr, _ := startDaemon(t, rdir, "--min-sample", "1", "--disclosure-threshold", "5")
	rconn, rctx := dialAs(t, raddr, readToken(t, dir))
	year := int32(time.Now().In(sipas.VietnamZone).Year())
	th := sipas.Thresholds{MinSample: 1, Disclosure: 5}
	engine := &sipas.Engine{Catalog: cat, Registry: reg, Source: mapSource(recount), Thresholds: th}
	for _, code := range []string{"48", "01", "79"} {
		gotResp, err := sipasv1.NewIndexServiceClient(rconn).GetIndex(rctx, &sipasv1.GetIndexRequest{QuestionnaireId: "sipas-2023",
			Scope: &sipasv1.Scope{Scope: &sipasv1.Scope_ProvinceCode{ProvinceCode: code}}, Period: &sipasv1.Period{Year: year}})
		if err != nil {
			t.Fatal(err)
		}
		got := gotResp.GetReport()
		want, err := engine.Index(sipas.Query{QuestionnaireID: "sipas-2023", Scope: sipas.Scope{ProvinceCode: code}, Period: sipas.Period{Year: int(year)}})
		if err != nil {
			t.Fatal(err)
		}
		if got.Respondents != want.Respondents || got.Respondents == 0 {
			t.Fatalf("province %s: %d respondents restored, %d recounted", code, got.Respondents, want.Respondents)
		}
		var wantRoots []*sipasv1.IndexNode
		for _, r := range want.Roots {
			wantRoots = append(wantRoots, nodeToProtoForTest(r))
		}
		if diff := cmp.Diff(wantRoots, got.Roots, protocmp.Transform()); diff != "" {
			t.Fatalf("province %s index differs from the recount (-want +got):\n%s", code, diff)
		}
	}
	t.Logf("backup under load: %d responses in the copy of %d acknowledged in all", count, n.Load())
}

func nodeToProtoForTest(v *sipas.NodeValue) *sipasv1.IndexNode {
	out := &sipasv1.IndexNode{Code: v.Code, LabelVi: v.LabelVi, LabelEn: v.LabelEn, IsItem: v.IsItem, Role: sipasv1.ItemRole(v.Role),
		Value: v.Value, N: v.N, Positive: v.Positive, Valid: v.Valid, CiLow: v.CILow, CiHigh: v.CIHigh,
		Insufficient: v.Insufficient, Suppressed: v.Suppressed}
	for _, c := range v.Children {
		out.Children = append(out.Children, nodeToProtoForTest(c))
	}
	return out
}

// TestScheduledBackupsWithRetention runs scheduled backups and checks that
// only the newest --backup-keep are kept and each is a sound database.
func TestScheduledBackupsWithRetention(t *testing.T) {
	dir, bdir := t.TempDir(), t.TempDir()
	d, _, _ := startDaemon(t, dir, "--backup-dir", bdir, "--backup-every", "1100ms", "--backup-keep", "2")
	// finished lists the files named like a backup: a backup in progress is
	// under a hidden name until it is whole.
	finished := func() []string {
		entries, _ := os.ReadDir(bdir)
		var names []string
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), backupPrefix) && strings.HasSuffix(e.Name(), ".db") {
				names = append(names, e.Name())
			}
		}
		return names
	}
	start := time.Now()
	for time.Since(start) < 15*time.Second && (len(finished()) < 2 || time.Since(start) < 4500*time.Millisecond) {
		time.Sleep(100 * time.Millisecond)
	}
	// Stop before looking, so that no backup is made or removed meanwhile.
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	names := finished()
	if len(names) != 2 {
		t.Fatalf("backup dir holds %v after 4 or more backups, want the newest 2", names)
	}
	cat, _, _ := questionnaires.Load("")
	for _, n := range names {
		st, err := store.Open(context.Background(), filepath.Join(bdir, n), cat, store.Options{})
		if err != nil {
			t.Fatalf("backup %s: %v", n, err)
		}
		if err := st.IntegrityCheck(context.Background()); err != nil {
			t.Fatalf("backup %s: %v", n, err)
		}
		st.Close()
	}
}
