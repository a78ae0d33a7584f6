// Package gemini is the adapter for Google's Gemini API (the Generative
// Language API, v1beta): generateContent, streamGenerateContent and
// batchEmbedContents (../shared/wire/README.md §4).
package gemini

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keel-ai/keel/internal/llm"
	"github.com/keel-ai/keel/internal/provider"
	"github.com/keel-ai/keel/internal/sse"
	"github.com/keel-ai/keel/internal/wire"
)

// DefaultBaseURL is Google's endpoint.
const DefaultBaseURL = "https://generativelanguage.googleapis.com/v1beta"

// Config configures one provider.
type Config struct {
	// Name identifies the provider in errors and logs.
	Name string
	// BaseURL is the API root including the version. If empty,
	// DefaultBaseURL.
	BaseURL string
	// Keys are sent as x-goog-api-key, round robin. Empty sends none.
	Keys []string
	// Headers are added to every request.
	Headers map[string]string
	// HeaderTimeout bounds the wait for response headers; IdleTimeout the
	// silence between body reads. Zero disables each.
	HeaderTimeout time.Duration
	IdleTimeout   time.Duration
	// Prefill declares that the upstream continues a trailing model turn
	// rather than answering anew, as keel sim does. Google does not
	// document that Gemini does, so it is false for Google: Prefills then
	// reports false and the router restarts a broken answer instead.
	Prefill bool
	// Log receives malformed-chunk warnings. If nil, slog.Default().
	Log *slog.Logger
}

// Client is a Gemini provider. It is safe for concurrent use.
type Client struct {
	cfg  Config
	base string
	hc   *http.Client
	next atomic.Uint64 // round-robin key cursor

	// Malformed counts stream chunks that could not be decoded and were
	// skipped (issue 3: skip, log, count).
	Malformed atomic.Int64
}

var (
	_ llm.Provider  = (*Client)(nil)
	_ llm.Prefiller = (*Client)(nil)
	_ llm.Embedder  = (*Client)(nil)
)

// New returns a Client that sends requests through hc.
func New(cfg Config, hc *http.Client) *Client {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Client{cfg: cfg, base: strings.TrimSuffix(cfg.BaseURL, "/"), hc: hc}
}

// Name returns the provider's name.
func (c *Client) Name() string { return c.cfg.Name }

// Prefills reports whether the upstream continues a partial answer
// (Config.Prefill).
func (c *Client) Prefills() bool { return c.cfg.Prefill }

// resource is the resource name of a model: "models/gemini-2.5-flash" for
// a bare name; a name that already has a collection ("models/…",
// "tunedModels/…") is kept.
func resource(model string) string {
	if strings.Contains(model, "/") {
		return model
	}
	return "models/" + url.PathEscape(model)
}

// post sends body to the model's method, with header as its header
// deadline, returning the response with its body under the idle deadline.
// The caller stops dl once done with ctx.
func (c *Client) post(ctx context.Context, model, method string, body []byte, stream bool, header time.Duration) (*http.Response, context.Context, *provider.Deadline, error) {
	u := c.base + "/" + resource(model) + ":" + method
	if stream {
		// Without alt=sse the answer is one JSON array sent bit by bit.
		u += "?alt=sse"
	}
	ctx, dl := provider.StartDeadline(ctx, header, c.cfg.IdleTimeout)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, ctx, dl, &llm.Error{Kind: llm.KindInvalid, Provider: c.cfg.Name, Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	if stream {
		req.Header.Set("Accept", "text/event-stream")
	} else {
		req.Header.Set("Accept", "application/json")
	}
	if n := len(c.cfg.Keys); n > 0 {
		req.Header.Set("X-Goog-Api-Key", c.cfg.Keys[(c.next.Add(1)-1)%uint64(n)])
	}
	for k, v := range c.cfg.Headers {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, ctx, dl, provider.TransportError(ctx, c.cfg.Name, err)
	}
	resp.Body = dl.Body(resp.Body)
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return nil, ctx, dl, c.statusError(resp, b)
	}
	return resp, ctx, dl, nil
}

