package wire

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// jsonStrings are strings whose JSON escaping is worth a seed
// (jsontext's tests cover appendJSONString itself).
var jsonStrings = []string{
	"", "plain", `"quoted" \back\slash/`, "<b>&amp;</b>", "tab\tnew\nline\rret",
	"\x00\x01\x07\x08\x0b\x0c\x1f\x7f", "\b\f", "é漢😀", "\u2028\u2029", "\u2027\u202a",
	"bad \xff utf8", "\xe2\x80", "cut \xf0\x9f\x98", "\xed\xa0\x80 surrogate", "\ufffd",
	`{"already":"json"}`,
}

// slowMembers is bodyMembers by encoding/json alone, the reference.
func slowMembers(body []byte) ([]member, bool) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return nil, false
	}
	var ms []member
	for _, k := range sortedKeys(fields) {
		ms = append(ms, member{k, fields[k]})
	}
	return ms, true
}

var memberComparer = cmp.Comparer(func(a, b member) bool { return a.key == b.key && string(a.raw) == string(b.raw) })

func TestBodyMembers(t *testing.T) {
	tests := []struct {
		name string
		body string
		fast bool // the scanner reads it; else encoding/json does
	}{
		{"plain", `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}],"temperature":0.5}`, true},
		{"whitespace and nesting", " {\n \"b\" : [1, {\"x\":null}] ,\t\"a\":\"\\u00e9\\n\" } \n", true},
		{"empty object", `{}`, true},
		{"repeated key: the last wins", `{"model":"a","x":1,"model":"b"}`, false},
		{"escaped key", `{"mod\u0065l":"m"}`, false},
		{"invalid UTF-8 in a value", "{\"model\":\"\xff\"}", false},
		{"key differing only in case", `{"Model":"m","model":"n"}`, true},
		{"not an object", `[1,2]`, false},
		{"null", `null`, false},
		{"trailing data", `{"a":1} {"b":2}`, false},
		{"syntax error", `{"a":1,}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, fast := scanMembers([]byte(tt.body))
			if fast != tt.fast {
				t.Errorf("scanner accepted = %v, want %v", fast, tt.fast)
			}
			want, wantOK := slowMembers([]byte(tt.body))
			got, ok := bodyMembers([]byte(tt.body))
			if ok != wantOK {
				t.Fatalf("ok = %v, encoding/json's = %v", ok, wantOK)
			}
			if diff := cmp.Diff(want, got, memberComparer, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("members (-encoding/json +got):\n%s", diff)
			}
		})
	}
}

// FuzzScanMembers checks the scanner against encoding/json: whenever it
// reads a body, it finds the same members.
func FuzzScanMembers(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(examples, "*/request-*.json"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"model":"m","a":{"b":[1,2.5e-3,true,null,"\ud83d\ude00"]},"model2":""}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, ok := scanMembers(body)
		if !ok {
			return
		}
		want, wantOK := slowMembers(body)
		if !wantOK {
			t.Fatalf("scanner read %q, which encoding/json rejects", body)
		}
		if diff := cmp.Diff(want, got, memberComparer, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("members of %q (-encoding/json +scanner):\n%s", body, diff)
		}
	})
}
