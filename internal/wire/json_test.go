package wire

import (
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

var jsonStrings = []string{
	"", "plain", `"quoted" \back\slash/`, "<b>&amp;</b>", "tab\tnew\nline\rret",
	"\x00\x01\x07\x08\x0b\x0c\x1f\x7f", "\b\f", "é漢😀", "\u2028\u2029", "\u2027\u202a",
	"bad \xff utf8", "\xe2\x80", "cut \xf0\x9f\x98", "\xed\xa0\x80 surrogate", "\ufffd",
	`{"already":"json"}`,
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range jsonStrings {
		want, _ := json.Marshal(s)
		got := appendJSONString([]byte("x"), s)
		if string(got[:1]) != "x" {
			t.Errorf("%q: dst prefix lost: %q", s, got)
		}
		if diff := cmp.Diff(string(want), string(got[1:])); diff != "" {
			t.Errorf("%q (-encoding/json +ours):\n%s", s, diff)
		}
	}
}

// FuzzAppendJSONString checks appendJSONString against encoding/json:
// byte-identical for valid UTF-8; for invalid UTF-8 both must decode to the
// same string.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range jsonStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		got := appendJSONString(nil, s)
		if utf8.ValidString(s) {
			if string(got) != string(want) {
				t.Fatalf("%q: got %s, encoding/json %s", s, got, want)
			}
			return
		}
		var g, w string
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("%q: our output %s does not decode: %v", s, got, err)
		}
		json.Unmarshal(want, &w)
		if g != w {
			t.Fatalf("%q: decodes to %q, encoding/json's to %q", s, g, w)
		}
	})
}
