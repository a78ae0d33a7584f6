package sim

import (
	"encoding/json"
	"strings"
)

// request is a chat request as the scenario engine sees it. Each wire
// format decodes into it; nothing here is vendor-specific.
type request struct {
	messages   []message
	tools      []tool
	toolChoice toolChoice
	format     format
	// maxTokens caps the reply; zero means no cap.
	maxTokens    int
	stream       bool
	includeUsage bool
}

type role uint8

const (
	roleOther role = iota // system, developer, user
	roleAssistant
	roleTool
)

type message struct {
	role role
	text string
}

type tool struct {
	name   string
	params json.RawMessage
}

// toolChoice is "auto"/"required" (zero value), "none", or one named tool.
type toolChoice struct {
	none bool
	name string
}

type formatKind uint8

const (
	formatText formatKind = iota
	formatJSONObject
	formatJSONSchema
)

type format struct {
	kind   formatKind
	schema json.RawMessage
}

// reply is what the model says, split into the pieces that are streamed
// one per chunk (and counted as completion tokens).
type reply struct {
	// tool is set when the reply is a tool call; pieces are then fragments
	// of its JSON arguments.
	tool         bool
	toolName     string
	toolID       string
	pieces       []string
	promptTokens int
	// finish is "stop", "length" or "tool_calls".
	finish string
	// attempt identifies the attempt (seed, model, number), for response
	// ids that are deterministic but differ between attempts.
	attempt uint64
}

// compose decides the reply to req under profile p:
//
//   - the last message is a tool result: a text answer;
//   - the request has tools and tool_choice is not "none" (and the last
//     message is not an assistant prefill): one call to the named tool, or
//     the first tool;
//   - otherwise text, or JSON for response_format json_object/json_schema.
//
// Text and JSON replies continue an assistant prefill (see continuation).
// The reply never depends on the model name.
func compose(req *request, p *Profile) reply {
	var rep reply
	n := p.Tokens
	if n <= 0 {
		n = DefaultTokens
	}
	msgs := req.messages
	prefill, isPrefill := "", false
	if len(msgs) > 0 && msgs[len(msgs)-1].role == roleAssistant {
		prefill, isPrefill = msgs[len(msgs)-1].text, true
		msgs = msgs[:len(msgs)-1]
	}
	all := newDigester()
	for i, m := range req.messages {
		if i > 0 {
			all.brk()
		}
		all.write(m.text)
	}
	rep.promptTokens = all.words
	h := all.h
	if isPrefill {
		d := newDigester()
		for i, m := range msgs {
			if i > 0 {
				d.brk()
			}
			d.write(m.text)
		}
		h = d.h
	}

	last := roleOther
	if len(req.messages) > 0 {
		last = req.messages[len(req.messages)-1].role
	}
	if len(req.tools) > 0 && !req.toolChoice.none && last == roleOther {
		t := req.tools[0]
		for _, c := range req.tools {
			if c.name == req.toolChoice.name {
				t = c
				break
			}
		}
		th := hashString(h, t.name)
		rep.tool = true
		rep.toolName = t.name
		rep.toolID = idString("call_", th)
		rep.pieces = fragments(nil, string(instance(t.params, th)))
		rep.finish = "tool_calls"
		return limit(rep, req.maxTokens)
	}

	rep.pieces = content(req.format, h, n)
	if isPrefill && !p.Restart {
		if rest, ok := continuation(rep.pieces, prefill); ok {
			rep.pieces = rest
		} else {
			// Not our answer: treat the prefill as an ordinary turn.
			rep.pieces = content(req.format, all.h, n)
		}
	}
	rep.finish = "stop"
	return limit(rep, req.maxTokens)
}

// content is the canonical n-token answer for digest h in format f.
func content(f format, h uint64, n int) []string {
	switch f.kind {
	case formatJSONObject:
		pieces := make([]string, 0, n+2)
		pieces = append(pieces, `{"answer": "`)
		for i := range n {
			pieces = append(pieces, answerToken(h, i, n))
		}
		return append(pieces, `"}`)
	case formatJSONSchema:
		return fragments(nil, string(instance(f.schema, h)))
	}
	pieces := make([]string, n)
	for i := range pieces {
		pieces[i] = answerToken(h, i, n)
	}
	return pieces
}

// continuation returns what is left of the answer pieces after prefill, or
// false if prefill is not a prefix of the answer. A prefill that ends inside
// a piece continues with the rest of that piece.
func continuation(pieces []string, prefill string) ([]string, bool) {
	for i, p := range pieces {
		if prefill == "" {
			return pieces[i:], true
		}
		if len(prefill) < len(p) {
			if !strings.HasPrefix(p, prefill) {
				return nil, false
			}
			pieces[i] = p[len(prefill):]
			return pieces[i:], true
		}
		if prefill[:len(p)] != p {
			return nil, false
		}
		prefill = prefill[len(p):]
	}
	return nil, prefill == ""
}

// limit applies max_tokens.
func limit(rep reply, max int) reply {
	if max > 0 && len(rep.pieces) > max {
		rep.pieces = rep.pieces[:max]
		rep.finish = "length"
	}
	return rep
}

// idString returns prefix followed by 24 base-62 characters derived from h.
func idString(prefix string, h uint64) string {
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	var b [64]byte
	n := copy(b[:], prefix)
	x := mix(h)
	for i := range 24 {
		if i > 0 && i%10 == 0 { // 62^10 < 2^64: re-mix before x runs out
			x = mix(h + uint64(i))
		}
		b[n] = digits[x%62]
		x /= 62
		n++
	}
	return string(b[:n])
}
