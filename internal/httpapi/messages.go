package httpapi

import (
	"net/http"

	"github.com/keel-ai/keel/internal/llm"
	"github.com/keel-ai/keel/internal/wire"
)

// countTokens serves POST /v1/messages/count_tokens (Anthropic). The route's
// first target counts when it can (llm.TokenCounter: Anthropic's own
// endpoint); otherwise keel answers llm.EstimateTokens' approximation and
// says so in the x-keel-token-count header ("upstream" or "estimate").
func (s *Server) countTokens(w http.ResponseWriter, r *http.Request) int {
	api := wire.MessagesAPI{}
	body, err := s.readBody(w, r)
	if err != nil {
		return writeError(w, api, err)
	}
	req, err := wire.DecodeMessagesCountRequest(body)
	if err != nil {
		return writeError(w, api, err)
	}
	route, err := s.cfg.Router.Resolve(req.Model)
	if err != nil {
		return writeError(w, api, err)
	}
	n, how := 0, "estimate"
	t := route.Targets[0]
	if c, ok := t.Provider.(llm.TokenCounter); ok {
		up := *req
		up.Model = t.Model
		if got, err := c.CountTokens(r.Context(), &up); err == nil {
			n, how = got, "upstream"
		} else {
			s.cfg.Log.Warn("count_tokens upstream failed; estimating", "target", t.String(), "err", err)
		}
	}
	if how == "estimate" {
		n = llm.EstimateTokens(req)
	}
	w.Header().Set("X-Keel-Token-Count", how)
	return writeJSON(w, http.StatusOK, map[string]int{"input_tokens": n})
}
