package sim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// msg is a request message for tests.
type msg struct {
	Role    string `json:"role"`
	Content any    `json:"content"`
}

func user(text string) msg      { return msg{"user", text} }
func assistant(text string) msg { return msg{"assistant", text} }

// chatReq builds a request body; extra keys are merged in.
func chatReq(model string, stream bool, msgs []msg, extra map[string]any) map[string]any {
	m := map[string]any{"model": model, "messages": msgs}
	if stream {
		m["stream"] = true
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// post sends body to the chat endpoint; hdr is key, value pairs.
func post(ctx context.Context, t *testing.T, c *http.Client, base string, body any, hdr ...string) (*http.Response, error) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/chat/completions", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return c.Do(req)
}

// mustPost is post that fails the test on a transport error.
func mustPost(t *testing.T, c *http.Client, base string, body any, hdr ...string) *http.Response {
	t.Helper()
	resp, err := post(t.Context(), t, c, base, body, hdr...)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// startServer serves s on a real loopback listener.
func startServer(t *testing.T, s *Server) (*http.Client, string) {
	t.Helper()
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts.Client(), ts.URL
}

// newSim returns a Server with the given profiles and no latency default.
func newSim(profiles map[string]Profile, opts ...Option) *Server {
	return New(Config{Seed: 1, Profiles: profiles}, opts...)
}

// chunk is an OpenAI stream chunk as a client decodes it.
type chunk struct {
	ID                string  `json:"id"`
	Object            string  `json:"object"`
	Created           int64   `json:"created"`
	Model             string  `json:"model"`
	SystemFingerprint string  `json:"system_fingerprint"`
	Choices           []choic `json:"choices"`
	Usage             *usageJ `json:"usage"`
}

type choic struct {
	Index int `json:"index"`
	Delta struct {
		Role      *string    `json:"role"`
		Content   *string    `json:"content"`
		Refusal   *string    `json:"refusal"`
		ToolCalls []toolCall `json:"tool_calls"`
	} `json:"delta"`
	FinishReason *string `json:"finish_reason"`
}

type toolCall struct {
	Index    int    `json:"index"`
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type usageJ struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// stream is a decoded SSE body.
type stream struct {
	Chunks    []chunk
	Raw       []string // every data payload, in order
	Malformed []string // payloads that are not JSON (and not [DONE])
	Done      bool     // data: [DONE] arrived, last
	Err       error    // the read error that ended the body, nil for a clean EOF
	Content   string   // concatenated delta.content
	Args      string   // concatenated tool-call arguments (index 0)
	ToolID    string
	ToolName  string
	Finish    string
	Usage     *usageJ
	Times     []time.Duration // per data event, since the stream was opened
}

// decodeStream reads an OpenAI SSE body strictly: every event is exactly
// one "data: " line followed by a blank line, nothing follows [DONE], the
// first chunk carries the role, chunk ids agree and usage chunks have no
// choices. Framing violations fail the test; a truncated body ends with Err.
func decodeStream(t *testing.T, body io.Reader) stream {
	t.Helper()
	var s stream
	start := time.Now()
	br := bufio.NewReader(body)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if err != io.EOF || line != "" {
				s.Err = err
				if err == io.EOF {
					s.Err = io.ErrUnexpectedEOF // a partial line
				}
			}
			return s
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Errorf("event %d: line %q is not a data line", len(s.Raw), line)
			return s
		}
		data = strings.TrimSuffix(data, "\n")
		blank, err := br.ReadString('\n')
		if err != nil {
			s.Err = err
			if err == io.EOF {
				s.Err = io.ErrUnexpectedEOF
			}
			t.Logf("event %q: no blank line after it (%v)", data, err)
			return s
		}
		if blank != "\n" {
			t.Errorf("event %q: followed by %q, want a blank line", data, blank)
		}
		if s.Done {
			t.Errorf("event %q after [DONE]", data)
		}
		s.Raw = append(s.Raw, data)
		s.Times = append(s.Times, time.Since(start))
		if data == "[DONE]" {
			s.Done = true
			continue
		}
		var c chunk
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			s.Malformed = append(s.Malformed, data)
			continue
		}
		if c.Object != "chat.completion.chunk" {
			t.Errorf("chunk object = %q", c.Object)
		}
		if len(s.Chunks) == 0 {
			if len(c.Choices) != 1 || c.Choices[0].Delta.Role == nil || *c.Choices[0].Delta.Role != "assistant" {
				t.Errorf("first chunk %s: want delta.role assistant", data)
			}
		} else if c.ID != s.Chunks[0].ID {
			t.Errorf("chunk id %q, first chunk had %q", c.ID, s.Chunks[0].ID)
		}
		s.Chunks = append(s.Chunks, c)
		if c.Usage != nil {
			if len(c.Choices) != 0 {
				t.Errorf("usage chunk has choices: %s", data)
			}
			s.Usage = c.Usage
		}
		for _, ch := range c.Choices {
			if ch.Delta.Content != nil {
				s.Content += *ch.Delta.Content
			}
			for _, tc := range ch.Delta.ToolCalls {
				if tc.ID != "" {
					s.ToolID, s.ToolName = tc.ID, tc.Function.Name
				}
				s.Args += tc.Function.Arguments
			}
			if ch.FinishReason != nil {
				s.Finish = *ch.FinishReason
			}
		}
	}
}

// completion is a non-streaming response body.
type completion struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index   int `json:"index"`
		Message struct {
			Role      string          `json:"role"`
			Content   *string         `json:"content"`
			Refusal   json.RawMessage `json:"refusal"`
			ToolCalls []toolCall      `json:"tool_calls"`
		} `json:"message"`
		Logprobs     json.RawMessage `json:"logprobs"`
		FinishReason string          `json:"finish_reason"`
	} `json:"choices"`
	Usage *usageJ `json:"usage"`
}

// apiError is OpenAI's error envelope.
type apiError struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func decodeJSON[T any](t *testing.T, r io.Reader) T {
	t.Helper()
	var v T
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

func join(tokens []string) string { return strings.Join(tokens, "") }

// pipeNet is an in-memory network for tests under testing/synctest, where
// goroutines blocked on real sockets would keep the fake clock from moving.
type pipeNet struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "sim.test" }

func (l *pipeNet) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeNet) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeNet) Addr() net.Addr { return pipeAddr{} }

func (l *pipeNet) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	srv, cli := net.Pipe()
	select {
	case l.conns <- srv:
		return cli, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// startPipeServer serves h with httptest over an in-memory network, for use
// inside synctest.Test. Call stop before the bubble ends.
func startPipeServer(h http.Handler) (c *http.Client, base string, stop func()) {
	l := &pipeNet{conns: make(chan net.Conn), done: make(chan struct{})}
	ts := &httptest.Server{Listener: l, Config: &http.Server{Handler: h}}
	ts.Start()
	tr := &http.Transport{DialContext: l.dial}
	return &http.Client{Transport: tr}, ts.URL, func() {
		tr.CloseIdleConnections()
		ts.Close()
	}
}

// isConnError reports whether err is what a client sees when the server
// drops the connection.
func isConnError(err error) bool {
	var op *net.OpError
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &op)
}
