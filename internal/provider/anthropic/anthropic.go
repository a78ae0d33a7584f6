// Package anthropic is the adapter for Anthropic's Messages API
// (../shared/wire/README.md §3).
package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keel-ai/keel/internal/llm"
	"github.com/keel-ai/keel/internal/provider"
	"github.com/keel-ai/keel/internal/sse"
	"github.com/keel-ai/keel/internal/wire"
)

// The defaults of Config.
const (
	DefaultBaseURL = "https://api.anthropic.com/v1"
	DefaultVersion = "2023-06-01"
)

// Config configures one provider.
type Config struct {
	// Name identifies the provider in errors and logs.
	Name string
	// BaseURL is the API root including /v1. If empty, DefaultBaseURL.
	BaseURL string
	// Keys are sent as x-api-key, round robin.
	Keys []string
	// Version is the anthropic-version header. If empty, DefaultVersion.
	Version string
	// Headers are added to every request (anthropic-beta, for one).
	Headers map[string]string
	// HeaderTimeout bounds the wait for response headers; IdleTimeout the
	// silence between body reads. Zero disables each.
	HeaderTimeout time.Duration
	IdleTimeout   time.Duration
	// Log receives malformed-event warnings. If nil, slog.Default().
	Log *slog.Logger
}

// Client is an Anthropic provider. It is safe for concurrent use.
type Client struct {
	cfg      Config
	url      string
	countURL string
	hc       *http.Client
	next     atomic.Uint64 // round-robin key cursor

	// Malformed counts stream events that could not be decoded and were
	// skipped (issue 3: skip, log, count).
	Malformed atomic.Int64
}

var (
	_ llm.Provider  = (*Client)(nil)
	_ llm.Prefiller = (*Client)(nil)
)

// New returns a Client that sends requests through hc.
func New(cfg Config, hc *http.Client) *Client {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	if cfg.Version == "" {
		cfg.Version = DefaultVersion
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	base := strings.TrimSuffix(cfg.BaseURL, "/")
	return &Client{cfg: cfg, url: base + "/messages", countURL: base + "/messages/count_tokens", hc: hc}
}

// Name returns the provider's name.
func (c *Client) Name() string { return c.cfg.Name }

// Prefills reports that Anthropic continues a trailing assistant message
// (llm.Prefiller).
func (c *Client) Prefills() bool { return true }

// post sends body to url, with header as its header deadline. Errors are
// classified *llm.Error values; on success the response body is wrapped by
// the returned deadline, which the caller must stop.
func (c *Client) post(ctx context.Context, url string, body []byte, stream bool, header time.Duration) (*http.Response, context.Context, *provider.Deadline, error) {
	ctx, dl := provider.StartDeadline(ctx, header, c.cfg.IdleTimeout)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		dl.Stop()
		return nil, nil, nil, &llm.Error{Kind: llm.KindInvalid, Provider: c.cfg.Name, Err: err}
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	if stream {
		h.Set("Accept", "text/event-stream")
	} else {
		h.Set("Accept", "application/json")
	}
	h.Set("Anthropic-Version", c.cfg.Version)
	if n := len(c.cfg.Keys); n > 0 {
		h.Set("X-Api-Key", c.cfg.Keys[(c.next.Add(1)-1)%uint64(n)])
	}
	for k, v := range c.cfg.Headers {
		h.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		defer dl.Stop() // after classifying: Stop cancels ctx
		return nil, nil, nil, provider.TransportError(ctx, c.cfg.Name, err)
	}
	resp.Body = dl.Body(resp.Body)
	if resp.StatusCode/100 != 2 {
		defer dl.Stop()
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return nil, nil, nil, c.statusError(resp, b)
	}
	return resp, ctx, dl, nil
}

// readAll reads a whole response body, classifying a failure.
func (c *Client) readAll(ctx context.Context, resp *http.Response) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(resp.Body, provider.MaxBody))
	if err != nil {
		if ctx.Err() != nil {
			return nil, provider.TransportError(ctx, c.cfg.Name, err)
		}
		return nil, &llm.Error{Kind: llm.KindStream, Provider: c.cfg.Name, Message: "the upstream's answer was cut", Err: err}
	}
	return b, nil
}

