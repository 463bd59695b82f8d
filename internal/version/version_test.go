package version

import (
	"runtime/debug"
	"testing"
)

func TestDescribe(t *testing.T) {
	for _, tc := range []struct {
		info *debug.BuildInfo
		want string
	}{
		{&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}}, "v1.2.3 go1.26.8"},
		{&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "1f05ff1c7a2e99aabbccddeeff00112233445566"}, {Key: "vcs.modified", Value: "true"}}},
			"(devel) (revision 1f05ff1c7a2e, modified) go1.26.8"},
		{&debug.BuildInfo{GoVersion: "go1.26.8", Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "false"}}},
			"(devel) (revision abc) go1.26.8"},
	} {
		if got := describe(tc.info); got != tc.want {
			t.Errorf("describe = %q, want %q", got, tc.want)
		}
	}
	if String() == "" {
		t.Error("String is empty")
	}
}
