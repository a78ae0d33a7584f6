// Package config is keel's one typed configuration: parsed from keel.yaml,
// layered under environment variables and flags by cmd/keel, and validated
// once at startup. Nothing here reads the environment itself: callers pass a
// lookup function.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole configuration. The zero value, after Defaults, is a
// working single-user development server.
type Config struct {
	// Listen is the address to serve on. If empty, 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// HTTPServer is the HTTP/1.1 server on Listen: "keel", keel's own
	// (internal/h1), or "net/http", Go's standard one, kept as a fallback.
	// If empty, keel.
	HTTPServer string `yaml:"http_server"`
	// DataDir holds the SQLite database. If empty, ./keel-data.
	DataDir string `yaml:"data_dir"`
	// Log configures logging.
	Log Log `yaml:"log"`
	// Store configures what keel records.
	Store Store `yaml:"store"`
	// ShutdownGrace is how long in-flight requests may run after SIGTERM.
	// If zero, 30s.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	// MaxBodyBytes bounds a request body. If zero, 32 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// Providers are the upstream endpoints. If empty, keel detects them
	// from the standard environment variables (see Detect), and falls back
	// to the built-in simulator.
	Providers []Provider `yaml:"providers"`
	// Models map the model names clients send to ordered targets.
	Models []Model `yaml:"models"`
	// Reliability is the default policy of every route; each route may
	// override any field.
	Reliability Reliability `yaml:"reliability"`
	// Breaker configures every target's circuit breaker and budgets.
	Breaker Breaker `yaml:"breaker"`
}

// Reliability is a route's reliability policy (router.Policy). Every zero
// field takes the default noted, inherited from the top-level section
// first.
type Reliability struct {
	// FirstToken bounds the wait for an attempt's first token. Default 60s.
	FirstToken time.Duration `yaml:"first_token"`
	// Total bounds the whole request. Default 10m.
	Total time.Duration `yaml:"total"`
	// Attempts caps upstream attempts per request. Default 6.
	Attempts int `yaml:"attempts"`
	// Backoff and MaxBackoff shape exponential backoff. Default 500ms, 4s.
	Backoff    time.Duration `yaml:"backoff"`
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// RetryAfterWait is the longest Retry-After waited out while another
	// target could serve; MaxRetryAfter the longest with none. Default 2s,
	// 10s.
	RetryAfterWait time.Duration `yaml:"retry_after_wait"`
	MaxRetryAfter  time.Duration `yaml:"max_retry_after"`
	// Hedge turns hedged requests on or off. Default: on for routes with
	// more than one target.
	Hedge *bool `yaml:"hedge"`
	// HedgeDelay fixes the hedge delay. Default: the target's observed p95
	// time to first token, within [HedgeMin, HedgeMax] (200ms, 10s).
	HedgeDelay time.Duration `yaml:"hedge_delay"`
	HedgeMin   time.Duration `yaml:"hedge_min"`
	HedgeMax   time.Duration `yaml:"hedge_max"`
	// FailoverContentFilter fails over when a vendor's content filter
	// refuses. Default off.
	FailoverContentFilter bool `yaml:"failover_on_content_filter"`
	// StreamUpstream serves non-streaming clients from streaming upstream
	// calls. Default on.
	StreamUpstream *bool `yaml:"stream_upstream"`
	// HoldToolCalls releases each streamed tool call whole. Default: on
	// when the request has tools and the route has a fallback.
	HoldToolCalls *bool `yaml:"hold_tool_calls"`
}