// readAll reads a whole answer of at most limit bytes.
func (c *Client) readAll(ctx context.Context, body io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(body, limit+1))
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, provider.TransportError(ctx, c.cfg.Name, err)
	case err != nil:
		return nil, &llm.Error{Kind: llm.KindStream, Provider: c.cfg.Name, Message: "the upstream's answer was cut", Err: err}
	case int64(len(b)) > limit:
		return nil, &llm.Error{Kind: llm.KindStream, Provider: c.cfg.Name, Message: fmt.Sprintf("the upstream's answer is larger than %d bytes", limit)}
	}
	return b, nil
}

// Chat sends r and returns its answer as a stream. Errors before the answer
// starts are *llm.Error values.
func (c *Client) Chat(ctx context.Context, r *llm.Request) (llm.Stream, error) {
	body, err := wire.AppendGenerateRequest(nil, r)
	if err != nil {
		return nil, &llm.Error{Kind: llm.KindInvalid, Provider: c.cfg.Name, Message: err.Error(), Err: err}
	}
	created := time.Now().Unix()
	method := "generateContent"
	if r.Stream {
		method = "streamGenerateContent"
	}
	resp, ctx, dl, err := c.post(ctx, r.Model, method, body, r.Stream, provider.HeaderTimeout(c.cfg.HeaderTimeout, r.Stream))
	if err != nil {
		dl.Stop() // after classifying: Stop cancels ctx
		return nil, err
	}
	if !r.Stream || strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		// A whole answer, or JSON where a stream was asked for: an error
		// sent with a 200, or the array form of a stream.
		defer dl.Stop()
		defer resp.Body.Close()
		b, err := c.readAll(ctx, resp.Body, provider.MaxBody)
		if err != nil {
			return nil, err
		}
		ev, err := wire.DecodeGenerateResponse(b)
		if err != nil {
			return nil, c.streamError(err)
		}
		ev.Created = created
		return provider.Single(ev), nil
	}
	return &stream{
		c: c, ctx: ctx, dl: dl, body: resp.Body, sse: sse.NewReader(resp.Body, 0),
		dec: wire.GenerateStreamDecoder{Created: created},
	}, nil
}

