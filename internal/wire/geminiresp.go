package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keel-ai/keel/internal/llm"
)

// Google Gemini generateContent answers (../shared/wire/README.md §4), the
// upstream direction: GenerateStreamDecoder for streamGenerateContent?alt=sse,
// DecodeGenerateResponse for generateContent, ParseGeminiError for error
// bodies. keel serves no Gemini client API, so there is no encoder.

// GeminiError is a Gemini failure: a google.rpc.Status error body
// ({"error":{code,message,status,details}}), in-band or with an error
// status, or an answer the decoder refuses (a blocked prompt, an unusable
// finish).
type GeminiError struct {
	// Code is the HTTP status the body names; 0 for a refused answer.
	Code int
	// Status is the canonical code: INVALID_ARGUMENT, RESOURCE_EXHAUSTED…
	Status  string
	Message string
	// Reason is the ErrorInfo detail's reason (API_KEY_INVALID), or the
	// blockReason or finishReason that made the decoder refuse an answer.
	Reason string
	// RetryDelay is the RetryInfo detail's retryDelay, or 0.
	RetryDelay time.Duration
	// QuotaIDs are the quotas a QuotaFailure detail names as violated.
	QuotaIDs []string
	// Blocked is set when Gemini refused the prompt itself
	// (promptFeedback.blockReason, no candidates).
	Blocked bool
}

func (e *GeminiError) Error() string {
	s := e.Status
	if s == "" {
		s = e.Reason
	}
	if s == "" {
		return e.Message
	}
	return s + ": " + e.Message
}

type geminiStatus struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status"`
	Details []struct {
		Type       string `json:"@type"`
		Reason     string `json:"reason"`
		RetryDelay string `json:"retryDelay"`
		Violations []struct {
			QuotaID string `json:"quotaId"`
		} `json:"violations"`
	} `json:"details"`
}

// ParseGeminiError reads an error body: google.rpc.Status in its
// {"error":{…}} envelope, also as the first element of an array (how
// streamGenerateContent without alt=sse reports errors). Anything else is
// kept as the message, cut short.
func ParseGeminiError(body []byte) *GeminiError {
	b := bytes.TrimSpace(body)
	if len(b) > 0 && b[0] == '[' {
		var arr []json.RawMessage
		if json.Unmarshal(b, &arr) == nil && len(arr) > 0 {
			b = arr[0]
		}
	}
	var env struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(b, &env) != nil || isNull(env.Error) {
		return &GeminiError{Message: truncate(string(bytes.TrimSpace(body)), 512)}
	}
	return parseGeminiStatus(env.Error)
}

// parseGeminiStatus reads the inside of the error envelope.
func parseGeminiStatus(raw []byte) *GeminiError {
	var st geminiStatus
	if raw[0] == '"' {
		var s string
		_ = json.Unmarshal(raw, &s)
		return &GeminiError{Message: s}
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return &GeminiError{Message: truncate(string(raw), 512)}
	}
	e := &GeminiError{Code: st.Code, Status: st.Status, Message: st.Message}
	for _, d := range st.Details {
		switch {
		case strings.HasSuffix(d.Type, "google.rpc.ErrorInfo"):
			if e.Reason == "" {
				e.Reason = d.Reason
			}
		case strings.HasSuffix(d.Type, "google.rpc.RetryInfo"):
			if w, err := time.ParseDuration(d.RetryDelay); err == nil && w > 0 {
				e.RetryDelay = w
			}
		case strings.HasSuffix(d.Type, "google.rpc.QuotaFailure"):
			for _, v := range d.Violations {
				if v.QuotaID != "" {
					e.QuotaIDs = append(e.QuotaIDs, v.QuotaID)
				}
			}
		}
	}
	return e
}

// GenerateStreamDecoder decodes the SSE data of a streamGenerateContent
// answer, each a GenerateContentResponse fragment, into Events. It keeps
// what spans chunks: the response id and model, and the tool calls so far,
// which Gemini sends unnumbered and without ids. The zero value is ready to
// use; one decoder serves one answer.
//
// Each chunk becomes one Event: text parts are Text, thought parts
// Reasoning, and each functionCall part (Gemini sends a call whole) one
// ToolCallDelta with the next Index, its name, its args as compact JSON
// text, and the id Gemini gave it or, as Gemini usually gives none, a
// made-up one: "call_" and 24 base-62 characters derived from the
// responseId and the Index, so that ids are unique within an answer and
// across answers (random without a responseId). Only the first candidate
// is read: keel never asks for more.
// usageMetadata, repeated with running totals, is the Event's Usage every
// time. There is no end marker: an answer is complete when its body ends
// after a finishReason.
type GenerateStreamDecoder struct {
	// Created is set on every Event: Gemini sends no creation time, so the
	// adapter stamps the time it sent the request. Zero leaves it 0.
	Created int64

	s     jscan
	c     geminiChunk
	ev    llm.Event
	usage llm.Usage
	calls []llm.ToolCallDelta
	// id and model are the last responseId and modelVersion seen.
	id, model string
	// seed derives tool-call ids; set when the response id is first known.
	seed   uint64
	seeded bool
	ncalls int
	text   []byte
	reason []byte
	args   []byte
}

