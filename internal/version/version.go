// Package version tells which build of sipas is running, from the build
// information the Go toolchain embeds in every binary (module version, VCS
// revision and whether the work tree had uncommitted changes).
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// String is the one-line version of this binary, e.g.
// "v0.0.0-… (revision 1f05ff1c7a2e, modified) go1.26.8".
func String() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown (no build information) " + runtime.Version()
	}
	return describe(info)
}

func describe(info *debug.BuildInfo) string {
	v := info.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = ", modified"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
		v = fmt.Sprintf("%s (revision %s%s)", v, rev, modified)
	}
	return v + " " + info.GoVersion
}