// Chat sends r and returns its answer as a stream. Errors before the answer
// starts are *llm.Error values.
func (c *Client) Chat(ctx context.Context, r *llm.Request) (llm.Stream, error) {
	body, err := wire.AppendMessagesRequest(nil, r)
	if err != nil {
		return nil, &llm.Error{Kind: llm.KindInvalid, Provider: c.cfg.Name, Err: err}
	}
	var lead string
	if n := len(r.Messages); n > 0 && r.Messages[n-1].Role == llm.RoleAssistant {
		// Anthropic rejects a prefill ending in whitespace, so the encoder
		// cut it; the model then starts with it, and the caller already
		// has it (issue 4: continuing a broken stream on Anthropic).
		lead = wire.MessagesPrefillTrim(r)
	}
	created := time.Now().Unix()
	resp, ctx, dl, err := c.post(ctx, c.url, body, r.Stream, provider.HeaderTimeout(c.cfg.HeaderTimeout, r.Stream))
	if err != nil {
		return nil, err
	}
	if !r.Stream || strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		// A whole answer, or a JSON body where a stream was asked for: a
		// proxy's error sent with a 200.
		defer dl.Stop()
		defer resp.Body.Close()
		b, err := c.readAll(ctx, resp)
		if err != nil {
			return nil, err
		}
		ev, err := wire.DecodeMessagesResponse(b)
		if err != nil {
			return nil, c.streamError(err)
		}
		ev.Created = created
		skipLead(ev, &lead)
		return provider.Single(ev), nil
	}
	return &stream{c: c, ctx: ctx, dl: dl, body: resp.Body, sse: sse.NewReader(resp.Body, 0), lead: lead,
		dec: wire.MessagesStreamDecoder{Created: created}}, nil
}

// skipLead drops from the start of ev's text what is left of lead, the
// whitespace cut from the prefill, for as long as the text matches it.
func skipLead(ev *llm.Event, lead *string) {
	if *lead == "" {
		return
	}
	if len(ev.ToolCalls) > 0 {
		*lead = ""
		return
	}
	if ev.Text == "" {
		return
	}
	n := 0
	for n < len(ev.Text) && n < len(*lead) && ev.Text[n] == (*lead)[n] {
		n++
	}
	ev.Text = ev.Text[n:]
	if ev.Text != "" || n == len(*lead) {
		*lead = ""
	} else {
		*lead = (*lead)[n:]
	}
}

var _ llm.TokenCounter = (*Client)(nil)