// geminiChunk is what one chunk said, as slices of its data.
type geminiChunk struct {
	candidate   bool // candidate 0 is present
	finish      []byte
	blockReason []byte
	errRaw      []byte
	id, model   []byte
	idEsc       bool
	modelEsc    bool
	usage       bool
	u           struct{ prompt, candidates, cached, thoughts, toolUse int }
}

// Decode returns the event in one chunk's data. The event, its ToolCalls
// and its Usage are valid until the next call.
// An error object in the stream, a blocked prompt and a finish that leaves
// the answer unusable are returned as *GeminiError errors; data that is not
// a GenerateContentResponse is some other error.
func (d *GenerateStreamDecoder) Decode(data []byte) (*llm.Event, error) {
	d.s = jscan{b: data, key: d.s.key[:0]}
	d.c = geminiChunk{}
	d.text, d.reason, d.calls = d.text[:0], d.reason[:0], d.calls[:0]
	err := d.s.object(d.top)
	if err == nil {
		err = d.s.end()
	}
	if err != nil {
		return nil, err
	}
	c := &d.c
	if c.errRaw != nil {
		return nil, parseGeminiStatus(c.errRaw)
	}
	if c.id != nil && !bytesIs(c.id, c.idEsc, d.id) {
		d.id = unq(c.id, c.idEsc)
		d.seeded = false
	}
	if c.model != nil && !bytesIs(c.model, c.modelEsc, d.model) {
		d.model = unq(c.model, c.modelEsc)
	}
	if !c.candidate && c.blockReason != nil {
		reason := unq(c.blockReason, false)
		return nil, &GeminiError{Blocked: true, Reason: reason, Message: "Gemini blocked the prompt (" + reason + ")"}
	}
	ev := &d.ev
	*ev = llm.Event{ID: d.id, Model: d.model, Created: d.Created, ToolCalls: d.calls}
	if len(d.text) > 0 {
		ev.Text = string(d.text)
	}
	if len(d.reason) > 0 {
		ev.Reasoning = string(d.reason)
	}
	for i := range ev.ToolCalls {
		tc := &ev.ToolCalls[i]
		tc.Index = d.ncalls
		if tc.ID == "" {
			tc.ID = d.toolCallID(d.ncalls)
		}
		d.ncalls++
	}
	if c.finish != nil {
		f, err := d.finish(c.finish)
		if err != nil {
			return nil, err
		}
		ev.Finish = f
	}
	if c.usage {
		u := &c.u
		d.usage = llm.Usage{
			Input:     u.prompt + u.toolUse,
			Cached:    u.cached,
			Output:    u.candidates + u.thoughts,
			Reasoning: u.thoughts,
		}
		ev.Usage = &d.usage
	}
	return ev, nil
}

// toolCallID is the id keel gives the n-th (from 0) function call of the
// answer; the same answer replayed gets the same ids.
func (d *GenerateStreamDecoder) toolCallID(n int) string {
	if !d.seeded {
		d.seed, d.seeded = rand.Uint64(), true
		if d.id != "" {
			d.seed = fnv64(d.id)
		}
	}
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	var b [5 + 24]byte
	copy(b[:], "call_")
	h := splitmix(d.seed ^ uint64(n)*0x9E3779B97F4A7C15)
	x := h
	for i := range 24 {
		if i > 0 && i%10 == 0 { // 62^10 < 2^64: re-mix before x runs out
			x = splitmix(h + uint64(i))
		}
		b[5+i] = digits[x%62]
		x /= 62
	}
	return string(b[:])
}

func fnv64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	return h
}

func splitmix(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
	x = (x ^ (x >> 27)) * 0x94D049BB133111EB
	return x ^ (x >> 31)
}

