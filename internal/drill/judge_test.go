package drill

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const want = "Amber river stone."

// content is a chat.completion.chunk carrying text.
func content(text string) string {
	b, _ := json.Marshal(map[string]any{
		"object":  "chat.completion.chunk",
		"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"content": text}, "finish_reason": nil}},
	})
	return string(b)
}

const (
	role      = `{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`
	stop      = `{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`
	usage     = `{"object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":3}}`
	errEvent  = `{"error":{"message":"the answer broke off mid-stream","type":"server_error","code":"upstream_error"}}`
	doneEvent = `[DONE]`
)

// sseBody is a stream of data events.
func sseBody(data ...string) string {
	var b strings.Builder
	for _, d := range data {
		b.WriteString("data: " + d + "\n\n")
	}
	return b.String()
}

// judged is what a test checks of a judged reply.
type judged struct {
	Verdict Verdict
	Text    string
	Clean   bool
	ErrKind string
	Garbled bool
}

func judgedOf(r Reply) judged {
	return judged{Judge(r, want), r.Text, r.Clean, r.ErrKind, r.Garbled != ""}
}

// streamCases are synthetic streams of each verdict; the fuzz test seeds
// from them.
var streamCases = []struct {
	name string
	body string
	want judged
}{
	{"complete", sseBody(role, content("Amber "), content("river "), content("stone."), stop, doneEvent),
		judged{Verdict: Complete, Text: want, Clean: true}},
	{"complete with usage", sseBody(role, content("Amber river stone."), stop, usage, doneEvent),
		judged{Verdict: Complete, Text: want, Clean: true}},
	{"a split word is fine", sseBody(content("Amber ri"), content("ver stone."), stop, doneEvent),
		judged{Verdict: Complete, Text: want, Clean: true}},
	{"truncated success", sseBody(role, content("Amber "), content("river "), stop, doneEvent),
		judged{Verdict: Truncated, Text: "Amber river ", Clean: true}},
	{"empty success", sseBody(role, stop, doneEvent),
		judged{Verdict: Truncated, Clean: true}},
	{"duplicated at a seam", sseBody(content("Amber "), content("river "), content("river "), content("stone."), stop, doneEvent),
		judged{Verdict: BrokenSeam, Text: "Amber river river stone.", Clean: true}},
	{"missing at a seam", sseBody(content("Amber "), content("stone."), stop, doneEvent),
		judged{Verdict: BrokenSeam, Text: "Amber stone.", Clean: true}},
	{"restarted from the top", sseBody(content("Amber river "), content("Amber river stone."), stop, doneEvent),
		judged{Verdict: BrokenSeam, Text: "Amber river Amber river stone.", Clean: true}},
	{"wrong text, then an error", sseBody(content("Amber "), content("rivver "), errEvent),
		judged{Verdict: BrokenSeam, Text: "Amber rivver ", ErrKind: "in-band upstream_error"}},
	{"in-band error", sseBody(role, content("Amber "), errEvent),
		judged{Verdict: Errored, Text: "Amber ", ErrKind: "in-band upstream_error"}},
	{"error, then [DONE]", sseBody(content("Amber "), errEvent, doneEvent),
		judged{Verdict: Errored, Text: "Amber ", ErrKind: "in-band upstream_error"}},
	{"cut between events", sseBody(role, content("Amber ")),
		judged{Verdict: Errored, Text: "Amber ", ErrKind: "no [DONE]"}},
	{"cut mid-event", sseBody(content("Amber ")) + `data: {"choi`,
		judged{Verdict: Errored, Text: "Amber ", ErrKind: "transport"}},
	{"whole text, no [DONE]", sseBody(content(want), stop),
		judged{Verdict: Errored, Text: want, ErrKind: "no [DONE]"}},
	{"garbage chunk", sseBody(content("Amber "), `{"choices":[{"delta":{"content":"riv`, content("river stone."), stop, doneEvent),
		judged{Verdict: BrokenSeam, Text: want, Clean: true, Garbled: true}},
	{"data after [DONE]", sseBody(content(want), stop, doneEvent, content(" again")),
		judged{Verdict: BrokenSeam, Text: want, Clean: true, Garbled: true}},
}

func TestReadStream(t *testing.T) {
	for _, tt := range streamCases {
		t.Run(tt.name, func(t *testing.T) {
			firsts := 0
			r := ReadStream(strings.NewReader(tt.body), func() { firsts++ })
			if diff := cmp.Diff(tt.want, judgedOf(r)); diff != "" {
				t.Errorf("judged (-want +got):\n%s", diff)
			}
			if wantFirsts := min(len(r.Text), 1); firsts != wantFirsts {
				t.Errorf("first-token callback ran %d times, want %d", firsts, wantFirsts)
			}
		})
	}
}

