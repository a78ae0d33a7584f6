package sim

import "net/http"

// openAIEmbeddings serves OpenAI embeddings. Issue 4 fills this in.
func (s *Server) openAIEmbeddings(w http.ResponseWriter, r *http.Request) {
	writeOpenAIError(w, http.StatusNotFound, "invalid_request_error", "unknown_url", "not implemented yet")
}
