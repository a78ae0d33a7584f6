package sim

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Server is the simulator: an http.Handler serving the vendor endpoints
// and the attempt log. It is safe for concurrent use.
type Server struct {
	cfg      Config
	profiles map[string]*Profile // by model name; read-only after New
	def      *Profile
	names    []string // sorted profile names
	now      func() time.Time
	log      *slog.Logger

	mu       sync.Mutex
	models   map[string]*modelState // guarded by mu
	start    time.Time              // guarded by mu; New or the last Reset
	gen      uint64                 // guarded by mu; bumped by Reset
	attempts attemptLog             // guarded by mu
}

// modelState is what the Server remembers per model name between attempts.
type modelState struct {
	attempts int       // attempts so far
	first    time.Time // arrival of the first attempt (flap origin)
}

// Option configures a Server.
type Option func(*Server)

// WithClock sets the clock used for attempt timestamps, flap windows,
// "created" fields and Retry-After dates. Delays always use timers (which
// testing/synctest fakes). The default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(s *Server) { s.now = now }
}

// WithLogger sets the logger. Each attempt is logged at debug level,
// without prompts or answers. The default discards everything.
func WithLogger(l *slog.Logger) Option {
	return func(s *Server) { s.log = l }
}

// New returns a simulator for cfg. It does not validate cfg: call
// cfg.Validate first (LoadConfig does). The Server keeps its own copy of
// the profiles.
func New(cfg Config, opts ...Option) *Server {
	s := &Server{
		cfg:      cfg,
		profiles: make(map[string]*Profile, len(cfg.Profiles)),
		now:      time.Now,
		log:      slog.New(slog.DiscardHandler),
		models:   make(map[string]*modelState),
	}
	for name, p := range cfg.Profiles {
		p.Faults = slices.Clone(p.Faults)
		s.profiles[name] = &p
	}
	def := cfg.Default
	def.Faults = slices.Clone(def.Faults)
	s.def = &def
	s.names = slices.Sorted(maps.Keys(cfg.Profiles))
	for _, o := range opts {
		o(s)
	}
	s.attempts.limit = cfg.LogLimit
	if s.attempts.limit == 0 {
		s.attempts.limit = 10000
	}
	s.start = s.now()
	return s
}

// profile returns the profile for a request: the one named by the
// x-sim-profile header if set (found is false if there is none), else the
// model's, else the default.
func (s *Server) profile(model, override string) (p *Profile, name string, found bool) {
	if override != "" {
		p, ok := s.profiles[override]
		return p, override, ok
	}
	if p, ok := s.profiles[model]; ok {
		return p, model, true
	}
	return s.def, "default", true
}

// arrive numbers a new attempt of rn.rec.Model and logs it. It returns the
// model's first arrival and the Server start, the flap origins.
func (s *Server) arrive(rn *run) (first, start time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.models[rn.rec.Model]
	if st == nil {
		st = &modelState{first: rn.rec.Arrived}
		s.models[rn.rec.Model] = st
	}
	st.attempts++
	rn.rec.Number = st.attempts
	rn.gen = s.gen
	rn.seq = s.attempts.addLocked(rn.rec)
	return st.first, s.start
}

// finish records the end of attempt seq.
func (s *Server) finish(seq, gen uint64, a *Attempt) {
	s.mu.Lock()
	if gen == s.gen {
		s.attempts.setLocked(seq, *a)
	}
	s.mu.Unlock()
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("sim attempt",
			"model", a.Model, "profile", a.Profile, "attempt", a.Number,
			"status", a.Status, "fault", a.Fault, "tokens", a.Tokens,
			"completed", a.Completed, "canceled", a.Canceled,
			"request_id", a.RequestID, "duration", a.Ended.Sub(a.Arrived))
	}
}

// Attempts returns the attempt log for model ("" = all models) in arrival
// order, since the last Reset. Attempts still in flight have a zero Ended.
// The log keeps the most recent Config.LogLimit attempts.
func (s *Server) Attempts(model string) []Attempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts.listLocked(model)
}

// Reset clears the attempt log, the per-model attempt counters and the
// flap clocks: the next attempt of every model is attempt 1 again, and
// Server start (for flap faults with from_start) becomes now. Attempts in
// flight finish without being logged.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts.resetLocked()
	clear(s.models)
	s.gen++
	s.start = s.now()
}

// ServeHTTP serves
//
//	POST /v1/chat/completions  OpenAI Chat Completions (also /chat/completions)
//	POST /v1/messages          Anthropic Messages
//	POST /v1beta/models/{m}:generateContent, :streamGenerateContent  Gemini
//	POST /v1/embeddings        OpenAI embeddings
//	GET  /v1/models            the configured profile names (also /models)
//	GET  /sim/attempts?model=  the attempt log as JSON
//	POST /sim/reset            Reset
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/v1/chat/completions", "/chat/completions":
		if r.Method != http.MethodPost {
			s.methodNotAllowed(w, http.MethodPost)
			return
		}
		s.openAIChat(w, r)
	case "/v1/messages":
		if r.Method != http.MethodPost {
			s.methodNotAllowed(w, http.MethodPost)
			return
		}
		s.anthropicMessages(w, r)
	case "/v1/embeddings", "/embeddings":
		if r.Method != http.MethodPost {
			s.methodNotAllowed(w, http.MethodPost)
			return
		}
		s.openAIEmbeddings(w, r)
	case "/v1/models", "/models":
		if r.Method != http.MethodGet {
			s.methodNotAllowed(w, http.MethodGet)
			return
		}
		s.openAIModels(w)
	case "/sim/attempts":
		if r.Method != http.MethodGet {
			s.methodNotAllowed(w, http.MethodGet)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Attempts(r.URL.Query().Get("model")))
	case "/sim/reset":
		if r.Method != http.MethodPost {
			s.methodNotAllowed(w, http.MethodPost)
			return
		}
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	default:
		if strings.HasPrefix(r.URL.Path, "/v1beta/models/") && r.Method == http.MethodPost {
			s.gemini(w, r)
			return
		}
		writeOpenAIError(w, http.StatusNotFound, "invalid_request_error", "unknown_url",
			"Unknown request URL: "+r.Method+" "+r.URL.Path+".")
	}
}

func (s *Server) methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeOpenAIError(w, http.StatusMethodNotAllowed, "invalid_request_error", "method_not_allowed",
		"Method not allowed; use "+allow+".")
}
