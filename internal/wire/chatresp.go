package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/keel-ai/keel/internal/llm"
)

// OpenAI Chat Completions responses, both directions: ChatChunkDecoder and
// DecodeChatCompletion for upstream answers, ChatEncoder and
// AppendChatCompletion for clients.

type chatUsage struct {
	PromptTokens            int                `json:"prompt_tokens"`
	CompletionTokens        int                `json:"completion_tokens"`
	TotalTokens             int                `json:"total_tokens"`
	PromptTokensDetails     *promptDetails     `json:"prompt_tokens_details,omitempty"`
	CompletionTokensDetails *completionDetails `json:"completion_tokens_details,omitempty"`
}

type promptDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

type completionDetails struct {
	ReasoningTokens int `json:"reasoning_tokens"`
}

func (u *chatUsage) neutral() *llm.Usage {
	if u == nil {
		return nil
	}
	n := &llm.Usage{Input: u.PromptTokens, Output: u.CompletionTokens}
	if d := u.PromptTokensDetails; d != nil {
		n.Cached = d.CachedTokens
	}
	if d := u.CompletionTokensDetails; d != nil {
		n.Reasoning = d.ReasoningTokens
	}
	if n.Reasoning > 0 && u.TotalTokens == u.PromptTokens+u.CompletionTokens+n.Reasoning {
		// xAI leaves reasoning out of completion_tokens but counts it in
		// total_tokens (openai-compatible/stream-reasoning-content-tool-call.sse);
		// llm.Usage.Output includes it, as OpenAI's does.
		n.Output += n.Reasoning
	}
	return n
}

type chatChunkIn struct {
	ID      internedString  `json:"id"`
	Model   internedString  `json:"model"`
	Created int64           `json:"created"`
	Choices []chatChoiceIn  `json:"choices"`
	Usage   *chatUsage      `json:"usage"`
	Error   json.RawMessage `json:"error"`
	// Object is "error" in the flat error Mistral and old vLLM send.
	Object internedString `json:"object"`
}

type chatChoiceIn struct {
	Index int `json:"index"`
	Delta struct {
		Content          string         `json:"content"`
		ReasoningContent string         `json:"reasoning_content"`
		Reasoning        string         `json:"reasoning"`
		ToolCalls        []chatToolCall `json:"tool_calls"`
	} `json:"delta"`
	FinishReason internedString `json:"finish_reason"`
}

// internedString decodes a JSON string that repeats from chunk to chunk (an
// id, a model name) without allocating when it equals the last value
// decoded into it: a stream's chunks repeat them all.
type internedString string

func (s *internedString) UnmarshalJSON(b []byte) error {
	if len(b) >= 2 && b[0] == '"' && bytes.IndexByte(b, '\\') < 0 {
		if string(b[1:len(b)-1]) != string(*s) {
			*s = internedString(b[1 : len(b)-1])
		}
		return nil
	}
	if string(b) == "null" {
		*s = ""
		return nil
	}
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*s = internedString(v)
	return nil
}

// ChatChunkDecoder decodes an upstream's stream of chat.completion.chunk
// objects. It keeps the state that spans chunks: upstreams that number
// tool calls from 1, or not at all, are renumbered from 0. The zero value
// is ready to use; one decoder serves one stream.
type ChatChunkDecoder struct {
	ev    llm.Event
	chunk chatChunkIn
	calls []int // upstream tool-call index of each call, by position
	memo  chunkMemo
	mem   arena
}