func TestReadWhole(t *testing.T) {
	completion := func(text string) string {
		b, _ := json.Marshal(map[string]any{
			"object":  "chat.completion",
			"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": text}, "finish_reason": "stop"}},
		})
		return string(b)
	}
	for _, tt := range []struct {
		name   string
		status int
		body   string
		want   judged
	}{
		{"complete", 200, completion(want), judged{Verdict: Complete, Text: want, Clean: true}},
		{"truncated success", 200, completion("Amber river "), judged{Verdict: Truncated, Text: "Amber river ", Clean: true}},
		{"empty success", 200, completion(""), judged{Verdict: Truncated, Clean: true}},
		{"broken seam", 200, completion("Amber river river stone."), judged{Verdict: BrokenSeam, Text: "Amber river river stone.", Clean: true}},
		{"upstream status", 502, `{"error":{"message":"the answer broke off","type":"server_error","code":null}}`,
			judged{Verdict: Errored, ErrKind: "502 server_error"}},
		{"rate limited", 429, `{"error":{"message":"slow down","type":"rate_limit_error","code":"rate_limit_exceeded"}}`,
			judged{Verdict: Errored, ErrKind: "429 rate_limit_exceeded"}},
		{"status without a JSON body", 504, "gateway timeout", judged{Verdict: Errored, ErrKind: "504"}},
		{"undecodable 200", 200, `{"choices":[`, judged{Verdict: Errored, ErrKind: "bad body"}},
		{"200 without content", 200, `{"choices":[]}`, judged{Verdict: Errored, ErrKind: "bad body"}},
		{"error in a 200", 200, `{"error":{"message":"no","type":"server_error"}}`, judged{Verdict: Errored, ErrKind: "200 error server_error"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, judgedOf(ReadWhole(tt.status, []byte(tt.body)))); diff != "" {
				t.Errorf("judged (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJudge(t *testing.T) {
	for _, tt := range []struct {
		name  string
		reply Reply
		want  Verdict
	}{
		{"complete", Reply{Status: 200, Text: want, Clean: true}, Complete},
		{"truncated", Reply{Status: 200, Text: "Amber ", Clean: true}, Truncated},
		{"transport error", transportReply(errTest, false), Errored},
		{"client timeout", transportReply(errTest, true), Errored},
		{"explicit error after a prefix", Reply{Status: 200, Text: "Amber river ", Err: "broke off"}, Errored},
		{"wrong text outranks a clean end", Reply{Status: 200, Text: "Amber stone.", Clean: true}, BrokenSeam},
		{"garbage outranks a complete text", Reply{Status: 200, Text: want, Clean: true, Garbled: "x"}, BrokenSeam},
		{"longer than the answer", Reply{Status: 200, Text: want + " more", Clean: true}, BrokenSeam},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Judge(tt.reply, want); got != tt.want {
				t.Errorf("Judge = %v, want %v", got, tt.want)
			}
		})
	}
}

type testError string

func (e testError) Error() string { return string(e) }

const errTest = testError("connection reset by peer")

// TestWant checks that prompts are distinct and their answers are the
// simulator's: a long answer ending in ".", no earlier ".".
func TestWant(t *testing.T) {
	a, b := Want(Prompt("", 1), 24), Want(Prompt("", 2), 24)
	if a == b {
		t.Errorf("requests 1 and 2 have the same answer %q", a)
	}
	if strings.Count(a, ".") != 1 || !strings.HasSuffix(a, ".") {
		t.Errorf("answer %q: want exactly one '.', at the end", a)
	}
	if got := tagRE.FindString(Prompt("warmup", 17)); got != tagOf(17) {
		t.Errorf("tag of request 17 = %q, want %q", got, tagOf(17))
	}
}

// FuzzReadStream checks that no stream makes the judge call an answer
// complete that is not the whole answer, cleanly ended.
func FuzzReadStream(f *testing.F) {
	for _, tt := range streamCases {
		f.Add(tt.body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := ReadStream(strings.NewReader(body), nil)
		if Judge(r, want) == Complete && (r.Text != want || !r.Clean || r.Garbled != "") {
			t.Errorf("judged complete: %+v", r)
		}
		if r.Clean && r.Err != "" {
			t.Errorf("clean end with an error: %+v", r)
		}
	})
}
