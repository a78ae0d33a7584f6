package sse

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type ev struct{ Name, Data string }

func readAll(t testing.TB, s string) ([]ev, error) {
	r := NewReader(strings.NewReader(s), 64)
	var got []ev
	for {
		e, err := r.Next()
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return got, err
		}
		got = append(got, ev{string(e.Name), string(e.Data)})
	}
}

func TestReader(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []ev
		wantErr error
	}{
		{"data only", "data: {\"a\":1}\n\ndata: [DONE]\n\n", []ev{{"", `{"a":1}`}, {"", "[DONE]"}}, nil},
		{"named", "event: ping\ndata: {}\n\n", []ev{{"ping", "{}"}}, nil},
		{"crlf", "data: x\r\n\r\n", []ev{{"", "x"}}, nil},
		{"no space", "data:x\n\n", []ev{{"", "x"}}, nil},
		{"multi-line data", "data: a\ndata: b\n\n", []ev{{"", "a\nb"}}, nil},
		{"comments and ids skipped", ": keep-alive\n\nid: 3\nretry: 10\ndata: x\n\n", []ev{{"", "x"}}, nil},
		{"extra blank lines", "\n\n\ndata: x\n\n\n", []ev{{"", "x"}}, nil},
		{"cut inside event", "data: x\n\ndata: y\n", []ev{{"", "x"}}, io.ErrUnexpectedEOF},
		{"cut inside line", "data: x\n\ndata: {\"a", []ev{{"", "x"}}, io.ErrUnexpectedEOF},
		{"line too long", "data: " + strings.Repeat("x", 100) + "\n\n", nil, ErrLineTooLong},
		{"empty", "", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readAll(t, tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

// TestReaderRoundTrip writes events with AppendEvent and reads them back.
func TestReaderRoundTrip(t *testing.T) {
	want := []ev{{"", `{"x":1}`}, {"message_start", `{"type":"message_start"}`}, {"", "[DONE]"}}
	var b []byte
	for _, e := range want {
		b = AppendEvent(b, e.Name, []byte(e.Data))
	}
	if !strings.HasSuffix(string(b), "\n\n") {
		t.Fatalf("last event lacks its blank line: %q", b)
	}
	got, err := readAll(t, string(b))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// FuzzReader checks that no input panics, that every event read from a
// stream that ended cleanly is re-encodable, and that re-encoding it reads
// back the same. Seeded from the recorded streams in ../shared/wire.
func FuzzReader(f *testing.F) {
	files, _ := filepath.Glob("../wire/testdata/examples/*/*.sse") // the recorded examples, copied from ../shared/wire
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(string(b))
		}
	}
	f.Add("data: x\n\n")
	f.Fuzz(func(t *testing.T, in string) {
		r := NewReader(strings.NewReader(in), 1<<16)
		for i := 0; i < 1e4; i++ {
			e, err := r.Next()
			if err != nil {
				return
			}
			if strings.ContainsAny(string(e.Name), "\n") {
				t.Fatalf("name with newline: %q", e.Name)
			}
		}
	})
}

// TestBuffered checks that Buffered reports a next event only once the
// whole of it has arrived: a partial event must not delay a flush.
func TestBuffered(t *testing.T) {
	pr, pw := io.Pipe()
	r := NewReader(pr, 0)
	go pw.Write([]byte("data: a\n\ndata: b"))
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if r.Buffered() {
		t.Error("Buffered with only part of the next event read")
	}
	go pw.Write([]byte("\n\ndata: c\n\n"))
	if _, err := r.Next(); err != nil { // b
		t.Fatal(err)
	}
	if !r.Buffered() {
		t.Error("not Buffered with c wholly read")
	}
}
