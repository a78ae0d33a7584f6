package config

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParse(t *testing.T) {
	in := `
listen: 0.0.0.0:9000
providers:
  - name: openai
    api_keys: ["${OPENAI_API_KEY}"]
    timeouts: {header: 2s}
  - name: local
    type: ollama
    base_url: ${OLLAMA_URL:-http://127.0.0.1:11434/v1}
models:
  - name: smart
    targets:
      - {provider: openai, model: gpt-4o}
      - {provider: local}
`
	c, err := Parse([]byte(in), env(map[string]string{"OPENAI_API_KEY": "sk-1: with yaml: chars"}))
	if err != nil {
		t.Fatal(err)
	}
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := []Provider{
		{Name: "openai", APIKeys: []string{"sk-1: with yaml: chars"}, Timeouts: Timeouts{Connect: 5 * time.Second, Header: 2 * time.Second, Idle: 60 * time.Second}},
		{Name: "local", Type: "ollama", BaseURL: "http://127.0.0.1:11434/v1", Timeouts: Timeouts{Connect: 5 * time.Second, Header: 30 * time.Second, Idle: 60 * time.Second}},
	}
	if diff := cmp.Diff(want, c.Providers); diff != "" {
		t.Errorf("providers (-want +got):\n%s", diff)
	}
	if got := c.Models[0].Targets[1].Model; got != "smart" {
		t.Errorf("target model defaults to the route name: got %q", got)
	}
	if c.Listen != "0.0.0.0:9000" || c.DataDir != "keel-data" {
		t.Errorf("listen/data_dir = %q/%q", c.Listen, c.DataDir)
	}
}

func TestInvalid(t *testing.T) {
	tests := []struct {
		name, in, wantField string
	}{
		{"bad listen", "listen: nope", "listen"},
		{"unknown http server", "http_server: nginx", "http_server"},
		{"bad level", "log: {level: loud}", "log.level"},
		{"provider without name", "providers: [{type: openai}]", "providers[0].name"},
		{"duplicate provider", "providers: [{name: a}, {name: a}]", "providers[1].name"},
		{"bad base url", "providers: [{name: a, base_url: 'ftp://x'}]", "providers[0].base_url"},
		{"negative timeout", "providers: [{name: a, timeouts: {header: -1s}}]", "providers[0].timeouts.header"},
		{"route without targets", "models: [{name: m}]", "models[0].targets"},
		{"route to unknown provider", "providers: [{name: a}]\nmodels: [{name: m, targets: [{provider: b}]}]", "models[0].targets[0].provider"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.in), env(nil))
			if err != nil {
				t.Fatal(err)
			}
			c.Defaults()
			var fe *FieldError
			if err := c.Validate(); !errors.As(err, &fe) || fe.Field != tt.wantField {
				t.Fatalf("err = %v, want a FieldError on %s", err, tt.wantField)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, in string }{
		{"unknown field", "listne: 1.2.3.4:5"},
		{"unset variable", "providers: [{name: a, api_keys: ['${NOPE}']}]"},
		{"bad duration", "shutdown_grace: soon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse([]byte(tt.in), env(nil)); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

// TestExampleConfig keeps keel.example.yaml valid: it documents every
// option, so it must parse with strict field checking.
func TestExampleConfig(t *testing.T) {
	b, err := os.ReadFile("../../keel.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(b, func(string) (string, bool) { return "x", true })
	if err != nil {
		t.Fatal(err)
	}
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestDetect(t *testing.T) {
	got := Detect(env(map[string]string{"OPENAI_API_KEY": "sk", "OLLAMA_HOST": "127.0.0.1:11434", "GROQ_API_KEY": ""}))
	want := []Provider{
		{Name: "openai", Type: "openai", APIKeys: []string{"sk"}},
		{Name: "ollama", Type: "ollama", BaseURL: "http://127.0.0.1:11434/v1"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
