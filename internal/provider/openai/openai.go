// Package openai is the adapter for every OpenAI-compatible Chat
// Completions API: OpenAI, Azure OpenAI, Mistral, Groq, DeepSeek, Together,
// OpenRouter, and local Ollama, vLLM, llama.cpp and LM Studio servers, each
// a Dialect. Those that serve embeddings are also llm.Embedders (embed.go).
package openai

import (
	"bytes"
	"context"
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

// Config configures one provider.
type Config struct {
	// Name identifies the provider in errors and logs.
	Name    string
	Dialect Dialect
	// BaseURL is the API root including /v1. If empty, the dialect's.
	// For Azure it is the resource, https://{resource}.openai.azure.com.
	BaseURL string
	// APIVersion is Azure OpenAI's api-version. If empty,
	// DefaultAPIVersion; "v1" selects Azure's v1 API. Other dialects
	// ignore it.
	APIVersion string
	// Keys are used round robin. Empty for servers that need none.
	Keys []string
	// Headers are added to every request.
	Headers map[string]string
	// HeaderTimeout bounds the wait for response headers; IdleTimeout the
	// silence between body reads. Zero disables each.
	HeaderTimeout time.Duration
	IdleTimeout   time.Duration
	// Unsupported lists features the provider's models lack (from the
	// config); the router skips the provider for requests that need one.
	Unsupported []llm.Feature
	// Log receives malformed-chunk warnings. If nil, slog.Default().
	Log *slog.Logger
}

// Client is an OpenAI-compatible provider. It is safe for concurrent use.
type Client struct {
	cfg  Config
	base string // BaseURL without a trailing slash
	hc   *http.Client
	next atomic.Uint64 // round-robin key cursor

	// Malformed counts stream chunks that could not be decoded and were
	// skipped (issue 3: skip, log, count).
	Malformed atomic.Int64
}

var _ llm.Provider = (*Client)(nil)

// New returns a Client that sends requests through hc.
func New(cfg Config, hc *http.Client) *Client {
	if cfg.BaseURL == "" {
		cfg.BaseURL = cfg.Dialect.BaseURL
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Client{cfg: cfg, base: strings.TrimSuffix(cfg.BaseURL, "/"), hc: hc}
}

// Name returns the provider's name.
func (c *Client) Name() string { return c.cfg.Name }

// Prefills reports whether the dialect continues a partial assistant
// message (llm.Prefiller).
func (c *Client) Prefills() bool { return c.cfg.Dialect.Wire.Prefill != "" }

var _ llm.Prefiller = (*Client)(nil)

// Chat sends r and returns its answer as a stream. Errors before the answer
// starts are *llm.Error values.
func (c *Client) Chat(ctx context.Context, r *llm.Request) (llm.Stream, error) {
	body, err := wire.AppendChatRequest(nil, r, c.cfg.Dialect.Wire)
	if err != nil {
		return nil, &llm.Error{Kind: llm.KindInvalid, Provider: c.cfg.Name, Err: err}
	}
	ctx, dl := provider.StartDeadline(ctx, provider.HeaderTimeout(c.cfg.HeaderTimeout, r.Stream), c.cfg.IdleTimeout)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url(r.Model, "chat/completions"), bytes.NewReader(body))
	if err != nil {
		dl.Stop()
		return nil, &llm.Error{Kind: llm.KindInvalid, Provider: c.cfg.Name, Err: err}
	}
	accept := "application/json"
	if r.Stream {
		accept = "text/event-stream"
	}
	c.header(req.Header, accept)
	resp, err := c.hc.Do(req)
	if err != nil {
		defer dl.Stop() // after classifying: Stop cancels ctx
		return nil, provider.TransportError(ctx, c.cfg.Name, err)
	}
	resp.Body = dl.Body(resp.Body)
	if resp.StatusCode/100 != 2 {
		defer dl.Stop()
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return nil, c.statusError(resp, b)
	}
	if !r.Stream || strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		// A whole answer, or a JSON body where a stream was asked for:
		// some servers answer errors that way with a 200.
		defer dl.Stop()
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, provider.MaxBody))
		if err != nil {
			if ctx.Err() != nil {
				return nil, provider.TransportError(ctx, c.cfg.Name, err)
			}
			return nil, &llm.Error{Kind: llm.KindStream, Provider: c.cfg.Name, Message: "the upstream's answer was cut", Err: err}
		}
		ev, err := wire.DecodeChatCompletion(b)
		if err != nil {
			return nil, c.streamError(err)
		}
		return provider.Single(ev), nil
	}
	return &stream{c: c, ctx: ctx, dl: dl, body: resp.Body, sse: sse.NewReader(resp.Body, 0)}, nil
}

