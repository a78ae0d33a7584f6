package sim

import "net/http"

// gemini serves Gemini generateContent and streamGenerateContent. Issue 4
// fills this in.
func (s *Server) gemini(w http.ResponseWriter, r *http.Request) {
	writeOpenAIError(w, http.StatusNotFound, "invalid_request_error", "unknown_url", "not implemented yet")
}
