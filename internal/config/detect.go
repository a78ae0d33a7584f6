package config

import "strings"

// vendorEnv lists the providers keel sets up on its own, in this order, when
// their standard environment variables exist and no providers are
// configured (issue 2: providers on first start).
var vendorEnv = []struct {
	typ     string
	keyVar  string // the API key variable; empty for local servers
	baseVar string // an optional base URL override
}{
	{"openai", "OPENAI_API_KEY", "OPENAI_BASE_URL"},
	{"anthropic", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"},
	{"gemini", "GEMINI_API_KEY", "GEMINI_BASE_URL"},
	{"mistral", "MISTRAL_API_KEY", "MISTRAL_BASE_URL"},
	{"groq", "GROQ_API_KEY", "GROQ_BASE_URL"},
	{"deepseek", "DEEPSEEK_API_KEY", "DEEPSEEK_BASE_URL"},
	{"together", "TOGETHER_API_KEY", "TOGETHER_BASE_URL"},
	{"openrouter", "OPENROUTER_API_KEY", "OPENROUTER_BASE_URL"},
	{"azure", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT"},
	{"ollama", "", "OLLAMA_HOST"},
	{"vllm", "", "VLLM_BASE_URL"},
	{"llamacpp", "", "LLAMACPP_BASE_URL"},
	{"lmstudio", "", "LMSTUDIO_BASE_URL"},
}

// Detect returns the providers whose standard environment variables are
// set: a vendor's API key, or a local server's address.
func Detect(lookup func(string) (string, bool)) []Provider {
	var ps []Provider
	for _, v := range vendorEnv {
		key, _ := lookup(v.keyVar)
		base, _ := lookup(v.baseVar)
		if key == "" && (v.keyVar != "" || base == "") {
			continue
		}
		if v.typ == "azure" && base == "" {
			continue // Azure has no default address: its endpoint is the resource's
		}
		p := Provider{Name: v.typ, Type: v.typ, BaseURL: localURL(v.typ, base)}
		if key != "" {
			p.APIKeys = []string{key}
		}
		ps = append(ps, p)
	}
	return ps
}

// localURL turns OLLAMA_HOST's host:port form into an OpenAI-compatible
// base URL; other values are used as given.
func localURL(typ, v string) string {
	if v == "" || typ != "ollama" {
		return v
	}
	if !strings.Contains(v, "://") {
		v = "http://" + v
	}
	return strings.TrimSuffix(v, "/") + "/v1"
}
