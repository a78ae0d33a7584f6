package openai

import (
	"net/url"
	"strings"

	"github.com/keel-ai/keel/internal/llm"
)

// Azure OpenAI (the "azure" dialect) speaks OpenAI's wire format at one
// URL per deployment, with the key in an api-key header:
//
//	{base}/openai/deployments/{deployment}/chat/completions?api-version={version}
//	{base}/openai/deployments/{deployment}/embeddings?api-version={version}
//
// base is the resource, https://{resource}.openai.azure.com (there is no
// default), the deployment is the target's model name, and the version is
// Config.APIVersion. With APIVersion "v1", Azure's v1 API is used instead:
// {base}/openai/v1/{op}, the deployment named by the body's model as at
// OpenAI. Keys in Authorization instead (Entra ID tokens) go in
// Config.Headers, with no Keys.
//
// Azure's content-filter refusals (400, code content_filter, with an
// innererror naming the categories) classify as llm.KindContentFilter;
// answers it cut short end with finish_reason content_filter.

// DefaultAPIVersion is the Azure OpenAI api-version used when
// Config.APIVersion is empty: the latest GA release of the dated API.
const DefaultAPIVersion = "2024-10-21"

// deploymentURL is the Azure address of operation op for deployment model.
// A base URL that already ends in /openai is taken as the resource's.
func (c *Client) deploymentURL(model, op string) string {
	base := strings.TrimSuffix(c.base, "/openai")
	v := c.cfg.APIVersion
	switch v {
	case "":
		v = DefaultAPIVersion
	case "v1":
		return base + "/openai/v1/" + op
	}
	return base + "/openai/deployments/" + url.PathEscape(model) + "/" + op + "?api-version=" + url.QueryEscape(v)
}

// preamble reports whether ev is the chunk Azure opens a stream with: no
// id, no choices, only the filter results on the prompt. It carries
// nothing to pass on, and as a first event it would name the answer ""
// (ChatEncoder takes the id and model of the first event it sees).
func preamble(ev *llm.Event) bool {
	return ev.ID == "" && ev.Text == "" && ev.Reasoning == "" && len(ev.ToolCalls) == 0 &&
		ev.Finish == "" && ev.Usage == nil
}
