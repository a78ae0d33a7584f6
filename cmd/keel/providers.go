package main

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/keel-ai/keel/internal/config"
	"github.com/keel-ai/keel/internal/llm"
	"github.com/keel-ai/keel/internal/provider"
	"github.com/keel-ai/keel/internal/provider/anthropic"
	"github.com/keel-ai/keel/internal/provider/gemini"
	"github.com/keel-ai/keel/internal/provider/openai"
)

// providerType is p's wire type: its type, else its name when that names a
// type, else openai (any OpenAI-compatible server).
func providerType(p config.Provider) string {
	if p.Type != "" {
		return p.Type
	}
	if slices.Contains(providerTypes(), p.Name) {
		return p.Name
	}
	return "openai"
}

// providerTypes lists every type a provider can have.
func providerTypes() []string {
	ts := []string{"anthropic", "gemini"}
	for n := range openai.Dialects {
		ts = append(ts, n)
	}
	slices.Sort(ts)
	return ts
}

// newProvider builds the adapter for the i-th configured provider, and a
// reading of its count of skipped malformed chunks.
func newProvider(i int, p config.Provider, log *slog.Logger) (llm.Provider, func() float64, error) {
	field := func(name, format string, args ...any) error {
		return &config.FieldError{Field: fmt.Sprintf("providers[%d].%s", i, name), Msg: fmt.Sprintf(format, args...)}
	}
	var unsupported []llm.Feature
	for j, name := range p.Unsupported {
		f, ok := llm.ParseFeature(name)
		if !ok {
			return nil, nil, field(fmt.Sprintf("unsupported[%d]", j), "%q is not one of tools, images, json_schema, json_object, embeddings", name)
		}
		unsupported = append(unsupported, f)
	}
	hc := provider.NewHTTPClient(p.Timeouts.Connect)
	switch typ := providerType(p); typ {
	case "anthropic":
		if len(p.APIKeys) == 0 && p.BaseURL == "" {
			return nil, nil, field("api_keys", "anthropic needs an API key")
		}
		c := anthropic.New(anthropic.Config{
			Name: p.Name, BaseURL: p.BaseURL, Keys: p.APIKeys, Version: p.APIVersion, Headers: p.Headers,
			HeaderTimeout: p.Timeouts.Header, IdleTimeout: p.Timeouts.Idle, Log: log,
		}, hc)
		return c, func() float64 { return float64(c.Malformed.Load()) }, nil
	case "gemini":
		if len(p.APIKeys) == 0 && p.BaseURL == "" {
			return nil, nil, field("api_keys", "gemini needs an API key")
		}
		c := gemini.New(gemini.Config{
			Name: p.Name, BaseURL: p.BaseURL, Keys: p.APIKeys, Headers: p.Headers,
			HeaderTimeout: p.Timeouts.Header, IdleTimeout: p.Timeouts.Idle, Log: log,
		}, hc)
		return c, func() float64 { return float64(c.Malformed.Load()) }, nil
	default:
		d, ok := openai.Dialects[typ]
		if !ok {
			return nil, nil, field("type", "unknown type %q (known: %s)", typ, strings.Join(providerTypes(), ", "))
		}
		if !d.Local && len(p.APIKeys) == 0 && p.BaseURL == "" {
			return nil, nil, field("api_keys", "%s needs an API key", typ)
		}
		if d.BaseURL == "" && p.BaseURL == "" {
			return nil, nil, field("base_url", "%s has no default address: set base_url", typ)
		}
		c := openai.New(openai.Config{
			Name: p.Name, Dialect: d, BaseURL: p.BaseURL, Keys: p.APIKeys, Headers: p.Headers,
			HeaderTimeout: p.Timeouts.Header, IdleTimeout: p.Timeouts.Idle, Log: log,
			APIVersion: p.APIVersion, Unsupported: unsupported,
		}, hc)
		return c, func() float64 { return float64(c.Malformed.Load()) }, nil
	}
}
