package wire

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// slowChunk decodes data the way the fast path must agree with. An error
// that is null counts as none, as Decode treats it.
func slowChunk(data []byte) (chatChunkIn, error) {
	var c chatChunkIn
	err := json.Unmarshal(data, &c)
	if isNull(c.Error) {
		c.Error = nil
	}
	return c, err
}

var equateEmpty = cmpopts.EquateEmpty()

func TestScanChunk(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		accept bool
	}{
		{"text chunk", `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"hi"},"logprobs":null,"finish_reason":null}]}`, true},
		{"escapes", `{"id":"c1","choices":[{"index":0,"delta":{"content":"a\n\"b\"\\ \/ \u00e9 \ud83d\ude00 \ud800x"}}]}`, true},
		{"utf-8", `{"id":"c1","choices":[{"delta":{"content":"héllo 😀"}}]}`, true},
		{"role and refusal", `{"id":"c1","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null}}],"usage":null}`, true},
		{"finish", `{"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`, true},
		{"unknown keys skipped", `{"x":{"a":[1,2.5e3,-0.1,true,false,null,"s"]},"id":"c1","obfuscation":"zz","choices":[]}`, true},
		{"whitespace", " {\n\"id\" : \"c1\" ,\t\"choices\" : [ ] } \n", true},
		{"reasoning", `{"choices":[{"delta":{"reasoning_content":"think","reasoning":"x"}}]}`, true},
		{"null everything", `{"id":null,"model":null,"choices":null,"error":null}`, true},
		{"usage", `{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":50,"total_tokens":51,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":3,"audio_tokens":0,"accepted_prediction_tokens":0}}}`, true},
		{"usage with nulls", `{"choices":[],"usage":{"prompt_tokens":null,"prompt_tokens_details":null,"completion_tokens_details":{"reasoning_tokens":null}}}`, true},
		{"usage count not an integer", `{"usage":{"prompt_tokens":1.5}}`, false},
		{"usage details not an object", `{"usage":{"prompt_tokens_details":[]}}`, false},
		{"usage key folded", `{"usage":{"Prompt_Tokens":1}}`, false},
		{"tool calls: slow path", `{"choices":[{"delta":{"tool_calls":[{"index":0}]}}]}`, false},
		{"error: slow path", `{"error":{"message":"x"}}`, false},
		{"not json", `{"id":"c1",`, false},
		{"trailing comma", `{"id":"c1",}`, false},
		{"trailing comma in array", `{"choices":[{"index":0},]}`, false},
		{"bad literal", `{"x":tru}`, false},
		{"bad number", `{"x":01}`, false},
		{"bad escape", `{"id":"\q"}`, false},
		{"control char", "{\"id\":\"a\x01\"}", false},
		{"invalid utf-8", "{\"choices\":[{\"delta\":{\"content\":\"\xff\"}}]}", false},
		{"fraction index", `{"choices":[{"index":0.5}]}`, false},
		{"content not a string", `{"choices":[{"delta":{"content":5}}]}`, false},
		{"trailing data", `{"id":"c1"} x`, false},
		{"escaped key", `{"\u0069d":"c1"}`, false},
		{"escaped unknown key", `{"\u0078":1,"id":"c1"}`, false},
		{"escaped key in a skipped value", `{"x":{"\u0069d":[{"\n":{}}]},"id":"c1"}`, true},
		{"empty values skipped", `{"x":{},"y":[],"z":[{},[]],"choices":[]}`, true},
		{"trailing comma before space", `{"id":"c1", }`, false},
		{"trailing comma in skipped object", `{"x":{"a":1,}}`, false},
		{"trailing comma in skipped array", `{"x":[1, ]}`, false},
		{"leading comma", `{,"id":"c1"}`, false},
		{"lone comma in array", `{"choices":[,]}`, false},
		{"missing comma", `{"id":"c1" "model":"m"}`, false},
		{"missing colon", `{"id" "c1"}`, false},
		{"unclosed", `{"choices":[{"index":0}`, false},
		{"deep nesting", `{"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, false},
		{"duplicate choices", `{"choices":[],"choices":[]}`, false},
		{"key folding to choices by Unicode", `{"choiceſ":[{"index":0,"delta":{"content":"x"}}]}`, false},
		{"key folding to usage by Unicode", `{"choices":[],"uſage":{"prompt_tokens":1}}`, false},
		{"unknown non-ASCII key", `{"é":1,"choices":[]}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c chatChunkIn
			got := scanChunk([]byte(tt.in), &c, nil, nil)
			if got != tt.accept {
				t.Fatalf("scanChunk accepted = %v, want %v", got, tt.accept)
			}
			if got {
				want, err := slowChunk([]byte(tt.in))
				if err != nil {
					t.Fatalf("fast path accepted what encoding/json rejects: %v", err)
				}
				if diff := cmp.Diff(want, c, equateEmpty); diff != "" {
					t.Errorf("fast path differs from encoding/json (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// FuzzScanChunk checks the fast path against encoding/json: whatever it
// accepts, encoding/json must accept and decode identically.
func FuzzScanChunk(f *testing.F) {
	files, _ := filepath.Glob("testdata/examples/*/*.sse")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				f.Add([]byte(line))
			}
		}
	}
	f.Add([]byte(`{"choices":[{"delta":{"content":"\ud83d\ude00\ud800"}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var c chatChunkIn
		if !scanChunk(data, &c, nil, nil) {
			return
		}
		want, err := slowChunk(data)
		if err != nil {
			t.Fatalf("fast path accepted %q, which encoding/json rejects: %v", data, err)
		}
		if diff := cmp.Diff(want, c, equateEmpty); diff != "" {
			t.Fatalf("fast path differs on %q (-want +got):\n%s", data, diff)
		}
	})
}

// FuzzScanChunkMemo checks the memo that skips a chunk's repeated part: a
// chunk read after another must read exactly as it reads alone.
func FuzzScanChunkMemo(f *testing.F) {
	files, _ := filepath.Glob("testdata/examples/*/*.sse")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		var prev []byte
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				f.Add(prev, []byte(line))
				prev = []byte(line)
			}
		}
	}
	f.Add([]byte(`{"id":"a","created":1,"choices":[]}`), []byte(`{"id":"a","created":12,"choices":[]}`))
	f.Add([]byte(`{"id":"a","usage":null,"choices":[]}`), []byte(`{"id":"a","usage":null,"choices":[]}`))
	f.Fuzz(func(t *testing.T, prev, data []byte) {
		// With an arena too, as a stream's decoder reads: the strings read
		// from prev must survive reading data into the same arena.
		var m chunkMemo
		var mem arena
		var first, firstAlone chatChunkIn
		firstOK := scanChunk(prev, &first, &m, &mem)
		scanChunk(prev, &firstAlone, nil, nil)
		var got, want chatChunkIn
		gotOK, wantOK := scanChunk(data, &got, &m, &mem), scanChunk(data, &want, nil, nil)
		if gotOK != wantOK {
			t.Fatalf("after %q, %q read %v with the memo and %v without", prev, data, gotOK, wantOK)
		}
		if diff := cmp.Diff(want, got, equateEmpty); gotOK && diff != "" {
			t.Fatalf("after %q, %q reads differently with the memo (-without +with):\n%s", prev, data, diff)
		}
		if diff := cmp.Diff(firstAlone, first, equateEmpty); firstOK && diff != "" {
			t.Fatalf("%q's strings changed when %q was read into the arena (-want +got):\n%s", prev, data, diff)
		}
	})
}

// TestArenaStrings reads a long stream through one decoder: every text
// read must stay what it was while later chunks fill the arena, and the
// texts must cost far less than an allocation each.
func TestArenaStrings(t *testing.T) {
	var chunks [][]byte
	var want []string
	for i := range 600 {
		text := fmt.Sprintf("tok%d \"é\" ", i)
		if i%97 == 0 {
			text = strings.Repeat("long ", arenaBlock/16) // longer than the arena takes
		}
		b, _ := json.Marshal(text)
		chunks = append(chunks, fmt.Appendf(nil, `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":%s},"finish_reason":null}]}`, b))
		want = append(want, text)
	}
	var d ChatChunkDecoder
	var got []string
	for _, c := range chunks {
		ev, err := d.Decode(c)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev.Text)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("texts changed as the arena filled (-want +got):\n%s", diff)
	}
	i := 0
	allocs := testing.AllocsPerRun(len(chunks)-1, func() {
		i++
		if _, err := d.Decode(chunks[1+i%(len(chunks)-1)]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0.2 {
		t.Errorf("%.2f allocations per chunk, want the arena's share of one", allocs)
	}
}

// TestPlainRun puts each kind of byte that ends a plain run at every
// position of a string, so that the eight-at-a-time path is checked at
// every offset within and across words.
func TestPlainRun(t *testing.T) {
	for _, stop := range []byte{'"', '\\', 0x00, 0x1f, 0x80, 0xff} {
		for pos := range 24 {
			b := bytes.Repeat([]byte{'a'}, 24)
			b[pos] = stop
			for from := 0; from <= pos; from++ {
				if got := plainRun(b, from); got != pos {
					t.Errorf("plainRun(%q, %d) = %d, want %d", b, from, got, pos)
				}
			}
		}
	}
	for _, c := range []byte{' ', '!', '#', '[', ']', '~', 0x7f} {
		b := bytes.Repeat([]byte{c}, 19)
		if got := plainRun(b, 0); got != len(b) {
			t.Errorf("plainRun of %q = %d, want %d", b, got, len(b))
		}
	}
}
