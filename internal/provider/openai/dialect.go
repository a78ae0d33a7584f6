package openai

import (
	"crypto/sha256"

	"github.com/keel-ai/keel/internal/wire"
)

// Dialect is one kind of OpenAI-compatible server: its default address and
// how its API departs from OpenAI's (../shared/wire/README.md §5, §6).
type Dialect struct {
	Name    string
	BaseURL string
	Wire    wire.ChatDialect
	// Local servers need no API key.
	Local bool
	// KeyHeader names the header that carries the bare API key (Azure's
	// api-key). If empty, the key is sent as Authorization: Bearer.
	KeyHeader string
	// Deployments addresses models as Azure OpenAI deployments (see
	// Client.url): the dialect has no default BaseURL, and Config.APIVersion
	// applies.
	Deployments bool
	// NoEmbeddings is set for servers without an embeddings endpoint: Embed
	// fails at once, and Embeds reports false.
	NoEmbeddings bool
	// EmbedBase64 asks the server for base64 vectors: exact, less than half
	// the size of decimal text and a sixth of its decoding time. Servers not
	// known to take encoding_format get the default, float.
	EmbedBase64 bool
}

// Dialects lists the OpenAI-compatible servers keel knows by name.
var Dialects = map[string]Dialect{
	"openai": {Name: "openai", BaseURL: "https://api.openai.com/v1", EmbedBase64: true},
	// azure is Azure OpenAI: base_url is the resource,
	// https://{resource}.openai.azure.com, and a target's model is its
	// deployment name (azure.go).
	"azure":      {Name: "azure", KeyHeader: "api-key", Deployments: true, EmbedBase64: true},
	"groq":       {Name: "groq", BaseURL: "https://api.groq.com/openai/v1", NoEmbeddings: true},
	"deepseek":   {Name: "deepseek", BaseURL: "https://api.deepseek.com/v1", Wire: maxTokens, NoEmbeddings: true},
	"together":   {Name: "together", BaseURL: "https://api.together.xyz/v1", Wire: maxTokens},
	"openrouter": {Name: "openrouter", BaseURL: "https://openrouter.ai/api/v1", Wire: maxTokens},
	"mistral": {Name: "mistral", BaseURL: "https://api.mistral.ai/v1", Wire: wire.ChatDialect{
		MaxTokensField: "max_tokens", SeedField: "random_seed", Strict: true, NoStreamUsage: true,
		ToolCallID: MistralToolCallID, Prefill: wire.PrefillPrefix,
	}},
	"ollama": {Name: "ollama", BaseURL: "http://127.0.0.1:11434/v1", Wire: maxTokens, Local: true, EmbedBase64: true},
	"vllm": {Name: "vllm", BaseURL: "http://127.0.0.1:8000/v1", Local: true, EmbedBase64: true,
		Wire: wire.ChatDialect{MaxTokensField: "max_tokens", Prefill: wire.PrefillVLLM}},
	// sim is keel's own simulator (keel sim, at its default address), which
	// continues a trailing assistant message unless a profile says
	// otherwise.
	"sim":      {Name: "sim", BaseURL: "http://127.0.0.1:9090/v1", Local: true, EmbedBase64: true, Wire: wire.ChatDialect{Prefill: wire.PrefillTrailing}},
	"llamacpp": {Name: "llamacpp", BaseURL: "http://127.0.0.1:8080/v1", Wire: maxTokens, Local: true, EmbedBase64: true},
	"lmstudio": {Name: "lmstudio", BaseURL: "http://127.0.0.1:1234/v1", Wire: maxTokens, Local: true},
}

// maxTokens is the dialect of servers that predate max_completion_tokens.
var maxTokens = wire.ChatDialect{MaxTokensField: "max_tokens"}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// MistralToolCallID maps any tool-call id onto the exactly nine
// alphanumerics Mistral accepts (its 422 otherwise:
// mistral/error-422-tool-call-id.json). Ids that already fit are kept; others
// are hashed, so an assistant's call and the tool result that answers it
// still match.
func MistralToolCallID(id string) string {
	if len(id) == 9 && isAlnum(id) {
		return id
	}
	h := sha256.Sum256([]byte(id))
	b := make([]byte, 9)
	for i := range b {
		b[i] = base62[int(h[i])%len(base62)]
	}
	return string(b)
}

func isAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}
