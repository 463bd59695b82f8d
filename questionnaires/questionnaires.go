// Package questionnaires embeds the questionnaire definitions, the shared
// answer scales and the province registry, and loads them into a catalog.
//
// Layout: scales.csv and provinces.csv at the top; one directory per
// questionnaire (sipas-2023/, sipas-2017/) holding questionnaire.csv,
// formula.csv, items.csv and optionally scales.csv. A new questionnaire is a
// new directory: embedded here, or given at run time in an extra directory.
package questionnaires

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sipas-vn/sipas"
)

// FS holds the embedded data files.
//
//go:embed scales.csv provinces.csv sipas-*/*.csv
var FS embed.FS

// Embedded file names.
const (
	ScalesFile    = "scales.csv"
	ProvincesFile = "provinces.csv"
)

// Registry loads the embedded province registry.
func Registry() (*sipas.Registry, error) {
	b, err := FS.ReadFile(ProvincesFile)
	if err != nil {
		return nil, err
	}
	return sipas.LoadRegistry(bytes.NewReader(b), "questionnaires/"+ProvincesFile)
}

// Scales loads the embedded shared scales.
func Scales() (map[string]*sipas.Scale, error) {
	return sipas.LoadScales(FS, ScalesFile)
}

// Load loads the embedded questionnaires and province registry, plus, when
// extraDir is not empty, the questionnaire in every subdirectory of extraDir
// (hidden directories skipped). An extra definition whose id already exists
// is an error, as is any malformed definition: the error names file, line and
// problem.
func Load(extraDir string) (*sipas.Catalog, *sipas.Registry, error) {
	reg, err := Registry()
	if err != nil {
		return nil, nil, err
	}
	scales, err := Scales()
	if err != nil {
		return nil, nil, err
	}
	var qs []*sipas.Questionnaire
	dirs, err := subdirs(FS, ".")
	if err != nil {
		return nil, nil, err
	}
	for _, d := range dirs {
		q, err := sipas.LoadQuestionnaire(FS, d, scales, "embedded")
		if err != nil {
			return nil, nil, err
		}
		qs = append(qs, q)
	}
	if extraDir != "" {
		efs := os.DirFS(extraDir)
		dirs, err := subdirs(efs, ".")
		if err != nil {
			return nil, nil, fmt.Errorf("questionnaire directory %s: %w", extraDir, err)
		}
		for _, d := range dirs {
			src := filepath.ToSlash(filepath.Join(extraDir, d))
			q, err := sipas.LoadQuestionnaire(efs, d, scales, src)
			if err != nil {
				return nil, nil, err
			}
			qs = append(qs, q)
		}
	}
	cat, err := sipas.NewCatalog(qs...)
	if err != nil {
		return nil, nil, err
	}
	return cat, reg, nil
}

func subdirs(fsys fs.FS, dir string) ([]string, error) {
	ents, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") && !strings.HasPrefix(e.Name(), "_") {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}
