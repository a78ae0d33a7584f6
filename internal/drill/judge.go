package drill

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/keel-ai/keel/internal/sse"
)

// Verdict is how one answer measures up against the canonical answer for
// its prompt.
type Verdict uint8

// The verdicts, best first.
const (
	// Complete is the whole canonical answer, byte for byte, ended cleanly.
	Complete Verdict = iota
	// Truncated ended cleanly ([DONE], or a 200 with a whole JSON body) but
	// is only a prefix of the answer: a failure that looks like success,
	// the one thing keel must never serve (STYLE.md, "Streaming and
	// failover").
	Truncated
	// BrokenSeam is text that is not a prefix of the answer: duplicated,
	// missing or garbled text, typically at a continuation seam.
	BrokenSeam
	// Errored is an explicit error: a non-200 status, an in-band error
	// event, or a stream that visibly broke off. Honest, but not complete.
	Errored
)

var verdictNames = [...]string{"complete", "truncated", "broken_seam", "error"}

func (v Verdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return fmt.Sprintf("verdict(%d)", v)
}

// MarshalText makes a Verdict its name in JSON.
func (v Verdict) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText reads a Verdict by name, so that -json reports read back.
func (v *Verdict) UnmarshalText(b []byte) error {
	for i, n := range verdictNames {
		if n == string(b) {
			*v = Verdict(i)
			return nil
		}
	}
	return fmt.Errorf("drill: unknown verdict %q", b)
}

// Reply is what a client got for one request, as the judge needs it.
type Reply struct {
	// Status is the HTTP status, or 0 when no response arrived.
	Status int `json:"status"`
	// Text is the answer text received, in order.
	Text string `json:"text"`
	// Finish is the last finish_reason received.
	Finish string `json:"finish,omitempty"`
	// Clean reports a clean end: a stream's [DONE] with no error event
	// before it, or a 200 whose body is a whole chat completion.
	Clean bool `json:"clean"`
	// Err describes an explicit failure: the error body of a non-200, an
	// in-band error event, or how the transport broke.
	Err string `json:"err,omitempty"`
	// ErrKind groups Err for the report: "502 upstream_error",
	// "in-band timeout", "transport", "no [DONE]".
	ErrKind string `json:"err_kind,omitempty"`
	// Garbled describes the first protocol violation: a chunk that is not
	// JSON, or data after [DONE]. Garbage that reaches a client is as bad
	// as a broken seam.
	Garbled string `json:"garbled,omitempty"`
}

// Judge classifies r against want, the canonical answer. Wrong text
// outranks everything: text that is not a prefix of the answer is a broken
// seam even when an error followed it.
func Judge(r Reply, want string) Verdict {
	switch {
	case r.Garbled != "" || !strings.HasPrefix(want, r.Text):
		return BrokenSeam
	case !r.Clean:
		return Errored
	case r.Text == want:
		return Complete
	}
	return Truncated
}

// apiError is OpenAI's error object.
type apiError struct {
	Message string `json:"message"`
	Type    string `json:"type"`
	Code    any    `json:"code"` // a string, a number or null, by vendor
}

func (e *apiError) kind() string {
	if c, ok := e.Code.(string); ok && c != "" {
		return c
	}
	if e.Type != "" {
		return e.Type
	}
	return "unknown"
}

// chunk is the part of a chat completion (chunk) the judge reads.
type chunk struct {
	Choices []struct {
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
		Message *struct {
			Content *string `json:"content"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Error *apiError `json:"error"`
}

var done = []byte("[DONE]")

// ReadStream reads a 200 streaming response body to its end and returns
// what the client got. first, if not nil, is called when the first
// non-empty text arrives (time to first token).
func ReadStream(body io.Reader, first func()) Reply {
	r := Reply{Status: 200}
	var text strings.Builder
	rd := sse.NewReader(body, 0)
	ended := false // [DONE] or an error event arrived
	for {
		ev, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if !ended {
				r.Err, r.ErrKind = "the stream broke: "+err.Error(), "transport"
			}
			break
		}
		if bytes.Equal(ev.Data, done) && !ended {
			ended, r.Clean = true, true
			continue
		}
		if ended {
			// A [DONE] after an error event is odd but honest; anything
			// else after the end is data no client reads.
			if r.Garbled == "" && !(r.Err != "" && bytes.Equal(ev.Data, done)) {
				r.Garbled = fmt.Sprintf("data after the end of the stream: %.80q", ev.Data)
			}
			continue
		}
		var c chunk
		if err := json.Unmarshal(ev.Data, &c); err != nil {
			if r.Garbled == "" {
				r.Garbled = fmt.Sprintf("undecodable chunk %.80q", ev.Data)
			}
			continue
		}
		if c.Error != nil {
			// keel ends a broken stream with an error event and no [DONE].
			r.Err, r.ErrKind = c.Error.Message, "in-band "+c.Error.kind()
			ended = true
			continue
		}
		for _, ch := range c.Choices {
			if ch.Delta.Content != "" {
				if text.Len() == 0 && first != nil {
					first()
				}
				text.WriteString(ch.Delta.Content)
			}
			if ch.FinishReason != "" {
				r.Finish = ch.FinishReason
			}
		}
	}
	if !ended && r.Err == "" {
		r.Err, r.ErrKind = "the stream ended without [DONE] or an error event", "no [DONE]"
	}
	r.Text = text.String()
	return r
}

// ReadWhole returns what the client got from a non-streaming response (or
// from any non-200 response): its status and body.
func ReadWhole(status int, body []byte) Reply {
	r := Reply{Status: status}
	var c chunk
	err := json.Unmarshal(body, &c)
	if status != 200 {
		r.Err, r.ErrKind = fmt.Sprintf("status %d: %.200s", status, body), fmt.Sprint(status)
		if err == nil && c.Error != nil {
			r.Err = fmt.Sprintf("status %d: %s", status, c.Error.Message)
			r.ErrKind += " " + c.Error.kind()
		}
		return r
	}
	switch {
	case err != nil:
		r.Err, r.ErrKind = "undecodable 200 body: "+err.Error(), "bad body"
		return r
	case c.Error != nil:
		r.Err, r.ErrKind = c.Error.Message, "200 error "+c.Error.kind()
		return r
	case len(c.Choices) == 0 || c.Choices[0].Message == nil || c.Choices[0].Message.Content == nil:
		r.Err, r.ErrKind = "a 200 body without choices[0].message.content", "bad body"
		return r
	}
	r.Text = *c.Choices[0].Message.Content
	r.Finish = c.Choices[0].FinishReason
	r.Clean = true
	return r
}

// transportReply is what a client got when the request failed below HTTP;
// timedOut reports that the client's own deadline ended it.
func transportReply(err error, timedOut bool) Reply {
	kind := "transport"
	if timedOut {
		kind = "client timeout"
	}
	return Reply{Err: err.Error(), ErrKind: kind}
}
