// Package providertest holds the scaffolding the vendor adapters' tests
// share: a fake upstream that records what it was sent, handlers that
// serve recorded fixtures or misbehave in set ways, fake transports for
// tests under testing/synctest, and helpers that read a stream to its end.
//
// It is for tests only. It imports nothing of keel's but llm, so that any
// adapter's tests can use it.
package providertest

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keel-ai/keel/internal/llm"
)

// Examples is the directory of the recorded wire examples, kept with the
// wire package. It is relative to a vendor package's directory
// (internal/provider/<vendor>), where go test runs that package's tests.
const Examples = "../../wire/testdata/examples"

// Fixture returns the recorded example at path, relative to Examples. It
// fails t if the file cannot be read.
func Fixture(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Examples, path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Quiet returns a logger that discards everything.
func Quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Hi returns a request to model of one user message, "hi".
func Hi(model string, stream bool) *llm.Request {
	return &llm.Request{
		Model:    model,
		Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{llm.TextPart("hi")}}},
		Stream:   stream,
	}
}

// Drain reads s to its end and closes it, returning the answer and the
// final error: io.EOF for a complete answer. It fails t if a second Recv
// after the end returns another error, and stops t if s does not end
// within 10000 events.
func Drain(t testing.TB, s llm.Stream) (llm.Answer, error) {
	t.Helper()
	var a llm.Answer
	for range 10000 {
		ev, err := s.Recv()
		if err != nil {
			if _, again := s.Recv(); again != err {
				t.Errorf("Recv after the end = %v, want the same %v", again, err)
			}
			s.Close()
			return a, err
		}
		a.Add(ev)
	}
	t.Fatal("stream does not end")
	return a, nil
}

// Chat sends r to p under t's context and reads the answer to its end,
// as Drain does. It stops t if p.Chat fails.
func Chat(t testing.TB, p llm.Provider, r *llm.Request) (llm.Answer, error) {
	t.Helper()
	s, err := p.Chat(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	return Drain(t, s)
}

// KindOf returns the Kind of the *llm.Error in err's chain, or 255, which
// is no Kind, if there is none.
func KindOf(err error) llm.Kind {
	var e *llm.Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 255
}

// CheckError stops t unless err's chain holds an *llm.Error, and fails it
// unless that error equals want in every field but Err, the cause.
func CheckError(t testing.TB, err error, want llm.Error) {
	t.Helper()
	var got *llm.Error
	if !errors.As(err, &got) {
		t.Fatalf("err = %T %v, want *llm.Error", err, err)
	}
	if diff := cmp.Diff(&want, got, cmpopts.IgnoreFields(llm.Error{}, "Err")); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
