package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/sipas-vn/sipas/client"
)

// cliResult is the outcome of `sipas upload FILE.csv`.
type cliResult struct {
	n      int
	rate   float64
	dur    time.Duration
	stored int64
}

// cliFigure measures `sipas upload` of a batch CSV of the same responses as
// batch_upload, against the library's figure.
func (b *bench) cliFigure() (result, error) {
	bt, err := b.runBatch()
	if err != nil {
		return result{}, err
	}
	cr, err := b.runCLI()
	if err != nil {
		return result{}, err
	}
	r := result{name: figCLIUpload, unit: "rows/s", ceiling: bt.rate, value: cr.rate}
	r.explain = fmt.Sprintf("`sipas upload FILE.csv` (the CLI binary, surveyor token in SIPAS_TOKEN) of a %d-row batch CSV of the batch_upload responses "+
		"(client.WriteBatchCSV, every item column) to a fresh sipasd child: %s wall clock for the process, %d rows stored. "+
		"Ceiling: the library batch_upload figure of this run.", cr.n, cr.dur.Round(10*time.Millisecond), cr.stored)
	return r, nil
}

func (b *bench) runCLI() (*cliResult, error) {
	if b.cli != nil {
		return b.cli, nil
	}
	res := &cliResult{}
	err := b.timed("cli upload", func() error {
		bin, err := b.binary("sipas")
		if err != nil {
			return err
		}
		rs, err := b.batchResponses()
		if err != nil {
			return err
		}
		path := filepath.Join(b.tmp, "batch.csv")
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		w := bufio.NewWriterSize(f, 1<<20)
		if err := client.WriteBatchCSV(w, nil, rs); err != nil {
			f.Close()
			return err
		}
		if err := w.Flush(); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		c, tok, err := b.startWithSurveyor("cli", "bench cli upload")
		if err != nil {
			return err
		}
		defer c.kill()
		var out bytes.Buffer
		up := exec.Command(bin, "upload", path)
		up.Env = append(os.Environ(), "SIPAS_SERVER="+c.addr, "SIPAS_TOKEN="+tok, "SIPAS_TOKEN_FILE=")
		up.Stdout, up.Stderr = &out, &out
		start := time.Now()
		err = up.Run()
		res.dur = time.Since(start)
		if err != nil {
			return fmt.Errorf("sipas upload: %w\n%s", err, tail(out.String(), 2000))
		}
		res.n = len(rs)
		res.rate = float64(len(rs)) / res.dur.Seconds()
		if err := c.stop(); err != nil {
			return fmt.Errorf("stopping sipasd: %w", err)
		}
		res.stored, err = c.countRows()
		if err == nil && res.stored != int64(len(rs)) {
			err = fmt.Errorf("sipas upload stored %d of %d rows\n%s", res.stored, len(rs), tail(out.String(), 2000))
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	b.cli = res
	return res, nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