// url is the address of operation op ("chat/completions", "embeddings")
// for model.
func (c *Client) url(model, op string) string {
	if c.cfg.Dialect.Deployments {
		return c.deploymentURL(model, op)
	}
	return c.base + "/" + op
}

// header sets what every upstream request carries: the content type,
// accept, the next key in the dialect's key header, and Config.Headers.
func (c *Client) header(h http.Header, accept string) {
	h.Set("Content-Type", "application/json")
	h.Set("Accept", accept)
	if n := len(c.cfg.Keys); n > 0 {
		key := c.cfg.Keys[(c.next.Add(1)-1)%uint64(n)]
		if k := c.cfg.Dialect.KeyHeader; k != "" {
			h.Set(k, key)
		} else {
			h.Set("Authorization", "Bearer "+key)
		}
	}
	for k, v := range c.cfg.Headers {
		h.Set(k, v)
	}
}

// stream reads an upstream's SSE answer.
type stream struct {
	c    *Client
	ctx  context.Context
	dl   *provider.Deadline
	body io.ReadCloser
	sse  *sse.Reader
	dec  wire.ChatChunkDecoder
	// finished is set once a finish_reason arrived: a body that then ends
	// without [DONE] is complete (issue 3 #11), one that ends before it is
	// cut.
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
		if bytes.Equal(e.Data, doneMarker) {
			return nil, s.fail(io.EOF)
		}
		if len(e.Data) == 0 {
			continue
		}
		ev, err := s.dec.Decode(e.Data)
		if err != nil {
			var body *wire.ErrorBody
			if errors.As(err, &body) {
				return nil, s.fail(s.c.streamError(body))
			}
			// A chunk that is not JSON is skipped: nothing garbled may
			// reach the client, and the rest of the answer still can.
			s.c.Malformed.Add(1)
			s.c.cfg.Log.Warn("skipped malformed upstream chunk", "provider", s.c.cfg.Name, "bytes", len(e.Data), "err", err)
			continue
		}
		if preamble(ev) {
			continue
		}
		if ev.Finish != "" {
			s.finished = true
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

// Buffered reports whether the next event has already arrived.
func (s *stream) Buffered() bool { return s.sse.Buffered() }

var _ llm.Buffered = (*stream)(nil)

func (s *stream) Close() error {
	s.dl.Stop()
	return s.body.Close()
}

var doneMarker = []byte("[DONE]")

// statusError classifies a non-2xx response.
func (c *Client) statusError(resp *http.Response, body []byte) *llm.Error {
	eb := wire.ParseErrorBody(body)
	e := c.classify(resp.StatusCode, eb)
	e.RetryAfter = provider.RetryAfter(resp.Header, time.Now())
	return e
}

// streamError classifies an error that arrived inside a 2xx body.
func (c *Client) streamError(err error) *llm.Error {
	var eb *wire.ErrorBody
	if !errors.As(err, &eb) {
		return &llm.Error{Kind: llm.KindStream, Provider: c.cfg.Name, Message: "the upstream sent an undecodable answer", Err: err}
	}
	e := c.classify(0, eb)
	if e.Kind == llm.KindUnknown || e.Kind == llm.KindInvalid {
		e.Kind = llm.KindStream
	}
	return e
}

// classify maps a status and error body to an llm.Error: the one place this
// adapter decides what a vendor's error means.
func (c *Client) classify(status int, eb *wire.ErrorBody) *llm.Error {
	e := &llm.Error{
		Kind: provider.StatusKind(status), Status: status, Provider: c.cfg.Name,
		Type: eb.Type, Code: eb.Code, Param: eb.Param, Message: eb.Message,
	}
	msg := strings.ToLower(eb.Message)
	switch {
	case eb.Code == "context_length_exceeded", eb.Type == "exceed_context_size_error",
		strings.Contains(msg, "maximum context length"), strings.Contains(msg, "context length exceeded"):
		e.Kind = llm.KindContextLength
	case eb.Code == "content_filter", eb.Code == "content_policy_violation":
		e.Kind = llm.KindContentFilter
	case eb.Code == "insufficient_quota", eb.Type == "insufficient_quota":
		e.Kind = llm.KindQuota
	case eb.Type == "unavailable_error", eb.Type == "overloaded_error":
		e.Kind = llm.KindOverloaded
	}
	if e.Message == "" {
		e.Message = fmt.Sprintf("upstream returned status %d", status)
	}
	return e
}
