package wire

import "github.com/keel-ai/keel/internal/llm"

// APIError is an error as a client API shows it: the HTTP status and the
// fields every API's error body carries in some form.
type APIError struct {
	Status  int
	Message string
	Type    string
	Param   string
	Code    string
}

// openAITypes are the error types OpenAI-format vendors use.
var openAITypes = map[string]bool{
	"invalid_request_error": true, "authentication_error": true, "permission_error": true,
	"not_found_error": true, "rate_limit_error": true, "server_error": true, "api_error": true,
	"insufficient_quota": true, "tokens": true, "requests": true,
}

// OpenAIType returns typ if it is in OpenAI's error vocabulary, else the
// type OpenAI uses for status: another vendor's type (Gemini's
// RESOURCE_EXHAUSTED, say) means nothing to an OpenAI client.
func OpenAIType(typ string, status int) string {
	if openAITypes[typ] {
		return typ
	}
	switch {
	case status == 401:
		return "authentication_error"
	case status == 403:
		return "permission_error"
	case status == 404:
		return "not_found_error"
	case status == 429:
		return "rate_limit_error"
	case status >= 500, status == 0:
		return "server_error"
	}
	return "invalid_request_error"
}

// StreamEncoder writes one answer to a streaming client of one API. It keeps
// the state that spans events (ids, open content blocks, sequence numbers).
type StreamEncoder interface {
	// AppendEvent appends what ev adds to the answer, possibly nothing.
	AppendEvent(dst []byte, ev *llm.Event) []byte
	// AppendDone ends a complete answer, reporting its usage.
	AppendDone(dst []byte, u llm.Usage) []byte
	// AppendError ends a broken answer with an in-band error.
	AppendError(dst []byte, e APIError) []byte
}

// ChatAPI is OpenAI Chat Completions as a client API.
type ChatAPI struct{}

// Name names the API in records.
func (ChatAPI) Name() string { return llm.SourceChat }

// Decode decodes a request body.
func (ChatAPI) Decode(body []byte) (*llm.Request, error) { return DecodeChatRequest(body) }

// Encoder returns the streaming encoder for r.
func (ChatAPI) Encoder(r *llm.Request) StreamEncoder {
	return &ChatEncoder{IncludeUsage: r.IncludeUsage}
}

// AppendAnswer appends a whole answer as the non-streaming response body.
func (ChatAPI) AppendAnswer(dst []byte, a *llm.Answer) []byte { return AppendChatCompletion(dst, a) }

// AppendError appends an error body.
func (ChatAPI) AppendError(dst []byte, e APIError) []byte {
	return AppendChatError(dst, e.Message, OpenAIType(e.Type, e.Status), e.Param, e.Code)
}

// Relay is the wire form of an upstream's answer that can be sent to this
// API's non-streaming clients unchanged.
func (ChatAPI) Relay() llm.Wire { return llm.WireChatCompletion }

// AppendError ends a broken chat stream: OpenAI's error object as a data
// event, and no [DONE].
func (e *ChatEncoder) AppendError(dst []byte, ae APIError) []byte {
	dst = append(dst, "data: "...)
	dst = AppendChatError(dst, ae.Message, OpenAIType(ae.Type, ae.Status), ae.Param, ae.Code)
	return append(dst, "\n\n"...)
}
