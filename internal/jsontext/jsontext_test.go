package jsontext

import (
	"bytes"
	"encoding/json"
	"testing"
)

// reference is encoding/json's encoding of s, with or without its HTML
// escapes.
func reference(t testing.TB, s string, html bool) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(html)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

var cases = []string{
	"", "plain", `"quoted" \back\slash/`, "<a href='x'>&amp;</a>", "tab\tnew\nline\rret",
	"\x00\x01\x07\x08\x0b\x0c\x1f\x7f", "\b\f", "é 漢 😀", "\u2028\u2029", "\u2027\u202a",
	"bad \xff utf8", "\xe2\x80", "cut \xf0\x9f\x98", "\xed\xa0\x80 surrogate", "\ufffd",
	`{"already":"json"}`,
}

func TestAppendString(t *testing.T) {
	for _, s := range cases {
		for _, html := range []bool{true, false} {
			want := reference(t, s, html)
			if got := AppendString([]byte("x"), s, html); !bytes.Equal(got, append([]byte("x"), want...)) {
				t.Errorf("AppendString(%q, html=%v) = %s, want x%s", s, html, got, want)
			}
			if got := AppendEscaped(nil, s, html); !bytes.Equal(got, want[1:len(want)-1]) {
				t.Errorf("AppendEscaped(%q, html=%v) = %s, want %s", s, html, got, want[1:len(want)-1])
			}
		}
	}
}

// FuzzAppendString checks AppendString against encoding/json, and that
// the string reads back (invalid UTF-8 aside, which becomes U+FFFD).
func FuzzAppendString(f *testing.F) {
	for _, s := range cases {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, html bool) {
		got := AppendString(nil, s, html)
		if want := reference(t, s, html); !bytes.Equal(got, want) {
			t.Fatalf("AppendString(%q, %v) = %s, want %s", s, html, got, want)
		}
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%s does not read back: %v", got, err)
		}
	})
}

func BenchmarkAppendString(b *testing.B) {
	s := "The quick brown fox jumps over the lazy dog, \"twice\".\n"
	buf := make([]byte, 0, 256)
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		buf = AppendString(buf[:0], s, true)
	}
}
