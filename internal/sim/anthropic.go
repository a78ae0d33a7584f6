package sim

import "net/http"

// anthropicMessages serves Anthropic Messages. Issue 4 fills this in.
func (s *Server) anthropicMessages(w http.ResponseWriter, r *http.Request) {
	writeOpenAIError(w, http.StatusNotFound, "invalid_request_error", "unknown_url", "not implemented yet")
}