// Decode returns the event in one chunk's data. The event is valid until
// the next call. An in-band error object is returned as an *ErrorBody
// error; data that is not a chunk is a *json.SyntaxError or similar.
func (d *ChatChunkDecoder) Decode(data []byte) (*llm.Event, error) {
	// The chunk struct is reused: its interned strings keep the last id and
	// model, and its choices keep their capacity (zeroed, since
	// encoding/json decodes into reused elements without clearing them).
	c := &d.chunk
	d.reset()
	if !scanChunk(data, c, &d.memo, &d.mem) {
		d.reset()
		if err := json.Unmarshal(data, c); err != nil {
			return nil, err
		}
	}
	if !isNull(c.Error) || c.Object == "error" {
		return nil, ParseErrorBody(data)
	}
	ev := &d.ev
	*ev = llm.Event{ID: string(c.ID), Model: string(c.Model), Created: c.Created, Raw: data, Wire: llm.WireChatChunk, ToolCalls: ev.ToolCalls[:0]}
	ev.Usage = c.Usage.neutral()
	for i := range c.Choices {
		ch := &c.Choices[i]
		if ch.Index != 0 {
			continue // n > 1: only the first choice is modelled; raw relay keeps the rest
		}
		ev.Text = ch.Delta.Content
		ev.Reasoning = ch.Delta.ReasoningContent
		if ev.Reasoning == "" {
			ev.Reasoning = ch.Delta.Reasoning
		}
		for _, tc := range ch.Delta.ToolCalls {
			i, renumbered := d.callIndex(tc)
			if renumbered || tc.ID != "" && tc.Type != "function" {
				// A call without its type (Mistral's, Ollama's) breaks
				// clients that dispatch on it, such as openai-go.
				ev.Wire = llm.WireNone
			}
			ev.ToolCalls = append(ev.ToolCalls, llm.ToolCallDelta{Index: i, ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
		}
		if ch.FinishReason != "" {
			f, err := chatFinish(string(ch.FinishReason))
			if err != nil {
				return nil, err
			}
			ev.Finish = f
			if string(f) != string(ch.FinishReason) {
				ev.Wire = llm.WireNone
			}
		}
	}
	if ev.Usage != nil && len(c.Choices) > 0 {
		// Mistral reports usage on the finish chunk. Encoders write usage
		// once, at the end, so this chunk cannot be relayed as it is.
		ev.Wire = llm.WireNone
	}
	if ev.Wire == llm.WireNone {
		ev.Raw = nil
	}
	return ev, nil
}

// reset empties the reused chunk, keeping its interned strings.
func (d *ChatChunkDecoder) reset() {
	c := &d.chunk
	clear(c.Choices[:cap(c.Choices)])
	*c = chatChunkIn{ID: c.ID, Model: c.Model, Object: c.Object, Choices: c.Choices[:0]}
}

// callIndex maps an upstream tool-call fragment to its 0-based position and
// reports whether that differs from what the upstream sent.
func (d *ChatChunkDecoder) callIndex(tc chatToolCall) (int, bool) {
	if tc.Index == nil {
		// Mistral and some local servers send each call whole, unnumbered.
		if tc.ID != "" || len(d.calls) == 0 {
			d.calls = append(d.calls, -1)
		}
		return len(d.calls) - 1, true
	}
	for i, up := range d.calls {
		if up == *tc.Index {
			return i, i != up
		}
	}
	d.calls = append(d.calls, *tc.Index)
	i := len(d.calls) - 1
	return i, i != *tc.Index
}

// chatFinish maps a finish_reason onto llm's; an upstream's "error" finish
// means the answer is broken.
func chatFinish(s string) (llm.Finish, error) {
	switch s {
	case "stop", "eos", "end_turn":
		return llm.FinishStop, nil
	case "length", "model_length":
		return llm.FinishLength, nil
	case "tool_calls", "function_call":
		return llm.FinishToolCalls, nil
	case "content_filter":
		return llm.FinishContentFilter, nil
	case "error":
		return "", &ErrorBody{Message: "the upstream ended the answer with finish_reason \"error\"", Type: "server_error"}
	}
	return llm.FinishStop, nil
}

type chatCompletionIn struct {
	ID      string `json:"id"`
	Model   string `json:"model"`
	Created int64  `json:"created"`
	Choices []struct {
		Index   int `json:"index"`
		Message struct {
			Content          *string        `json:"content"`
			ReasoningContent string         `json:"reasoning_content"`
			Reasoning        string         `json:"reasoning"`
			ToolCalls        []chatToolCall `json:"tool_calls"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage  *chatUsage      `json:"usage"`
	Error  json.RawMessage `json:"error"`
	Object string          `json:"object"`
}

// DecodeChatCompletion decodes a whole non-streamed chat.completion into one
// event, keeping body as its Raw form. An error object sent with a 2xx
// status is returned as an *ErrorBody error.
func DecodeChatCompletion(body []byte) (*llm.Event, error) {
	var c chatCompletionIn
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, fmt.Errorf("wire: decode chat completion: %w", err)
	}
	if !isNull(c.Error) || c.Object == "error" {
		return nil, ParseErrorBody(body)
	}
	if len(c.Choices) == 0 {
		return nil, fmt.Errorf("wire: chat completion has no choices")
	}
	ch := c.Choices[0]
	ev := &llm.Event{ID: c.ID, Model: c.Model, Created: c.Created, Usage: c.Usage.neutral(), Raw: body, Wire: llm.WireChatCompletion}
	relay := true
	if ch.Message.Content != nil {
		ev.Text = *ch.Message.Content
	}
	ev.Reasoning = ch.Message.ReasoningContent
	if ev.Reasoning == "" {
		ev.Reasoning = ch.Message.Reasoning
	}
	for i, tc := range ch.Message.ToolCalls {
		ev.ToolCalls = append(ev.ToolCalls, llm.ToolCallDelta{Index: i, ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
		relay = relay && tc.Type == "function" // Mistral omits it; see ChatChunkDecoder
	}
	f, err := chatFinish(ch.FinishReason)
	if err != nil {
		return nil, err
	}
	ev.Finish = f
	if !relay || string(f) != ch.FinishReason {
		ev.Raw, ev.Wire = nil, llm.WireNone
	}
	return ev, nil
}

// ChatEncoder writes an answer to a streaming Chat Completions client. The
// first event fixes the id, created time and model of every chunk, so that
// the client sees one stream even when keel switches upstreams.
type ChatEncoder struct {
	// IncludeUsage sends the usage chunk the client asked for.
	IncludeUsage bool

	id, model string
	created   int64
	started   bool
}

// AppendEvent appends ev as zero or one SSE chunk. Chunks that carry only
// usage are held back: AppendDone writes the total once.
func (e *ChatEncoder) AppendEvent(dst []byte, ev *llm.Event) []byte {
	if !e.started {
		e.id, e.model, e.created = ev.ID, ev.Model, ev.Created
		if e.id == "" {
			e.id = "chatcmpl-keel"
		}
	}
	if ev.Wire == llm.WireChatChunk && ev.ID == e.id && ev.Usage == nil {
		// Relayed before the empty check below: with n > 1 a chunk of
		// another choice decodes to an empty event but must still go out.
		e.started = true
		return appendData(dst, ev.Raw)
	}
	if ev.Text == "" && ev.Reasoning == "" && len(ev.ToolCalls) == 0 && ev.Finish == "" && (e.started || ev.Usage != nil) {
		return dst
	}
	dst = append(dst, "data: "...)
	dst = e.appendChunkHead(dst)
	dst = append(dst, `[{"index":0,"delta":{`...)
	sep := false
	field := func(name string) {
		if sep {
			dst = append(dst, ',')
		}
		sep = true
		dst = append(dst, '"')
		dst = append(dst, name...)
		dst = append(dst, `":`...)
	}
	if !e.started {
		field("role")
		dst = append(dst, `"assistant"`...)
		if ev.Text == "" && len(ev.ToolCalls) == 0 {
			field("content")
			dst = append(dst, `""`...)
		}
	}
	e.started = true
	if ev.Text != "" {
		field("content")
		dst = appendJSONString(dst, ev.Text)
	}
	if ev.Reasoning != "" {
		field("reasoning_content")
		dst = appendJSONString(dst, ev.Reasoning)
	}
	if len(ev.ToolCalls) > 0 {
		field("tool_calls")
		dst = append(dst, '[')
		for i, tc := range ev.ToolCalls {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"index":`...)
			dst = strconv.AppendInt(dst, int64(tc.Index), 10)
			if tc.ID != "" {
				dst = append(dst, `,"id":`...)
				dst = appendJSONString(dst, tc.ID)
				dst = append(dst, `,"type":"function"`...)
			}
			dst = appendCallFunction(append(dst, ','), tc.Name, tc.Arguments)
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `},"logprobs":null,"finish_reason":`...)
	if ev.Finish != "" {
		dst = appendJSONString(dst, string(ev.Finish))
	} else {
		dst = append(dst, "null"...)
	}
	return append(dst, "}]}\n\n"...)
}

func (e *ChatEncoder) appendChunkHead(dst []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendJSONString(dst, e.id)
	dst = append(dst, `,"object":"chat.completion.chunk","created":`...)
	dst = strconv.AppendInt(dst, e.created, 10)
	dst = append(dst, `,"model":`...)
	dst = appendJSONString(dst, e.model)
	return append(dst, `,"choices":`...)
}

// AppendDone ends a complete stream: the usage chunk if the client asked
// for it, then [DONE].
func (e *ChatEncoder) AppendDone(dst []byte, u llm.Usage) []byte {
	if e.IncludeUsage {
		dst = append(dst, "data: "...)
		dst = e.appendChunkHead(dst)
		dst = append(dst, "[],"...)
		dst = appendChatUsage(dst, u)
		dst = append(dst, "}\n\n"...)
	}
	return append(dst, "data: [DONE]\n\n"...)
}

func appendChatUsage(dst []byte, u llm.Usage) []byte {
	dst = append(dst, `"usage":{"prompt_tokens":`...)
	dst = strconv.AppendInt(dst, int64(u.Input), 10)
	dst = append(dst, `,"completion_tokens":`...)
	dst = strconv.AppendInt(dst, int64(u.Output), 10)
	dst = append(dst, `,"total_tokens":`...)
	dst = strconv.AppendInt(dst, int64(u.Total()), 10)
	dst = append(dst, `,"prompt_tokens_details":{"cached_tokens":`...)
	dst = strconv.AppendInt(dst, int64(u.Cached), 10)
	dst = append(dst, `},"completion_tokens_details":{"reasoning_tokens":`...)
	dst = strconv.AppendInt(dst, int64(u.Reasoning), 10)
	return append(dst, "}}"...)
}

// appendCallFunction appends a tool call's function object, its name left
// out when empty (a later fragment of a streamed call), and closes the call.
func appendCallFunction(dst []byte, name, args string) []byte {
	dst = append(dst, `"function":{`...)
	if name != "" {
		dst = append(dst, `"name":`...)
		dst = appendJSONString(dst, name)
		dst = append(dst, ',')
	}
	dst = append(dst, `"arguments":`...)
	dst = appendJSONString(dst, args)
	return append(dst, "}}"...)
}

func appendData(dst, data []byte) []byte {
	dst = append(dst, "data: "...)
	dst = append(dst, data...)
	return append(dst, "\n\n"...)
}

// AppendChatCompletion appends a whole answer as a chat.completion object.
// It writes the bytes encoding/json wrote from a struct before
// (TestAppendChatCompletion pins them), without reflection: json.Marshal
// was 2 µs of every non-streamed answer.
func AppendChatCompletion(dst []byte, a *llm.Answer) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendJSONString(dst, a.ID)
	dst = append(dst, `,"object":"chat.completion","created":`...)
	dst = strconv.AppendInt(dst, a.Created, 10)
	dst = append(dst, `,"model":`...)
	dst = appendJSONString(dst, a.Model)
	dst = append(dst, `,"choices":[{"index":0,"message":{"role":"assistant","content":`...)
	if len(a.Text) > 0 || len(a.ToolCalls) == 0 {
		dst = appendJSONString(dst, string(a.Text))
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"refusal":null`...)
	if len(a.Reasoning) > 0 {
		dst = append(dst, `,"reasoning_content":`...)
		dst = appendJSONString(dst, string(a.Reasoning))
	}
	for i, tc := range a.ToolCalls {
		if i == 0 {
			dst = append(dst, `,"tool_calls":[`...)
		} else {
			dst = append(dst, ',')
		}
		dst = append(dst, '{')
		if tc.ID != "" {
			dst = append(dst, `"id":`...)
			dst = appendJSONString(dst, tc.ID)
			dst = append(dst, ',')
		}
		dst = appendCallFunction(append(dst, `"type":"function",`...), tc.Name, tc.Arguments)
	}
	if len(a.ToolCalls) > 0 {
		dst = append(dst, ']')
	}
	finish := a.Finish
	if finish == "" {
		finish = llm.FinishStop
	}
	dst = append(dst, `},"logprobs":null,"finish_reason":`...)
	dst = appendJSONString(dst, string(finish))
	dst = append(dst, "}],"...)
	dst = appendChatUsage(dst, a.Usage)
	return append(dst, '}')
}
