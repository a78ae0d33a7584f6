package wire

// A hand-written reader for the events that make up nearly all of an
// Anthropic stream: content_block_delta with a text, input_json or
// thinking delta, and ping. Like scanChunk it is strict: any other shape,
// key or invalid JSON makes it decline, and the event goes through
// encoding/json (9 allocations per event; this path makes none, its text
// carved from the decoder's arena).
// FuzzScanMessagesEvent checks that whenever it accepts, encoding/json
// decodes the same.

// scanMessagesEvent fills in, which must be zero but for the unset usage,
// from data and reports whether it could. With an arena, the strings it
// reads are carved from it.
func scanMessagesEvent(data []byte, in *messagesEventIn, mem *arena) bool {
	s := chunkScanner{b: data, mem: mem}
	ok := s.object(func(key []byte, _ bool) bool {
		switch string(key) {
		case "type":
			var ok bool
			in.Type, ok = s.constant("content_block_delta", "ping")
			return ok
		case "index":
			n, ok := s.int()
			in.Index = int(n)
			return ok
		case "delta":
			return s.messagesDelta(in)
		}
		return false // any other key, escaped ones among them
	})
	s.ws()
	return ok && s.i == len(s.b) && (in.Type == "content_block_delta" || in.Type == "ping")
}

func (s *chunkScanner) messagesDelta(in *messagesEventIn) bool {
	d := &in.Delta
	return s.object(func(key []byte, _ bool) bool {
		switch string(key) {
		case "type":
			var ok bool
			d.Type, ok = s.constant("text_delta", "input_json_delta", "thinking_delta")
			return ok
		case "text":
			return s.string(&d.Text)
		case "partial_json":
			return s.string(&d.PartialJSON)
		case "thinking":
			return s.string(&d.Thinking)
		}
		return false
	})
}

// constant reads a string that must be one of names, returning the name
// itself so that decoding it does not allocate.
func (s *chunkScanner) constant(names ...string) (string, bool) {
	raw, esc, ok := s.str()
	if !ok || esc {
		return "", false
	}
	for _, n := range names {
		if string(raw) == n {
			return n, true
		}
	}
	return "", false
}