// Breaker configures circuit breakers and budgets (router.Breaker).
type Breaker struct {
	// Failures in a row that open a breaker. Default 5.
	Failures int `yaml:"failures"`
	// Ratio of failures over Window (with MinRequests) that opens it.
	// Default 0.5, 10s, 10.
	Ratio       float64       `yaml:"ratio"`
	Window      time.Duration `yaml:"window"`
	MinRequests int           `yaml:"min_requests"`
	// Open is the first open period; it doubles per failed probe up to
	// MaxOpen. Default 5s, 20s.
	Open    time.Duration `yaml:"open"`
	MaxOpen time.Duration `yaml:"max_open"`
	// RetryRatio caps retries at this share of requests, plus
	// MinRetriesPerSec. Default 0.2, 1.
	RetryRatio       float64 `yaml:"retry_ratio"`
	MinRetriesPerSec float64 `yaml:"min_retries_per_sec"`
	// HedgeRatio caps hedges at this share of requests. Default 0.05.
	HedgeRatio float64 `yaml:"hedge_ratio"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error. If empty, info.
	Level string `yaml:"level"`
	// Format is text or json. If empty, text.
	Format string `yaml:"format"`
}

// Store configures recording.
type Store struct {
	// RecordContent stores prompt and completion text with each request
	// record. Off by default: keel records metadata only.
	RecordContent bool `yaml:"record_content"`
	// Responses keeps the Responses-API responses a client asks to store
	// (store: true, that API's default), under the client's key, so that
	// previous_response_id works. Nil means on; false makes /v1/responses
	// stateless and keeps no conversation content.
	Responses *bool `yaml:"responses"`
}

// Provider is one upstream endpoint.
type Provider struct {
	// Name identifies the provider in routes, logs and x-keel-target.
	Name string `yaml:"name"`
	// Type selects the wire dialect: openai, azure... see provider/openai's
	// dialect table, or sim for the built-in simulator. If empty, Name is
	// used when it names a known type, else openai.
	Type string `yaml:"type"`
	// BaseURL is the API root, including /v1 where the vendor uses it. If
	// empty, the type's default.
	BaseURL string `yaml:"base_url"`
	// APIKeys are used in turn (round robin); a key the upstream rejects is
	// skipped. Local servers need none.
	APIKeys []string `yaml:"api_keys"`
	// Headers are added to every upstream request.
	Headers map[string]string `yaml:"headers"`
	// Models lists the upstream models this provider serves, so that bare
	// model names route here and /v1/models lists them. Optional.
	Models []string `yaml:"models"`
	// Timeouts bound each call.
	Timeouts Timeouts `yaml:"timeouts"`
	// APIVersion is Azure OpenAI's api-version (default 2024-10-21) or
	// Anthropic's anthropic-version (default 2023-06-01).
	APIVersion string `yaml:"api_version"`
	// Unsupported lists features this provider's models lack: tools,
	// images, json_schema, json_object, embeddings. Requests that need one
	// skip the provider.
	Unsupported []string `yaml:"unsupported"`
}

// Timeouts bound one upstream call.
type Timeouts struct {
	// Connect bounds dialing and the TLS handshake. If zero, 5s.
	Connect time.Duration `yaml:"connect"`
	// Header bounds the wait for response headers. If zero, 30s.
	Header time.Duration `yaml:"header"`
	// Idle bounds the silence between two stream chunks. If zero, 60s.
	Idle time.Duration `yaml:"idle"`
}

// Model is a route: the name clients send, served by the first healthy
// target in order.
type Model struct {
	Name    string   `yaml:"name"`
	Targets []Target `yaml:"targets"`
	// ContextFallbacks replace the remaining targets when a target rejects
	// the prompt as too long for its context.
	ContextFallbacks []Target    `yaml:"context_fallbacks"`
	Reliability      Reliability `yaml:"reliability"`
}

// Target is one provider + upstream model, or a group of equivalent ones.
type Target struct {
	Provider string `yaml:"provider"`
	// Model is the upstream's model name. If empty, the route's name.
	Model string `yaml:"model"`
	// Weight biases latency-aware selection within an Any group.
	Weight int `yaml:"weight"`
	// Continue is how this target continues a broken answer: prefill or
	// restart. If empty, what the provider's type supports.
	Continue string `yaml:"continue"`
	// Any lists equivalent targets, balanced by latency, in place of
	// Provider and Model.
	Any []Target `yaml:"any"`
}

// Defaults fills every unset field with its documented default.
func (c *Config) Defaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.HTTPServer == "" {
		c.HTTPServer = "keel"
	}
	if c.DataDir == "" {
		c.DataDir = "keel-data"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = 30 * time.Second
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 32 << 20
	}
	for i := range c.Providers {
		p := &c.Providers[i]
		if p.Timeouts.Connect == 0 {
			p.Timeouts.Connect = 5 * time.Second
		}
		if p.Timeouts.Header == 0 {
			p.Timeouts.Header = 30 * time.Second
		}
		if p.Timeouts.Idle == 0 {
			p.Timeouts.Idle = 60 * time.Second
		}
	}
	for i := range c.Models {
		m := &c.Models[i]
		defaultModel(m.Targets, m.Name)
		defaultModel(m.ContextFallbacks, m.Name)
	}
}

func defaultModel(ts []Target, name string) {
	for i := range ts {
		if ts[i].Model == "" && len(ts[i].Any) == 0 {
			ts[i].Model = name
		}
		defaultModel(ts[i].Any, name)
	}
}

// Validate reports the first invalid field, naming it.
func (c *Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fieldErr("listen", "%q is not host:port", c.Listen)
	}
	if c.HTTPServer != "keel" && c.HTTPServer != "net/http" {
		return fieldErr("http_server", "%q is not one of keel, net/http", c.HTTPServer)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return fieldErr("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return fieldErr("log.format", "%q is not one of text, json", c.Log.Format)
	}
	if c.ShutdownGrace < 0 {
		return fieldErr("shutdown_grace", "must not be negative")
	}
	if c.MaxBodyBytes < 0 {
		return fieldErr("max_body_bytes", "must not be negative")
	}
	names := map[string]bool{}
	for i, p := range c.Providers {
		f := fmt.Sprintf("providers[%d]", i)
		switch {
		case p.Name == "":
			return fieldErr(f+".name", "is required")
		case strings.ContainsAny(p.Name, "/ "):
			return fieldErr(f+".name", "%q must not contain '/' or spaces", p.Name)
		case names[p.Name]:
			return fieldErr(f+".name", "%q is used twice", p.Name)
		}
		names[p.Name] = true
		if p.BaseURL != "" {
			u, err := url.Parse(p.BaseURL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fieldErr(f+".base_url", "%q is not an http(s) URL", p.BaseURL)
			}
		}
		for j, k := range p.APIKeys {
			if k == "" {
				return fieldErr(fmt.Sprintf("%s.api_keys[%d]", f, j), "is empty")
			}
		}
		for _, d := range []struct {
			name string
			v    time.Duration
		}{{"connect", p.Timeouts.Connect}, {"header", p.Timeouts.Header}, {"idle", p.Timeouts.Idle}} {
			if d.v < 0 {
				return fieldErr(f+".timeouts."+d.name, "must not be negative")
			}
		}
	}
	routes := map[string]bool{}
	for i, m := range c.Models {
		f := fmt.Sprintf("models[%d]", i)
		switch {
		case m.Name == "":
			return fieldErr(f+".name", "is required")
		case routes[m.Name]:
			return fieldErr(f+".name", "%q is used twice", m.Name)
		case len(m.Targets) == 0:
			return fieldErr(f+".targets", "needs at least one target")
		}
		routes[m.Name] = true
		if err := validTargets(f+".targets", m.Targets, names, true); err != nil {
			return err
		}
		if err := validTargets(f+".context_fallbacks", m.ContextFallbacks, names, true); err != nil {
			return err
		}
		if err := m.Reliability.validate(f + ".reliability"); err != nil {
			return err
		}
	}
	if err := c.Reliability.validate("reliability"); err != nil {
		return err
	}
	return c.Breaker.validate()
}

func validTargets(f string, ts []Target, providers map[string]bool, groups bool) error {
	for j, t := range ts {
		tf := fmt.Sprintf("%s[%d]", f, j)
		switch {
		case len(t.Any) > 0 && !groups:
			return fieldErr(tf+".any", "groups cannot nest")
		case len(t.Any) > 0 && t.Provider != "":
			return fieldErr(tf+".any", "a target has either provider or any, not both")
		case len(t.Any) > 0:
			if err := validTargets(tf+".any", t.Any, providers, false); err != nil {
				return err
			}
			continue
		case !providers[t.Provider]:
			return fieldErr(tf+".provider", "%q is not a configured provider", t.Provider)
		case t.Weight < 0:
			return fieldErr(tf+".weight", "must not be negative")
		}
		switch t.Continue {
		case "", "prefill", "restart":
		default:
			return fieldErr(tf+".continue", "%q is not one of prefill, restart", t.Continue)
		}
	}
	return nil
}

func (r Reliability) validate(f string) error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"total", r.Total}, {"backoff", r.Backoff}, {"max_backoff", r.MaxBackoff},
		{"retry_after_wait", r.RetryAfterWait}, {"max_retry_after", r.MaxRetryAfter},
		{"hedge_delay", r.HedgeDelay}, {"hedge_min", r.HedgeMin}, {"hedge_max", r.HedgeMax},
	} {
		if d.v < 0 {
			return fieldErr(f+"."+d.name, "must not be negative")
		}
	}
	if r.Attempts < 0 {
		return fieldErr(f+".attempts", "must not be negative")
	}
	return nil
}

func (b Breaker) validate() error {
	switch {
	case b.Failures < 0:
		return fieldErr("breaker.failures", "must not be negative")
	case b.Ratio < 0 || b.Ratio > 1:
		return fieldErr("breaker.ratio", "must be between 0 and 1")
	case b.RetryRatio < 0 || b.RetryRatio > 1:
		return fieldErr("breaker.retry_ratio", "must be between 0 and 1")
	case b.HedgeRatio < 0 || b.HedgeRatio > 1:
		return fieldErr("breaker.hedge_ratio", "must be between 0 and 1")
	case b.Window < 0 || b.Open < 0 || b.MaxOpen < 0:
		return fieldErr("breaker", "durations must not be negative")
	}
	return nil
}

// FieldError is a validation failure of one named field.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return "config: " + e.Field + ": " + e.Msg }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Load reads the YAML file at path, replacing ${VAR} and ${VAR:-default}
// in every value through lookup. A missing file is an error; unknown fields
// are errors that name the field.
func Load(path string, lookup func(string) (string, bool)) (Config, error) {
	var c Config
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	return Parse(b, lookup)
}

// Parse is Load on bytes.
func Parse(b []byte, lookup func(string) (string, bool)) (Config, error) {
	var c Config
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	if err := interpolate(&root, lookup); err != nil {
		return c, err
	}
	if len(root.Content) == 0 {
		return c, nil // an empty file is the zero config
	}
	// Decode through a strict decoder so that a misspelt key is an error.
	out, err := yaml.Marshal(&root)
	if err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(out))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// interpolate replaces ${VAR} references in scalar values. Referencing an
// unset variable without a default is an error, so that a missing secret is
// found at startup rather than as a 401 later.
func interpolate(n *yaml.Node, lookup func(string) (string, bool)) error {
	if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "${") {
		var missing error
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
			m := envRef.FindStringSubmatch(ref)
			if v, ok := lookup(m[1]); ok && v != "" {
				return v
			}
			if m[2] != "" {
				return m[3]
			}
			missing = fmt.Errorf("config: line %d: environment variable %s is not set", n.Line, m[1])
			return ""
		})
		if missing != nil {
			return missing
		}
		// An interpolated value is data, never YAML: keep it a string
		// unless it was written as another plain scalar.
		if n.Style == 0 && n.Tag == "!!str" {
			n.Style = yaml.DoubleQuotedStyle
		}
		return nil
	}
	var errs []error
	for _, c := range n.Content {
		if err := interpolate(c, lookup); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
