// Package llm is keel's provider-neutral model of one chat turn: the Request
// a client asked for, the Events a model streams back, and the Error an
// upstream failed with. Client APIs (httpapi) decode into it and vendor
// adapters (provider/*) translate out of it, so no pair of formats ever needs
// its own translator.
//
// The package imports nothing of keel's.
package llm

import (
	"context"
	"encoding/json"
)

// Provider is one upstream vendor endpoint. Chat sends r and returns the
// answer as a Stream; it returns an error (an *Error where the adapter could
// classify it) when no answer started, for example a refused connection or a
// non-2xx status. Implementations are safe for concurrent use.
type Provider interface {
	Name() string
	Chat(ctx context.Context, r *Request) (Stream, error)
}

// Prefiller is implemented by providers that can continue a partial
// assistant message (Request.Continue). Providers without it are asked to
// start the answer over instead.
type Prefiller interface {
	Prefills() bool
}

// Stream is a pull-based sequence of Events. Recv returns io.EOF after the
// last event of a complete answer; any other error means the answer is not
// complete. The returned Event is valid until the next call to Recv. Close
// releases the upstream connection and may be called at any time, more than
// once. A Stream is used by one goroutine at a time.
type Stream interface {
	Recv() (*Event, error)
	Close() error
}

// Buffered is implemented by streams that can tell whether their next event
// has already arrived. The API layer flushes to the client only when it has
// not: events that arrived together leave together, and none is held back.
type Buffered interface {
	Buffered() bool
}

// Role is who wrote a message.
type Role string

// The roles. Developer is folded into System by decoders.
const (
	RoleSystem    Role = "system"
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
	RoleTool      Role = "tool"
)

// Request is one chat turn, as the client asked for it. Optional sampling
// fields are pointers: nil means "not set, use the model's default".
type Request struct {
	// Model is the name the client asked for. The router replaces it with the
	// upstream model name on the copy it sends to each target.
	Model    string
	Messages []Message

	Tools             []Tool
	ToolChoice        *ToolChoice
	ParallelToolCalls *bool
	ResponseFormat    *ResponseFormat

	Temperature *float64
	TopP        *float64
	Stop        []string
	Seed        *int64
	// MaxTokens is the output limit, whichever of max_tokens or
	// max_completion_tokens the client used; adapters pick the field the
	// upstream accepts.
	MaxTokens *int
	User      string

	Stream       bool
	IncludeUsage bool

	// Continue marks the final assistant message as a partial answer that
	// the model must continue, not answer (an assistant prefill). keel sets
	// it to continue a broken stream on another target.
	Continue bool

	// Extra holds the top-level fields keel does not model, verbatim, so that
	// they pass through unchanged to upstreams of the client's own format
	// (Source). Nil when there are none.
	Extra map[string]json.RawMessage
	// Source names the client API the request came in by: SourceChat,
	// SourceMessages or SourceResponses. Adapters apply Extra only to an
	// upstream of the same format.
	Source string
}

// The client APIs a Request can come from.
const (
	SourceChat      = "openai.chat"
	SourceResponses = "openai.responses"
	SourceMessages  = "anthropic.messages"
)

// Feature is something a request may need of a target.
type Feature uint8

// The features a target may lack.
const (
	FeatureTools Feature = iota
	FeatureImages
	FeatureJSONSchema
	FeatureJSONObject
	// FeatureEmbeddings is serving embeddings (an Embedder that lacks it
	// for some models or dialects says so through Capable).
	FeatureEmbeddings
)

func (f Feature) String() string {
	return [...]string{"tools", "images", "json_schema", "json_object", "embeddings"}[f]
}

// ParseFeature returns the Feature named s.
func ParseFeature(s string) (Feature, bool) {
	for f := FeatureTools; f <= FeatureEmbeddings; f++ {
		if f.String() == s {
			return f, true
		}
	}
	return 0, false
}

// Needs returns the features r uses.
func (r *Request) Needs() []Feature {
	var fs []Feature
	if len(r.Tools) > 0 {
		fs = append(fs, FeatureTools)
	}
	if r.ResponseFormat != nil {
		switch r.ResponseFormat.Type {
		case FormatJSONSchema:
			fs = append(fs, FeatureJSONSchema)
		case FormatJSONObject:
			fs = append(fs, FeatureJSONObject)
		}
	}
	for i := range r.Messages {
		for _, p := range r.Messages[i].Content {
			if p.Type == PartImage {
				return append(fs, FeatureImages)
			}
		}
	}
	return fs
}

// Capable is implemented by providers that lack some features; the router
// skips them for requests that need one. Providers without it are taken to
// support everything.
type Capable interface {
	Supports(model string, f Feature) bool
}

// Clone returns a copy of r that may be modified without touching r. Slices
// that adapters only read (messages, tools) are shared.
func (r *Request) Clone() *Request {
	c := *r
	return &c
}

