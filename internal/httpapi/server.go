// Package httpapi serves keel's client APIs: routes, request decoding,
// JSON and SSE encoding, and the mapping of errors to statuses.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keel-ai/keel/internal/auth"
	"github.com/keel-ai/keel/internal/chat"
	"github.com/keel-ai/keel/internal/router"
	"github.com/keel-ai/keel/internal/turn"
	"github.com/keel-ai/keel/internal/wire"
)

// Authenticator checks a request's credentials.
type Authenticator interface {
	Authenticate(ctx context.Context, h http.Header) (*chat.Key, error)
}

// Config holds the Server's dependencies.
type Config struct {
	Turns  *turn.Runner
	Router *router.Router
	// Auth checks API keys. Nil means keel is open (loopback, no keys).
	Auth Authenticator
	// Responses stores Responses-API responses for previous_response_id.
	// Nil makes /v1/responses stateless.
	Responses chat.ResponseStore
	// Simulated names the providers that are keel's simulator, labelled as
	// such in /v1/models.
	Simulated map[string]bool
	// MaxBodyBytes bounds a request body.
	MaxBodyBytes int64
	Log          *slog.Logger
	// Registry receives keel's metrics and is served at /metrics.
	Registry *prometheus.Registry
	// Ready reports whether keel can take traffic (its store is up and it
	// is not draining).
	Ready func() bool
}

// Server is keel's HTTP front door.
type Server struct {
	cfg     Config
	mux     *http.ServeMux
	idBase  string
	idSeq   atomic.Uint64
	metrics *metrics
}

// New returns a Server.
func New(cfg Config) *Server {
	var b [6]byte
	rand.Read(b[:])
	s := &Server{cfg: cfg, mux: http.NewServeMux(), idBase: "req_" + hex.EncodeToString(b[:]), metrics: newMetrics(cfg.Registry)}
	chatAPI := wire.ChatAPI{}
	s.mux.HandleFunc("POST /v1/chat/completions", s.api(chatAPI, s.serveTurn(chatAPI)))
	s.mux.HandleFunc("GET /v1/models", s.api(chatAPI, s.models))
	s.mux.HandleFunc("POST /v1/embeddings", s.api(chatAPI, s.embeddings))
	s.mux.HandleFunc("POST /v1/responses", s.api(wire.ResponsesAPI{}, s.responses))
	messagesAPI := wire.MessagesAPI{}
	s.mux.HandleFunc("POST /v1/messages", s.api(messagesAPI, s.serveTurn(messagesAPI)))
	s.mux.HandleFunc("POST /v1/messages/count_tokens", s.api(messagesAPI, s.countTokens))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	s.mux.HandleFunc("GET /readyz", s.readyz)
	if cfg.Registry != nil {
		cfg.Registry.MustRegister(newTargetCollector(cfg.Router.Status))
		s.mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{}))
	}
	s.mux.HandleFunc("GET /keel/status", s.api(chatAPI, s.status))
	s.mux.HandleFunc("/v1/", s.api(chatAPI, func(w http.ResponseWriter, r *http.Request) int {
		return writeError(w, chatAPI, chat.Errorf(chat.ENotFound, "no such endpoint: %s %s", r.Method, r.URL.Path))
	}))
	return s
}

// ServeHTTP tags every response with a request id and recovers from panics.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := s.requestID()
	h := w.Header()
	h.Set("X-Request-Id", id)
	h.Set("Request-Id", id) // the name Anthropic's SDKs read
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.cfg.Log.Error("panic serving request", "path", r.URL.Path, "panic", p)
			writeError(w, wire.ChatAPI{}, chat.Errorf(chat.EInternal, "panic"))
		}
	}()
	s.mux.ServeHTTP(w, r)
}

// requestID returns a process-unique id: a random boot prefix and a counter,
// cheaper than random bytes per request.
func (s *Server) requestID() string {
	return s.idBase + strconv.FormatUint(s.idSeq.Add(1), 36)
}

// handler serves one API call and returns the status it answered with.
type handler func(w http.ResponseWriter, r *http.Request) int

// api wraps an API handler with authentication and metrics; errors are
// written in format's shape.
func (s *Server) api(format clientAPI, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if s.cfg.Auth != nil {
			k, err := s.cfg.Auth.Authenticate(r.Context(), r.Header)
			if err != nil {
				s.metrics.observe(r.Pattern, writeError(w, format, err), start)
				return
			}
			r = r.WithContext(auth.WithKey(r.Context(), k))
		}
		s.metrics.observe(r.Pattern, h(w, r), start)
	}
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Ready != nil && !s.cfg.Ready() {
		http.Error(w, "not ready\n", http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, "ready\n")
}

// status serves every target's breaker state and latency estimates.
func (s *Server) status(w http.ResponseWriter, r *http.Request) int {
	return writeJSON(w, http.StatusOK, map[string]any{"targets": s.cfg.Router.Status()})
}

type modelList struct {
	Object string      `json:"object"`
	Data   []modelInfo `json:"data"`
}

type modelInfo struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
	// Simulated marks the built-in simulator's models: they are not real.
	Simulated bool `json:"simulated,omitempty"`
}

func (s *Server) models(w http.ResponseWriter, r *http.Request) int {
	out := modelList{Object: "list", Data: []modelInfo{}}
	for _, m := range s.cfg.Router.Models() {
		mi := modelInfo{ID: m.Name, Object: "model", OwnedBy: m.Provider}
		if s.cfg.Simulated[m.Provider] {
			mi.OwnedBy, mi.Simulated = "keel-simulator (SIMULATED: not a real model)", true
		}
		out.Data = append(out.Data, mi)
	}
	return writeJSON(w, http.StatusOK, out)
}