// top reads one key of the GenerateContentResponse.
func (d *GenerateStreamDecoder) top(k []byte) error {
	s, c := &d.s, &d.c
	var err error
	switch string(k) {
	case "candidates":
		// Last one wins, as with encoding/json.
		c.candidate, c.finish = false, nil
		d.text, d.reason, d.calls = d.text[:0], d.reason[:0], d.calls[:0]
		if ok, err := s.null(); ok || err != nil {
			return err
		}
		return s.array(d.candidate)
	case "promptFeedback":
		if ok, err := s.null(); ok || err != nil {
			return err
		}
		c.blockReason = nil
		return s.object(func(k []byte) error {
			if string(k) != "blockReason" {
				return s.skip()
			}
			if ok, err := s.null(); ok || err != nil {
				return err
			}
			raw, esc, err := s.str()
			if esc {
				raw = appendUnquoted(nil, raw)
			}
			c.blockReason = raw
			return err
		})
	case "usageMetadata":
		if ok, err := s.null(); ok || err != nil {
			return err
		}
		c.usage = true
		return s.object(func(k []byte) error {
			u := &c.u
			var err error
			switch string(k) {
			case "promptTokenCount":
				u.prompt, err = s.int()
			case "candidatesTokenCount":
				u.candidates, err = s.int()
			case "cachedContentTokenCount":
				u.cached, err = s.int()
			case "thoughtsTokenCount":
				u.thoughts, err = s.int()
			case "toolUsePromptTokenCount":
				u.toolUse, err = s.int()
			default:
				err = s.skip()
			}
			return err
		})
	case "modelVersion":
		if ok, err := s.null(); ok || err != nil {
			return err
		}
		c.model, c.modelEsc, err = s.str()
	case "responseId":
		if ok, err := s.null(); ok || err != nil {
			return err
		}
		c.id, c.idEsc, err = s.str()
	case "error":
		if ok, err := s.null(); ok || err != nil {
			return err
		}
		c.errRaw, err = s.raw()
	default:
		err = s.skip()
	}
	return err
}

// candidate reads element i of candidates; only the first is kept.
func (d *GenerateStreamDecoder) candidate(i int) error {
	s, c := &d.s, &d.c
	if i > 0 {
		return s.skip()
	}
	if ok, err := s.null(); ok || err != nil {
		return err
	}
	c.candidate = true
	return s.object(func(k []byte) error {
		switch string(k) {
		case "content":
			d.text, d.reason, d.calls = d.text[:0], d.reason[:0], d.calls[:0]
			if ok, err := s.null(); ok || err != nil {
				return err
			}
			return s.object(func(k []byte) error {
				if string(k) != "parts" {
					return s.skip()
				}
				d.text, d.reason, d.calls = d.text[:0], d.reason[:0], d.calls[:0]
				if ok, err := s.null(); ok || err != nil {
					return err
				}
				return s.array(d.part)
			})
		case "finishReason":
			if ok, err := s.null(); ok || err != nil {
				c.finish = nil
				return err
			}
			raw, _, err := s.str()
			c.finish = raw
			return err
		}
		return s.skip()
	})
}

// part reads one content part: text (a thought if thought is true) or a
// functionCall. Other parts (inline data, code execution) are skipped.
func (d *GenerateStreamDecoder) part(int) error {
	s := &d.s
	if ok, err := s.null(); ok || err != nil {
		return err
	}
	var (
		text, name, args, id []byte
		textEsc, nameEsc     bool
		idEsc, thought, call bool
	)
	err := s.object(func(k []byte) error {
		var err error
		switch string(k) {
		case "text":
			text = nil
			if ok, err := s.null(); ok || err != nil {
				return err
			}
			text, textEsc, err = s.str()
		case "thought":
			thought, err = s.boolean()
		case "functionCall":
			call, name, args, id = false, nil, nil, nil
			if ok, err := s.null(); ok || err != nil {
				return err
			}
			call = true
			err = s.object(func(k []byte) error {
				var err error
				switch string(k) {
				case "name":
					name = nil
					if ok, err := s.null(); ok || err != nil {
						return err
					}
					name, nameEsc, err = s.str()
				case "args":
					args = nil
					if ok, err := s.null(); ok || err != nil {
						return err
					}
					args, err = s.raw()
				case "id":
					id = nil
					if ok, err := s.null(); ok || err != nil {
						return err
					}
					id, idEsc, err = s.str()
				default:
					err = s.skip()
				}
				return err
			})
		default:
			err = s.skip()
		}
		return err
	})
	if err != nil {
		return err
	}
	if text != nil {
		if thought {
			d.reason = appendText(d.reason, text, textEsc)
		} else {
			d.text = appendText(d.text, text, textEsc)
		}
	}
	if call {
		a := "{}"
		if len(args) > 0 {
			// Whole answers come indented; clients expect compact text.
			d.args = appendCompact(d.args[:0], args)
			a = string(d.args)
		}
		d.calls = append(d.calls, llm.ToolCallDelta{Name: unq(name, nameEsc), ID: unq(id, idEsc), Arguments: a})
	}
	return nil
}

