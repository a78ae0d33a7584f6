package openai

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/keel-ai/keel/internal/llm"
	"github.com/keel-ai/keel/internal/provider"
	"github.com/keel-ai/keel/internal/wire"
)

var _ llm.Embedder = (*Client)(nil)

// maxEmbedBody bounds an embeddings answer: 2048 vectors of 4096 numbers
// as decimal text fit.
const maxEmbedBody = 128 << 20

// Supports reports whether the provider serves feature f (llm.Capable):
// embeddings unless the dialect has none, and everything else unless the
// config lists it as unsupported.
func (c *Client) Supports(model string, f llm.Feature) bool {
	if f == llm.FeatureEmbeddings && c.cfg.Dialect.NoEmbeddings {
		return false
	}
	return !slices.Contains(c.cfg.Unsupported, f)
}

var _ llm.Capable = (*Client)(nil)

// Embed sends r to the upstream's embeddings endpoint, with the same keys,
// headers, deadlines and error classification as Chat. Errors are
// *llm.Error values: a dialect without embeddings fails at once with
// KindNotFound, so that a router fails over past it.
func (c *Client) Embed(ctx context.Context, r *llm.EmbedRequest) (*llm.Embeddings, error) {
	if c.cfg.Dialect.NoEmbeddings {
		return nil, &llm.Error{Kind: llm.KindNotFound, Provider: c.cfg.Name,
			Message: fmt.Sprintf("%s serves no embeddings", c.cfg.Dialect.Name)}
	}
	format := wire.EmbedFloat
	if c.cfg.Dialect.EmbedBase64 {
		format = wire.EmbedBase64
	}
	out := r
	if c.cfg.Dialect.Wire.Strict && r.User != "" {
		// Strict upstreams (Mistral) reject fields they do not know.
		cp := *r
		cp.User = ""
		out = &cp
	}
	body := wire.AppendEmbedRequest(nil, out, format)
	ctx, dl := provider.StartDeadline(ctx, c.cfg.HeaderTimeout, c.cfg.IdleTimeout)
	defer dl.Stop() // deferred: errors are classified first, with ctx alive
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url(r.Model, "embeddings"), bytes.NewReader(body))
	if err != nil {
		return nil, &llm.Error{Kind: llm.KindInvalid, Provider: c.cfg.Name, Err: err}
	}
	c.header(req.Header, "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, provider.TransportError(ctx, c.cfg.Name, err)
	}
	resp.Body = dl.Body(resp.Body)
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return nil, c.statusError(resp, b)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxEmbedBody+1))
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, provider.TransportError(ctx, c.cfg.Name, err)
	case err != nil:
		return nil, &llm.Error{Kind: llm.KindStream, Provider: c.cfg.Name, Message: "the upstream's answer was cut", Err: err}
	case len(b) > maxEmbedBody:
		return nil, &llm.Error{Kind: llm.KindStream, Provider: c.cfg.Name, Message: fmt.Sprintf("the upstream's answer is larger than %d bytes", maxEmbedBody)}
	}
	e, err := wire.DecodeEmbeddings(b)
	if err != nil {
		return nil, c.streamError(err)
	}
	if len(e.Vectors) != len(r.Input) {
		return nil, &llm.Error{Kind: llm.KindStream, Provider: c.cfg.Name,
			Message: fmt.Sprintf("the upstream returned %d embeddings for %d inputs", len(e.Vectors), len(r.Input))}
	}
	return e, nil
}