// CountTokens asks Anthropic how many input tokens r's prompt takes
// (POST /v1/messages/count_tokens).
func (c *Client) CountTokens(ctx context.Context, r *llm.Request) (int, error) {
	body, err := wire.AppendMessagesCountRequest(nil, r)
	if err != nil {
		return 0, &llm.Error{Kind: llm.KindInvalid, Provider: c.cfg.Name, Err: err}
	}
	resp, ctx, dl, err := c.post(ctx, c.countURL, body, false, c.cfg.HeaderTimeout)
	if err != nil {
		return 0, err
	}
	defer dl.Stop()
	defer resp.Body.Close()
	b, err := c.readAll(ctx, resp)
	if err != nil {
		return 0, err
	}
	var out struct {
		Type        string `json:"type"`
		InputTokens *int   `json:"input_tokens"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.InputTokens == nil {
		if out.Type == "error" {
			return 0, c.streamError(wire.ParseAnthropicError(b))
		}
		return 0, &llm.Error{Kind: llm.KindStream, Provider: c.cfg.Name, Message: "the upstream sent an undecodable token count", Err: err}
	}
	return *out.InputTokens, nil
}

// stream reads an upstream's SSE answer.
type stream struct {
	c    *Client
	ctx  context.Context
	dl   *provider.Deadline
	body io.ReadCloser
	sse  *sse.Reader
	dec  wire.MessagesStreamDecoder
	lead string // see skipLead
	// finished is set once a stop reason arrived: a body that then ends
	// without message_stop is complete (issue 3 #11), one that ends before
	// it is cut.
	finished bool
	err      error
}

func (s *stream) Recv() (*llm.Event, error) {
	if s.err != nil {
		return nil, s.err
	}
	for {
		e, err := s.sse.Next()
		if err != nil {
			return nil, s.fail(err)
		}
		if len(e.Data) == 0 {
			continue
		}
		ev, err := s.dec.Decode(e.Name, e.Data)
		switch {
		case err == io.EOF:
			s.finished = true // message_stop
			return nil, s.fail(io.EOF)
		case err != nil:
			var body *wire.ErrorBody
			if errors.As(err, &body) {
				return nil, s.fail(s.c.streamError(body))
			}
			// An event that is not JSON is skipped: nothing garbled may
			// reach the client, and the rest of the answer still can.
			s.c.Malformed.Add(1)
			s.c.cfg.Log.Warn("skipped malformed upstream event", "provider", s.c.cfg.Name, "event", string(e.Name), "bytes", len(e.Data), "err", err)
			continue
		case ev == nil:
			continue // ping, block boundaries
		}
		if ev.Finish != "" {
			s.finished = true
		}
		if s.lead != "" && ev.Text != "" {
			skipLead(ev, &s.lead)
			if ev.Text == "" && ev.Reasoning == "" && ev.Finish == "" && ev.Usage == nil {
				continue // nothing but the whitespace the client has
			}
		}
		return ev, nil
	}
}

// fail ends the stream with err, translated into what the consumer must
// know: io.EOF only for a complete answer.
func (s *stream) fail(err error) error {
	s.err = provider.StreamError(s.ctx, s.c.cfg.Name, s.finished, err)
	s.Close()
	return s.err
}

func (s *stream) Close() error {
	s.dl.Stop()
	return s.body.Close()
}

// statusError classifies a non-2xx response.
func (c *Client) statusError(resp *http.Response, body []byte) *llm.Error {
	e := c.classify(resp.StatusCode, wire.ParseAnthropicError(body))
	e.RetryAfter = provider.RetryAfter(resp.Header, time.Now())
	return e
}

// streamError classifies an error that arrived inside a 2xx body: an
// in-band error event, or an error body sent with a 200.
func (c *Client) streamError(err error) *llm.Error {
	var eb *wire.ErrorBody
	if !errors.As(err, &eb) {
		return &llm.Error{Kind: llm.KindStream, Provider: c.cfg.Name, Message: "the upstream sent an undecodable answer", Err: err}
	}
	e := c.classify(0, eb)
	switch e.Kind {
	case llm.KindUnknown, llm.KindInvalid, llm.KindServer:
		e.Kind = llm.KindStream
	}
	return e
}

// classify maps a status and error body to an llm.Error: the one place this
// adapter decides what Anthropic's errors mean (README §3, §10). The error
// type refines the status, so that an in-band error event, which has none,
// is classified too: overloaded_error is the vendor overloaded (529, or
// mid-stream), not a broken stream.
func (c *Client) classify(status int, eb *wire.ErrorBody) *llm.Error {
	e := &llm.Error{
		Kind: provider.StatusKind(status), Status: status, Provider: c.cfg.Name,
		Type: eb.Type, Code: eb.Code, Param: eb.Param, Message: eb.Message,
	}
	msg := strings.ToLower(eb.Message)
	switch {
	case strings.Contains(msg, "prompt is too long"), strings.Contains(msg, "exceed context limit"),
		strings.Contains(msg, "context window"):
		e.Kind = llm.KindContextLength
	case strings.Contains(msg, "content filtering policy"):
		e.Kind = llm.KindContentFilter
	case eb.Type == "billing_error", strings.Contains(msg, "credit balance is too low"):
		e.Kind = llm.KindQuota
	case eb.Type == "overloaded_error":
		e.Kind = llm.KindOverloaded
	case eb.Type == "rate_limit_error":
		e.Kind = llm.KindRateLimit
	case eb.Type == "authentication_error", eb.Type == "permission_error":
		e.Kind = llm.KindAuth
	case eb.Type == "not_found_error" && status != 0:
		e.Kind = llm.KindNotFound
	}
	switch {
	case e.Message != "":
	case status == 0:
		e.Message = "the upstream reported an error"
	default:
		e.Message = fmt.Sprintf("upstream returned status %d", status)
	}
	return e
}
