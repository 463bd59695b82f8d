package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestTableEscapesControlCharactersAndCSVNeutralises(t *testing.T) {
	tb := &table{header: []string{"id", "name"}}
	tb.add("u1", "Một cửa\x1b[31m đỏ\tlệch\ncột\u202eABC")
	tb.add("u2", "=HYPERLINK(\"http://evil\")")
	var b bytes.Buffer
	if err := tb.write(&b, "table"); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.ContainsAny(out, "\x1b\t\u202e") || strings.Count(out, "\n") != 3 {
		t.Fatalf("table output carries control characters:\n%q", out)
	}
	if !strings.Contains(out, `Một cửa\x1b[31m đỏ\tlệch\ncột\u202eABC`) {
		t.Errorf("control characters not shown as escapes:\n%s", out)
	}
	b.Reset()
	if err := tb.write(&b, "csv"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `'=HYPERLINK(""http://evil"")`) {
		t.Errorf("csv cell not neutralised:\n%s", b.String())
	}
}
