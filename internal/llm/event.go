package llm

// Event is one step of a streamed answer. Several fields may be set at once:
// an OpenAI chunk can carry text and the finish reason together. A
// non-streamed answer arrives as a single Event holding all of it.
type Event struct {
	// ID, Model and Created describe the upstream response. Adapters set
	// them on every event (at least on the first); Model is the model that
	// actually answered.
	ID      string
	Model   string
	Created int64

	Text      string
	Reasoning string
	ToolCalls []ToolCallDelta
	// Finish is set once, on the event that ends the answer.
	Finish Finish
	// Usage is set on the event that reports it, usually the last.
	Usage *Usage

	// Raw is the upstream's own encoding of this event, in the wire format
	// Wire names. An encoder for the same format may write Raw unchanged
	// instead of re-encoding the fields above (issue 2: relay without
	// re-encoding). Anything that changes the event must clear Raw.
	Raw  []byte
	Wire Wire
}

// Wire names the encoding of Event.Raw.
type Wire uint8

// The wire encodings.
const (
	WireNone Wire = iota
	// WireChatChunk is an OpenAI chat.completion.chunk JSON object.
	WireChatChunk
	// WireChatCompletion is a whole OpenAI chat.completion JSON object.
	WireChatCompletion
)

// ToolCallDelta is a fragment of a streamed tool call. The first fragment
// for an Index carries ID and Name; later ones carry pieces of Arguments to
// append. A whole call may also arrive in one fragment.
type ToolCallDelta struct {
	Index     int
	ID        string
	Name      string
	Arguments string
}