// Message is one turn of the conversation.
type Message struct {
	Role    Role
	Content []Part
	// ToolCalls are the calls an assistant message made.
	ToolCalls []ToolCall
	// ToolCallID names the call a tool message answers.
	ToolCallID string
	// Name is the optional participant name (or tool name on tool messages).
	Name string
	// Reasoning is the model's visible reasoning on an assistant message,
	// when an upstream returned one.
	Reasoning string
}

// Text returns the concatenation of m's text parts.
func (m *Message) Text() string {
	if len(m.Content) == 1 {
		return m.Content[0].Text
	}
	var n int
	for _, p := range m.Content {
		n += len(p.Text)
	}
	b := make([]byte, 0, n)
	for _, p := range m.Content {
		b = append(b, p.Text...)
	}
	return string(b)
}

// PartType tells what a content Part holds.
type PartType string

// The part types.
const (
	PartText  PartType = "text"
	PartImage PartType = "image"
)

// Part is one piece of message content.
type Part struct {
	Type PartType
	Text string
	// URL is an image's http(s) or data: URL.
	URL string
	// Detail is the image detail hint ("low", "high", "auto"), if any.
	Detail string
}

// TextPart returns a text Part.
func TextPart(s string) Part { return Part{Type: PartText, Text: s} }

// Tool is a function the model may call.
type Tool struct {
	Name        string
	Description string
	// Parameters is the JSON Schema of the arguments, verbatim.
	Parameters json.RawMessage
	Strict     *bool
}

// ToolChoiceMode is how the model must use tools.
type ToolChoiceMode string

// The tool choice modes.
const (
	ToolAuto     ToolChoiceMode = "auto"
	ToolNone     ToolChoiceMode = "none"
	ToolRequired ToolChoiceMode = "required"
	// ToolFunction forces the tool named in ToolChoice.Name.
	ToolFunction ToolChoiceMode = "function"
)

// ToolChoice constrains tool use.
type ToolChoice struct {
	Mode ToolChoiceMode
	Name string
}

// ToolCall is one complete function call.
type ToolCall struct {
	ID   string
	Name string
	// Arguments is the JSON text of the arguments.
	Arguments string
}

// ResponseFormatType is the output format the client asked for.
type ResponseFormatType string

// The response formats.
const (
	FormatText       ResponseFormatType = "text"
	FormatJSONObject ResponseFormatType = "json_object"
	FormatJSONSchema ResponseFormatType = "json_schema"
)

// ResponseFormat asks for structured output.
type ResponseFormat struct {
	Type ResponseFormatType
	// Name, Description, Schema and Strict describe a json_schema format.
	Name        string
	Description string
	Schema      json.RawMessage
	Strict      *bool
}

// Finish is why a model stopped.
type Finish string

// The finish reasons, named after OpenAI's; adapters map theirs onto these.
const (
	FinishStop          Finish = "stop"
	FinishLength        Finish = "length"
	FinishToolCalls     Finish = "tool_calls"
	FinishContentFilter Finish = "content_filter"
)

// Usage counts tokens. Input includes cached tokens (read and written);
// Output includes reasoning tokens.
type Usage struct {
	Input  int
	Output int
	// Cached is the part of Input read from the vendor's prompt cache.
	Cached int
	// CacheWrite is the part of Input written to the prompt cache
	// (Anthropic's cache_creation_input_tokens).
	CacheWrite int
	Reasoning  int
}

// Total returns Input+Output.
func (u Usage) Total() int { return u.Input + u.Output }

// EmbedRequest asks for embeddings of each input.
type EmbedRequest struct {
	Model string
	Input []string
	// Dimensions, if set, asks for shorter vectors where the model can.
	Dimensions *int
	User       string
}

// Embeddings is the answer to an EmbedRequest: one vector per input, in
// order.
type Embeddings struct {
	Model   string
	Vectors [][]float32
	Usage   Usage
}

// TokenCounter is implemented by providers that count a request's input
// tokens themselves (Anthropic's count_tokens).
type TokenCounter interface {
	CountTokens(ctx context.Context, r *Request) (int, error)
}

// EstimateTokens approximates a request's input tokens where no upstream
// can count them: a token per 4 bytes of text (rounded up), plus 4 per
// message for the chat framing, plus the tool schemas counted the same
// way, plus 1,000 per image. Real tokenizers differ by vendor and
// language; expect ±20 % on English prose.
func EstimateTokens(r *Request) int {
	n := 0
	text := func(s string) { n += (len(s) + 3) / 4 }
	for i := range r.Messages {
		m := &r.Messages[i]
		n += 4
		for _, p := range m.Content {
			if p.Type == PartImage {
				n += 1000
			}
			text(p.Text)
		}
		for _, c := range m.ToolCalls {
			text(c.Name)
			text(c.Arguments)
		}
	}
	for _, t := range r.Tools {
		text(t.Name)
		text(t.Description)
		text(string(t.Parameters))
	}
	return n
}

// Embedder is implemented by providers that serve embeddings.
type Embedder interface {
	Embed(ctx context.Context, r *EmbedRequest) (*Embeddings, error)
}
