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
}

// Target is one provider + upstream model.
type Target struct {
	Provider string `yaml:"provider"`
	// Model is the upstream's model name. If empty, the route's name.
	Model string `yaml:"model"`
}

// Defaults fills every unset field with its documented default.
func (c *Config) Defaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
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
		for j := range c.Models[i].Targets {
			if t := &c.Models[i].Targets[j]; t.Model == "" {
				t.Model = c.Models[i].Name
			}
		}
	}
}

// Validate reports the first invalid field, naming it.
func (c *Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fieldErr("listen", "%q is not host:port", c.Listen)
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
		for j, t := range m.Targets {
			if !names[t.Provider] {
				return fieldErr(fmt.Sprintf("%s.targets[%d].provider", f, j), "%q is not a configured provider", t.Provider)
			}
		}
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
