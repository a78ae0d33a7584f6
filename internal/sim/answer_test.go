package sim

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAnswer(t *testing.T) {
	tests := []struct {
		name   string
		prompt string
		tokens int
		want   int
	}{
		{"default length", "Hello!", 0, DefaultTokens},
		{"one token", "Hello!", 1, 1},
		{"two tokens", "Hello!", 2, 2},
		{"long", "Tell me a story.", 200, 200},
		{"empty prompt", "", 5, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Answer(tt.prompt, tt.tokens)
			if len(got) != tt.want {
				t.Fatalf("len = %d, want %d", len(got), tt.want)
			}
			if diff := cmp.Diff(got, Answer(tt.prompt, tt.tokens)); diff != "" {
				t.Errorf("not deterministic (-first +second):\n%s", diff)
			}
			for i, tok := range got {
				last := i == len(got)-1
				switch {
				case last && !strings.HasSuffix(tok, "."):
					t.Errorf("last token %q does not end in '.'", tok)
				case !last && (!strings.HasSuffix(tok, " ") || strings.Contains(tok, ".")):
					t.Errorf("token %d %q: want a word and a space", i, tok)
				}
			}
			if first := got[0]; first[:1] != strings.ToUpper(first[:1]) {
				t.Errorf("first token %q is not capitalized", first)
			}
		})
	}
}

func TestAnswerDependsOnWordsOnly(t *testing.T) {
	base := join(Answer("Tell me about rivers", 24))
	for _, p := range []string{"Tell me about rivers", "  Tell\tme\nabout   rivers \n", PromptOf("Tell me", "about rivers")} {
		if got := join(Answer(p, 24)); got != base {
			t.Errorf("Answer(%q) = %q, want %q", p, got, base)
		}
	}
	if got := join(Answer("Tell me about lakes", 24)); got == base {
		t.Errorf("different prompts gave the same answer %q", got)
	}
	// Shorter answers share the words of longer ones.
	long, short := Answer("x", 24), Answer("x", 10)
	if diff := cmp.Diff(long[:9], short[:9]); diff != "" {
		t.Errorf("Answer(x, 10) is not a prefix of Answer(x, 24) (-long +short):\n%s", diff)
	}
}

func TestVocabulary(t *testing.T) {
	seen := map[string]bool{}
	for _, w := range vocab {
		if seen[w] {
			t.Errorf("duplicate word %q", w)
		}
		seen[w] = true
		if w == "" || strings.ToLower(w) != w || strings.ContainsAny(w, ". \"\\") {
			t.Errorf("bad word %q", w)
		}
	}
}

func TestContinuation(t *testing.T) {
	ans := Answer("q", 6)
	tests := []struct {
		name    string
		prefill string
		want    []string
		ok      bool
	}{
		{"empty", "", ans, true},
		{"token boundary", join(ans[:2]), ans[2:], true},
		{"mid token", join(ans[:2]) + ans[2][:2], append([]string{ans[2][2:]}, ans[3:]...), true},
		{"whole", join(ans), []string{}, true},
		{"not a prefix", "Something else", nil, false},
		{"longer than answer", join(ans) + " more", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := continuation(append([]string(nil), ans...), tt.prefill)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if tt.ok && join(got) != join(tt.want) {
				t.Errorf("continuation = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestInstance(t *testing.T) {
	tests := []struct {
		name   string
		schema string
		want   string
	}{
		{"empty", ``, `{}`},
		{"no properties", `{"type":"object"}`, `{}`},
		{"scalars", `{"type":"object","properties":{"b":{"type":"boolean"},"a":{"type":"array","items":{"type":"string"}},"o":{"type":"object"},"n":{"type":"null"}}}`,
			`{"b":true,"a":[],"o":{},"n":null}`},
		{"enum", `{"type":"object","properties":{"unit":{"type":"string","enum":["c"]}}}`, `{"unit":"c"}`},
		{"const", `{"type":"object","properties":{"k":{"const":{"x":1}}}}`, `{"k":{"x":1}}`},
		{"clamped", `{"type":"object","properties":{"i":{"type":"integer","minimum":500}}}`, `{"i":500}`},
		{"ref", `{"type":"object","properties":{"r":{"$ref":"#/$defs/B"}},"$defs":{"B":{"type":"boolean"}}}`, `{"r":true}`},
		{"nullable", `{"type":"object","properties":{"r":{"type":["null","boolean"]}}}`, `{"r":true}`},
		{"anyOf", `{"type":"object","properties":{"r":{"anyOf":[{"type":"null"},{"type":"boolean"}]}}}`, `{"r":true}`},
		{"self ref stops", `{"type":"object","properties":{"r":{"$ref":"#"}}}`,
			`{"r":{"r":{"r":{"r":{"r":null}}}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(instance([]byte(tt.schema), 1))
			if got != tt.want {
				t.Errorf("instance = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestFragments(t *testing.T) {
	got := fragments(nil, `{"location":"amber","n":42}`)
	want := []string{`{"`, `location`, `":"`, `amber`, `","`, `n`, `":`, `42`, `}`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("fragments (-want +got):\n%s", diff)
	}
}

func TestAppendString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", `"plain"`},
		{"q\"b\\n\nt\tc\x01", `"q\"b\\n\nt\tc\u0001"`},
		{"<&> é \u2028", `"<&> é \u2028"`},
		{"bad \xff", `"bad \ufffd"`},
	}
	for _, tt := range tests {
		if got := string(appendString(nil, tt.in)); got != tt.want {
			t.Errorf("appendString(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
