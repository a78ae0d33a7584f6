package httpapi

import (
	"net/http"
	"time"

	"github.com/keel-ai/keel/internal/turn"
	"github.com/keel-ai/keel/internal/wire"
)

// embeddings serves POST /v1/embeddings (OpenAI format), routed to the
// embedding-capable targets of the model's route.
func (s *Server) embeddings(w http.ResponseWriter, r *http.Request) int {
	start := time.Now()
	api := wire.ChatAPI{} // the same error envelope
	body, err := s.readBody(w, r)
	if err != nil {
		return writeError(w, api, err)
	}
	req, err := wire.DecodeEmbedRequest(body)
	if err != nil {
		return writeError(w, api, err)
	}
	m := turn.Meta{ID: w.Header().Get("X-Request-Id"), API: "embeddings", Start: start, KeyID: keyID(r)}
	out, finish, err := s.cfg.Turns.Embed(r.Context(), m, &req.EmbedRequest)
	if err != nil {
		status := writeError(w, api, err)
		finish(status, err)
		return status
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(wire.AppendEmbeddings(nil, out, req.Format))
	finish(http.StatusOK, nil)
	return http.StatusOK
}
