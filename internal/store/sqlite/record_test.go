package sqlite

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keel-ai/keel/internal/chat"
)

func TestParseRecord(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	us := at.UnixMicro()
	tests := []struct {
		name   string
		record string
		want   *chat.Request
	}{
		{"Empty", `[]`, &chat.Request{}},
		{
			// A record written before a field was added at the end.
			"Short", `["key_1","chat.completions","gpt-4o",1]`,
			&chat.Request{KeyID: "key_1", API: "chat.completions", Model: "gpt-4o", Stream: true},
		},
		{
			// A record written by a later keel, with fields this one
			// does not know.
			"Long", `["k","a","m",0,"p","s",200,"e",1,2,3,4,[["p","m",` + itoa(us) + `,5,"ok",200,"","first","later"]],"later"]`,
			&chat.Request{KeyID: "k", API: "a", Model: "m", Provider: "p", ServedModel: "s", Status: 200, Error: "e",
				TTFT: time.Microsecond, Duration: 2 * time.Microsecond, InputTokens: 3, OutputTokens: 4,
				Attempts: []chat.Attempt{{Provider: "p", Model: "m", Start: at, Duration: 5 * time.Microsecond,
					Outcome: chat.OutcomeOK, Status: 200, Reason: "first"}}},
		},
		{
			"ShortAttempt", `["","","",0,"","",0,"",0,0,0,0,[["p","m"]]]`,
			&chat.Request{Attempts: []chat.Attempt{{Provider: "p", Model: "m", Start: time.UnixMicro(0).UTC()}}},
		},
		{"Null", `[null,"a"]`, &chat.Request{API: "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got chat.Request
			if err := parseRecord(tt.record, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, &got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("parseRecord(%s) (-want +got):\n%s", tt.record, diff)
			}
		})
	}
}

func TestParseRecordErrors(t *testing.T) {
	for _, record := range []string{
		``,
		`{}`,
		`["k"`,
		`[1]`,                 // key_id is a string
		`["k","a","m","yes"]`, // stream is a number
		`["","","",0,"","",0,"",0,0,0,0,{}]`,
		`["","","",0,"","",0,"",0,0,0,0,[["p","m","now"]]]`,
	} {
		var r chat.Request
		if err := parseRecord(record, &r); err == nil {
			t.Errorf("parseRecord(%q): err = nil, want an error", record)
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	for _, r := range sampleRequests(time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)) {
		b := appendRecord(nil, r)
		if !json.Valid(b) {
			t.Fatalf("record of %s is not JSON: %s", r.ID, b)
		}
		got := chat.Request{ID: r.ID, Time: r.Time, Prompt: r.Prompt, Completion: r.Completion}
		if err := parseRecord(string(b), &got); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(r, &got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("record of %s (-want +got):\n%s", r.ID, diff)
		}
	}
}

// FuzzRecord checks that a record reads back as written, with invalid
// UTF-8 replaced byte by byte, and that it is JSON.
func FuzzRecord(f *testing.F) {
	f.Add("key_1", "gpt-4o", "Rate limit \"reached\"\n", "first", true, 200, int64(1767323045000006), int64(1500), 1234)
	f.Add("", "", "", "", false, 0, int64(0), int64(0), 0)
	f.Add("\x00\xff", "ü\xc3", "\\\t\x1f", "🚀", true, -1, int64(-1), int64(-1<<62), -1<<40)
	f.Fuzz(func(t *testing.T, key, model, errText, reason string, stream bool, status int, start, dur int64, tokens int) {
		r := &chat.Request{
			KeyID: key, API: reason, Model: model, Stream: stream, Provider: errText, ServedModel: model,
			Status: status, Error: errText, TTFT: fromDurMicros(dur), Duration: fromDurMicros(-dur),
			InputTokens: tokens, OutputTokens: -tokens,
			Attempts: []chat.Attempt{
				{Provider: key, Model: model, Start: fromMicros(start), Duration: fromDurMicros(dur),
					Outcome: chat.Outcome(reason), Status: status, Error: errText, Reason: reason},
				{},
			},
		}
		b := appendRecord(nil, r)
		if !json.Valid(b) {
			t.Fatalf("record is not JSON: %q", b)
		}
		var got chat.Request
		if err := parseRecord(string(b), &got); err != nil {
			t.Fatalf("parseRecord(%q): %v", b, err)
		}
		want := *r
		want.KeyID, want.API, want.Model, want.Provider, want.ServedModel, want.Error =
			valid(key), valid(reason), valid(model), valid(errText), valid(model), valid(errText)
		want.Attempts = []chat.Attempt{
			{Provider: valid(key), Model: valid(model), Start: fromMicros(start), Duration: fromDurMicros(dur),
				Outcome: chat.Outcome(valid(reason)), Status: status, Error: valid(errText), Reason: valid(reason)},
			{},
		}
		if diff := cmp.Diff(&want, &got); diff != "" {
			t.Errorf("record %q (-want +got):\n%s", b, diff)
		}
	})
}

// FuzzParseRecord checks that parseRecord survives any column value.
func FuzzParseRecord(f *testing.F) {
	for _, r := range sampleRequests(time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)) {
		f.Add(string(appendRecord(nil, r)))
	}
	f.Add(`[]`)
	f.Add(`["","","",0,"","",0,"",0,0,0,0,[[]]]`)
	f.Fuzz(func(t *testing.T, record string) {
		var r chat.Request
		parseRecord(record, &r)
	})
}

// valid replaces each byte of s that is not part of valid UTF-8 with
// U+FFFD, as appendString does.
func valid(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
