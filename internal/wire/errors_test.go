package wire

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestParseErrorBody(t *testing.T) {
	// rateLimit is the body inside the recorded status+headers wrapper.
	var rateLimit struct{ Body json.RawMessage }
	if err := json.Unmarshal(read(t, filepath.Join(examples, "openai-chat/error-429-rate-limit.http.json")), &rateLimit); err != nil {
		t.Fatal(err)
	}
	file := func(p string) string { return string(read(t, filepath.Join(examples, p))) }
	long := strings.Repeat("é", 400) // 800 bytes
	tests := []struct {
		name string
		body string
		want *ErrorBody
	}{
		{"openai unsupported param", file("openai-chat/error-400-unsupported-param.json"), &ErrorBody{
			Message: "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
			Type:    "invalid_request_error", Param: "max_tokens", Code: "unsupported_parameter",
		}},
		{"openai invalid key", file("openai-chat/error-401-invalid-key.json"), &ErrorBody{
			Message: "Incorrect API key provided: sk-xxxx. You can find your API key at https://platform.openai.com/account/api-keys.",
			Type:    "invalid_request_error", Code: "invalid_api_key",
		}},
		{"openai insufficient quota", file("openai-chat/error-429-insufficient-quota.json"), &ErrorBody{
			Message: "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
			Type:    "insufficient_quota", Code: "insufficient_quota",
		}},
		{"openai rate limit", string(rateLimit.Body), &ErrorBody{
			Message: "Rate limit reached for gpt-4o-mini in organization org-xxxx on tokens per min (TPM): Limit 30000, Used 28039, Requested 3906. Please try again in 1.75s.",
			Type:    "tokens", Code: "rate_limit_exceeded",
		}},
		{"mistral flat, object message", file("mistral/error-422-extra-inputs.json"), &ErrorBody{
			Message: `{"detail":[{"type":"extra_forbidden","loc":["body","max_completion_tokens"],"msg":"Extra inputs are not permitted","input":32000}]}`,
			Type:    "invalid_request_error",
		}},
		{"mistral flat", file("mistral/error-422-tool-call-id.json"), &ErrorBody{
			Message: "Tool call id was call_search but must be a-z, A-Z, 0-9, with a length of 9.",
			Type:    "invalid_request_error",
		}},
		{"vllm flat, int code", file("openai-compatible/error-vllm-legacy-flat.json"), &ErrorBody{
			Message: "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.",
			Type:    "BadRequestError", Code: "400",
		}},
		{"vllm nested, int code", file("openai-compatible/error-vllm-nested.json"), &ErrorBody{
			Message: "The model `foo` does not exist.", Type: "NotFoundError", Code: "404",
		}},
		{"llama.cpp context", file("openai-compatible/error-llamacpp.json"), &ErrorBody{
			Message: "the request exceeds the available context size, try increasing it", Type: "exceed_context_size_error", Code: "400",
		}},
		{"llama.cpp loading", file("openai-compatible/error-llamacpp-loading-503.json"), &ErrorBody{
			Message: "Loading model", Type: "unavailable_error", Code: "503",
		}},
		{"ollama native string", file("ollama/native-error.json"), &ErrorBody{
			Message: `model "llama9" not found, try pulling it first`,
		}},
		{"ollama openai-compatible", file("ollama/openai-compat-error-404.json"), &ErrorBody{
			Message: `model "llama9" not found, try pulling it first`, Type: "not_found_error",
		}},
		{"html", "\n<html><body>502 Bad Gateway</body></html>\n", &ErrorBody{Message: "<html><body>502 Bad Gateway</body></html>"}},
		{"empty", "", &ErrorBody{}},
		{"error null", `{"error":null}`, &ErrorBody{Message: `{"error":null}`}},
		{"other JSON", `{"detail":"Not Found"}`, &ErrorBody{Message: `{"detail":"Not Found"}`}},
		{"type only", `{"error":{"type":"server_error"}}`, &ErrorBody{Type: "server_error"}},
		{"long text cut on a rune", long, &ErrorBody{Message: long[:512] + "…"}},
		{"long text cut inside a rune", "x" + long, &ErrorBody{Message: "x" + long[:510] + "…"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ParseErrorBody([]byte(tt.body))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if !utf8.ValidString(got.Message) {
				t.Errorf("message is not valid UTF-8: %q", got.Message)
			}
		})
	}
}

func TestErrorBodyError(t *testing.T) {
	if got := (&ErrorBody{Message: "m", Code: "c"}).Error(); got != "c: m" {
		t.Errorf("Error() = %q", got)
	}
	if got := (&ErrorBody{Message: "m"}).Error(); got != "m" {
		t.Errorf("Error() = %q", got)
	}
}

func TestAppendChatError(t *testing.T) {
	tests := []struct {
		name                      string
		message, typ, param, code string
		want                      string
	}{
		{"all", "bad <x>", "invalid_request_error", "messages[0]", "invalid", `{"error":{"message":"bad \u003cx\u003e","type":"invalid_request_error","param":"messages[0]","code":"invalid"}}`},
		{"nulls", "boom\n", "server_error", "", "", `{"error":{"message":"boom\n","type":"server_error","param":null,"code":null}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendChatError([]byte("data: "), tt.message, tt.typ, tt.param, tt.code)
			if diff := cmp.Diff("data: "+tt.want, string(got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			// What keel writes in band, its own decoder reads back.
			var d ChatChunkDecoder
			_, err := d.Decode(got[len("data: "):])
			want := &ErrorBody{Message: tt.message, Type: tt.typ, Param: tt.param, Code: tt.code}
			if diff := cmp.Diff(error(want), err); diff != "" {
				t.Errorf("decoded (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzParseErrorBody checks that no body panics and that a valid UTF-8
// body yields a valid UTF-8 message, short unless the vendor's own.
func FuzzParseErrorBody(f *testing.F) {
	for _, pattern := range []string{"*/error-*.json", "ollama/*.json"} {
		files, _ := filepath.Glob(filepath.Join(examples, pattern))
		for _, p := range files {
			f.Add(read(f, p))
		}
	}
	f.Add([]byte(strings.Repeat("é", 300)))
	f.Fuzz(func(t *testing.T, body []byte) {
		e := ParseErrorBody(body)
		if utf8.Valid(body) && !utf8.ValidString(e.Message) {
			t.Fatalf("message is not valid UTF-8: %q", e.Message)
		}
		if !json.Valid(body) && len(e.Message) > 512+len("…") {
			t.Fatalf("message of %d bytes from a non-JSON body", len(e.Message))
		}
	})
}
