package sqlite

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/keel-ai/keel/internal/chat"
	"github.com/keel-ai/keel/internal/jsontext"
)

// The record column of request_log holds a request's fields other than
// ID, Time, Prompt and Completion as a JSON array (migrations/0005):
//
//	[key_id, api, model, stream, provider, served_model, status, error,
//	 ttft_us, duration_us, input_tokens, output_tokens,
//	 [[provider, model, start, duration_us, outcome, status, error, reason], ...]]
//
// stream is 0 or 1; times are unix microseconds and durations microseconds,
// as in the other tables. An array, not an object: the keys doubled the
// bytes per row, and every byte is paid again in B-tree pages, the WAL and
// the checkpoint (in an experiment with BenchmarkRecordRequests's records,
// 5.4 µs per request with keys against 4.3 µs without).

// Positions in the record array.
const (
	recKeyID = iota
	recAPI
	recModel
	recStream
	recProvider
	recServedModel
	recStatus
	recError
	recTTFT
	recDuration
	recInputTokens
	recOutputTokens
	recAttempts
)

// Positions in an attempt's array.
const (
	attProvider = iota
	attModel
	attStart
	attDuration
	attOutcome
	attStatus
	attError
	attReason
)

// appendRecord appends r's record column to b.
func appendRecord(b []byte, r *chat.Request) []byte {
	b = append(b, '[')
	b = appendString(b, r.KeyID)
	b = append(b, ',')
	b = appendString(b, r.API)
	b = append(b, ',')
	b = appendString(b, r.Model)
	if r.Stream {
		b = append(b, ",1,"...)
	} else {
		b = append(b, ",0,"...)
	}
	b = appendString(b, r.Provider)
	b = append(b, ',')
	b = appendString(b, r.ServedModel)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(r.Status), 10)
	b = append(b, ',')
	b = appendString(b, r.Error)
	b = append(b, ',')
	b = strconv.AppendInt(b, durMicros(r.TTFT), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, durMicros(r.Duration), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(r.InputTokens), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(r.OutputTokens), 10)
	b = append(b, ",["...)
	for i, a := range r.Attempts {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = appendString(b, a.Provider)
		b = append(b, ',')
		b = appendString(b, a.Model)
		b = append(b, ',')
		b = strconv.AppendInt(b, micros(a.Start), 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, durMicros(a.Duration), 10)
		b = append(b, ',')
		b = appendString(b, string(a.Outcome))
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(a.Status), 10)
		b = append(b, ',')
		b = appendString(b, a.Error)
		b = append(b, ',')
		b = appendString(b, a.Reason)
		b = append(b, ']')
	}
	return append(b, "]]"...)
}

// appendString appends s as a JSON string, as SQLite's json functions
// write it (no HTML escapes). Invalid UTF-8 becomes U+FFFD: JSON text
// cannot carry it.
func appendString(b []byte, s string) []byte { return jsontext.AppendString(b, s, false) }

// parseRecord sets r's fields from its record column. A missing trailing
// element leaves its field zero and an extra one is ignored, so a field
// can be added at the end of the array without rewriting rows.
func parseRecord(record string, r *chat.Request) error {
	var (
		stream         int
		ttft, duration int64
		attempts       []attempt
	)
	// encoding/json decodes an element into what the pointer at its
	// position points to.
	f := []any{
		recKeyID: &r.KeyID, recAPI: &r.API, recModel: &r.Model, recStream: &stream,
		recProvider: &r.Provider, recServedModel: &r.ServedModel, recStatus: &r.Status, recError: &r.Error,
		recTTFT: &ttft, recDuration: &duration, recInputTokens: &r.InputTokens, recOutputTokens: &r.OutputTokens,
		recAttempts: &attempts,
	}
	if err := json.Unmarshal([]byte(record), &f); err != nil {
		return fmt.Errorf("record: %w", err)
	}
	r.Stream = stream != 0
	r.TTFT = fromDurMicros(ttft)
	r.Duration = fromDurMicros(duration)
	if len(attempts) > 0 {
		r.Attempts = make([]chat.Attempt, len(attempts))
		for i, a := range attempts {
			r.Attempts[i] = chat.Attempt(a)
		}
	}
	return nil
}

// attempt is a chat.Attempt as an element of a record's attempts.
type attempt chat.Attempt

func (a *attempt) UnmarshalJSON(b []byte) error {
	var (
		start, duration int64
		outcome         string
	)
	f := []any{
		attProvider: &a.Provider, attModel: &a.Model, attStart: &start, attDuration: &duration,
		attOutcome: &outcome, attStatus: &a.Status, attError: &a.Error, attReason: &a.Reason,
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	a.Start = fromMicros(start)
	a.Duration = fromDurMicros(duration)
	a.Outcome = chat.Outcome(outcome)
	return nil
}
