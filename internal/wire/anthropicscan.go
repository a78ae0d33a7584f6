package wire

// A hand-written reader for the events that make up nearly all of an
// Anthropic stream: content_block_delta with a text, input_json or
// thinking delta, and ping. Like scanChunk it is strict: any other shape,
// key or invalid JSON makes it decline, and the event goes through
// encoding/json (9 allocations per event; this path makes one, the text).
// FuzzScanMessagesEvent checks that whenever it accepts, encoding/json
// decodes the same.

// scanMessagesEvent fills in, which must be zero but for the unset usage,
// from data and reports whether it could.
func scanMessagesEvent(data []byte, in *messagesEventIn) bool {
	s := chunkScanner{b: data}
	s.ws()
	if !s.eat('{') {
		return false
	}
	for first := true; ; first = false {
		s.ws()
		if s.eat('}') {
			if !first && s.b[s.i-2] == ',' {
				return false
			}
			break
		}
		if !first && !s.eat(',') {
			return false
		}
		key, ok := s.key()
		if !ok {
			return false
		}
		switch string(key) {
		case "type":
			in.Type, ok = s.constant("content_block_delta", "ping")
		case "index":
			var n int64
			n, ok = s.int()
			in.Index = int(n)
		case "delta":
			ok = s.messagesDelta(in)
		default:
			return false
		}
		if !ok {
			return false
		}
	}
	s.ws()
	return s.i == len(s.b) && (in.Type == "content_block_delta" || in.Type == "ping")
}

func (s *chunkScanner) messagesDelta(in *messagesEventIn) bool {
	s.ws()
	if !s.eat('{') {
		return false
	}
	d := &in.Delta
	for first := true; ; first = false {
		s.ws()
		if s.eat('}') {
			return first || s.b[s.i-2] != ','
		}
		if !first && !s.eat(',') {
			return false
		}
		key, ok := s.key()
		if !ok {
			return false
		}
		switch string(key) {
		case "type":
			d.Type, ok = s.constant("text_delta", "input_json_delta", "thinking_delta")
		case "text":
			ok = s.string(&d.Text)
		case "partial_json":
			ok = s.string(&d.PartialJSON)
		case "thinking":
			ok = s.string(&d.Thinking)
		default:
			return false
		}
		if !ok {
			return false
		}
	}
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