// finish maps a finishReason (../shared/wire/README.md §8).
func (d *GenerateStreamDecoder) finish(raw []byte) (llm.Finish, error) {
	switch string(raw) {
	case "STOP":
		if d.ncalls > 0 {
			return llm.FinishToolCalls, nil
		}
		return llm.FinishStop, nil
	case "MAX_TOKENS":
		return llm.FinishLength, nil
	case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
		"IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION":
		return llm.FinishContentFilter, nil
	case "MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS":
		// The model meant to call a tool and failed: what it sent is no
		// answer, and another try may well succeed.
		r := unq(raw, false)
		return "", &GeminiError{Reason: r, Message: "Gemini ended the answer with finishReason " + r}
	}
	// LANGUAGE, OTHER, NO_IMAGE, IMAGE_OTHER, FINISH_REASON_UNSPECIFIED and
	// reasons yet to come: the answer ended, for no reason a client can
	// act on.
	if d.ncalls > 0 {
		return llm.FinishToolCalls, nil
	}
	return llm.FinishStop, nil
}

// appendText appends a string body str accepted to dst, decoded.
func appendText(dst, raw []byte, esc bool) []byte {
	if !esc && utf8.Valid(raw) {
		return append(dst, raw...)
	}
	return appendUnquoted(dst, raw)
}

// unq returns a string body as a string.
func unq(raw []byte, esc bool) string {
	if len(raw) == 0 {
		return ""
	}
	if !esc && utf8.Valid(raw) {
		return string(raw)
	}
	return string(appendUnquoted(nil, raw))
}

// bytesIs reports whether the string body raw decodes to s, without
// allocating in the common case.
func bytesIs(raw []byte, esc bool, s string) bool {
	if !esc && utf8.Valid(raw) {
		return string(raw) == s
	}
	return unq(raw, esc) == s
}

// DecodeGenerateResponse decodes a whole generateContent answer into one
// event. It also reads the JSON array streamGenerateContent sends without
// alt=sse. Errors are as GenerateStreamDecoder.Decode's.
func DecodeGenerateResponse(body []byte) (*llm.Event, error) {
	b := bytes.TrimSpace(body)
	if len(b) > 0 && b[0] == '[' {
		return decodeGenerateArray(b)
	}
	d := new(GenerateStreamDecoder)
	ev, err := d.Decode(b)
	if err != nil {
		return nil, decodeErr(err)
	}
	if ev.Finish == "" {
		ev.Finish = d.lastFinish()
	}
	return ev, nil
}

// lastFinish is the finish of a whole answer that names none: it is whole,
// so it stopped.
func (d *GenerateStreamDecoder) lastFinish() llm.Finish {
	if d.ncalls > 0 {
		return llm.FinishToolCalls
	}
	return llm.FinishStop
}

func decodeErr(err error) error {
	var ge *GeminiError
	if errors.As(err, &ge) {
		return err
	}
	return fmt.Errorf("wire: decode gemini response: %w", err)
}

// decodeGenerateArray folds the elements of a streamed answer sent as one
// JSON array into one event.
func decodeGenerateArray(b []byte) (*llm.Event, error) {
	s := jscan{b: b}
	var d GenerateStreamDecoder
	var a llm.Answer
	err := s.array(func(int) error {
		raw, err := s.raw()
		if err != nil {
			return err
		}
		ev, err := d.Decode(raw)
		if err != nil {
			return err
		}
		a.Add(ev)
		return nil
	})
	if err == nil {
		err = s.end()
	}
	if err != nil {
		return nil, decodeErr(err)
	}
	ev := &llm.Event{ID: a.ID, Model: a.Model, Created: a.Created, Text: string(a.Text), Reasoning: string(a.Reasoning), Finish: a.Finish}
	for i, tc := range a.ToolCalls {
		ev.ToolCalls = append(ev.ToolCalls, llm.ToolCallDelta{Index: i, ID: tc.ID, Name: tc.Name, Arguments: tc.Arguments})
	}
	if a.HasUsage {
		ev.Usage = &a.Usage
	}
	if ev.Finish == "" {
		ev.Finish = d.lastFinish()
	}
	return ev, nil
}