// stream reads a streamGenerateContent?alt=sse answer.
type stream struct {
	c    *Client
	ctx  context.Context
	dl   *provider.Deadline
	body io.ReadCloser
	sse  *sse.Reader
	dec  wire.GenerateStreamDecoder
	// finished is set once a finishReason arrived. Gemini sends no end
	// marker: a body that ends after it is complete, one that ends before
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
		ev, err := s.dec.Decode(e.Data)
		if err != nil {
			var ge *wire.GeminiError
			if errors.As(err, &ge) {
				return nil, s.fail(s.c.streamError(ge))
			}
			// A chunk that is not JSON is skipped: nothing garbled may
			// reach the client, and the rest of the answer still can.
			s.c.Malformed.Add(1)
			s.c.cfg.Log.Warn("skipped malformed upstream chunk", "provider", s.c.cfg.Name, "bytes", len(e.Data), "err", err)
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

func (s *stream) Close() error {
	s.dl.Stop()
	return s.body.Close()
}

// maxEmbedBody bounds an embeddings answer: 2048 vectors of 4096 numbers
// as decimal text fit.
const maxEmbedBody = 128 << 20

// Embed sends r to batchEmbedContents, one request per input, with the
// same keys, headers, deadlines and error classification as Chat. The
// answer's Usage is zero: Gemini does not report it.
func (c *Client) Embed(ctx context.Context, r *llm.EmbedRequest) (*llm.Embeddings, error) {
	body := wire.AppendBatchEmbedRequest(nil, r, resource(r.Model))
	resp, ctx, dl, err := c.post(ctx, r.Model, "batchEmbedContents", body, false, c.cfg.HeaderTimeout)
	defer dl.Stop() // deferred: errors are classified first, with ctx alive
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := c.readAll(ctx, resp.Body, maxEmbedBody)
	if err != nil {
		return nil, err
	}
	vs, err := wire.DecodeBatchEmbedResponse(b)
	if err != nil {
		return nil, c.streamError(err)
	}
	if len(vs) != len(r.Input) {
		return nil, &llm.Error{Kind: llm.KindStream, Provider: c.cfg.Name,
			Message: fmt.Sprintf("the upstream returned %d embeddings for %d inputs", len(vs), len(r.Input))}
	}
	return &llm.Embeddings{Model: r.Model, Vectors: vs}, nil
}

// statusError classifies a non-2xx response. The wait comes from the
// body's RetryInfo, else from Retry-After headers.
func (c *Client) statusError(resp *http.Response, body []byte) *llm.Error {
	e := c.classify(resp.StatusCode, wire.ParseGeminiError(body))
	if e.RetryAfter == 0 {
		e.RetryAfter = provider.RetryAfter(resp.Header, time.Now())
	}
	return e
}

// streamError classifies an error that arrived inside a 2xx body.
func (c *Client) streamError(err error) *llm.Error {
	var ge *wire.GeminiError
	if !errors.As(err, &ge) {
		return &llm.Error{Kind: llm.KindStream, Provider: c.cfg.Name, Message: "the upstream sent an undecodable answer", Err: err}
	}
	e := c.classify(0, ge)
	if e.Kind == llm.KindUnknown || e.Kind == llm.KindInvalid {
		e.Kind = llm.KindStream
	}
	return e
}

// classify maps a status and a Gemini error to an llm.Error: the one place
// this adapter decides what Gemini's errors mean (../shared/wire/README.md
// §10). In a 2xx body the status is 0 and the body's own code stands in.
func (c *Client) classify(status int, ge *wire.GeminiError) *llm.Error {
	e := &llm.Error{
		Status: status, Provider: c.cfg.Name,
		Type: ge.Status, Code: ge.Reason, Message: ge.Message, RetryAfter: ge.RetryDelay,
	}
	code := status
	if code == 0 {
		code = ge.Code
	}
	switch ge.Status {
	case "INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE":
		e.Kind = llm.KindInvalid
	case "UNAUTHENTICATED", "PERMISSION_DENIED":
		e.Kind = llm.KindAuth
	case "NOT_FOUND":
		e.Kind = llm.KindNotFound
	case "RESOURCE_EXHAUSTED":
		e.Kind = llm.KindRateLimit
	case "UNAVAILABLE":
		e.Kind = llm.KindOverloaded
	case "DEADLINE_EXCEEDED":
		e.Kind = llm.KindTimeout
	case "INTERNAL", "UNKNOWN", "DATA_LOSS", "ABORTED":
		e.Kind = llm.KindServer
	default:
		e.Kind = provider.StatusKind(code)
	}
	msg := strings.ToLower(ge.Message)
	switch {
	case ge.Blocked:
		e.Kind = llm.KindContentFilter
	case isAuthReason(ge.Reason):
		// A bad key is a 400 INVALID_ARGUMENT with this detail.
		e.Kind = llm.KindAuth
	case e.Kind == llm.KindInvalid && (strings.Contains(msg, "input token count") || strings.Contains(msg, "exceeds the maximum number of tokens")):
		e.Kind = llm.KindContextLength
	case e.Kind == llm.KindRateLimit && isLastingQuota(ge, msg):
		e.Kind = llm.KindQuota
	}
	if e.Message == "" {
		e.Message = fmt.Sprintf("upstream returned status %d", status)
	}
	return e
}

// isAuthReason reports whether an ErrorInfo reason blames keel's
// credentials or project rather than the request.
func isAuthReason(reason string) bool {
	switch reason {
	case "CONSUMER_SUSPENDED", "SERVICE_DISABLED", "ACCESS_TOKEN_EXPIRED", "ACCESS_TOKEN_TYPE_UNSUPPORTED":
		return true
	}
	return strings.HasPrefix(reason, "API_KEY_")
}

// isLastingQuota tells a 429 that will not lift soon from a rate limit.
// Every Gemini 429 says "You exceeded your current quota", per-minute
// limits included, so the wording proves nothing: a violated daily quota
// does, and so does a limit of 0 (the model is not in the key's tier).
// Without such evidence a 429 is a rate limit, with its RetryInfo wait.
func isLastingQuota(ge *wire.GeminiError, msg string) bool {
	for _, q := range ge.QuotaIDs {
		if strings.Contains(q, "PerDay") {
			return true
		}
	}
	return strings.Contains(msg, "limit: 0")
}
