// Package drill is keel's chaos drill (issue 3): it sends a load of
// distinct prompts through keel's OpenAI-compatible API while the
// simulator behind keel injects every class of fault, and judges every
// answer byte for byte against the simulator's canonical answer for its
// prompt. A reliable gateway gives complete answers only; where it cannot,
// it says so explicitly. It never ends cleanly with a truncated answer, and
// never splices a continuation into text no model wrote.
//
// Run drives the load and returns one Result per request; Summarize folds
// the results and the simulator's attempt log into a Report; Chaos and
// HedgeProfiles are the simulator setups. Starting keel and the simulator
// is cmd/keel's job (keel drill).
package drill

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keel-ai/keel/internal/sim"
)

// Mode chooses which requests ask for a stream.
type Mode uint8

// The modes.
const (
	// Mixed streams every other request: half streaming, half not.
	Mixed Mode = iota
	// Streaming streams every request.
	Streaming
	// Whole streams none.
	Whole
)

// Config configures one run of load. The zero value of each field but URL
// and Model takes the default noted.
type Config struct {
	// URL is keel's API root, including /v1.
	URL string
	// Model is the route to ask for.
	Model string
	// Requests is how many requests to send. If zero, 2000.
	Requests int
	// Concurrency caps the requests in flight. If zero, 200.
	Concurrency int
	// Rate, if positive, starts requests at this many per second (open
	// loop, still capped by Concurrency), as latency measurements need;
	// zero sends each request as soon as a slot is free.
	Rate float64
	// Mode chooses which requests stream.
	Mode Mode
	// Tokens is the simulated answer length, to compute the canonical
	// answers. If zero, sim.DefaultTokens.
	Tokens int
	// Prefix starts every prompt, so that different runs ask different
	// questions. Prompts are distinct within a run in any case.
	Prefix string
	// Timeout bounds each request. If zero, 2m.
	Timeout time.Duration
}

func (c Config) defaults() Config {
	if c.Requests == 0 {
		c.Requests = 2000
	}
	if c.Concurrency == 0 {
		c.Concurrency = 200
	}
	if c.Tokens == 0 {
		c.Tokens = sim.DefaultTokens
	}
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Minute
	}
	return c
}

// Result is one request of a run and what its client got.
type Result struct {
	// Index numbers the request within its run, from 0.
	Index  int    `json:"index"`
	Prompt string `json:"prompt"`
	Stream bool   `json:"stream"`
	Reply  Reply  `json:"reply"`
	// Want is the canonical answer.
	Want    string  `json:"want"`
	Verdict Verdict `json:"verdict"`
	// Latency is from sending the request to the end of the response.
	Latency time.Duration `json:"latency_ns"`
	// TTFT is from sending the request to its first text; zero if none.
	TTFT time.Duration `json:"ttft_ns,omitempty"`
	// RequestID and Target are keel's x-request-id and x-keel-target.
	RequestID string `json:"request_id,omitempty"`
	Target    string `json:"target,omitempty"`
}

// Prompt returns the prompt of request i of a run with prefix. Tag finds
// the request's tag ("drill-<i>") in it.
func Prompt(prefix string, i int) string {
	return strings.TrimSpace(fmt.Sprintf("%s drill-%d please answer this question", prefix, i))
}

// Want returns the canonical answer to a one-message prompt.
func Want(prompt string, tokens int) string {
	return strings.Join(sim.Answer(sim.PromptOf(prompt), tokens), "")
}

// errTimeout is the cause with which a request's own deadline ends it.
var errTimeout = errors.New("drill: the request's timeout passed")

// Run sends cfg.Requests requests through keel and judges each answer. It
// returns when every request has ended, or early with ctx's error; results
// are indexed by request.
func Run(ctx context.Context, hc *http.Client, cfg Config) ([]Result, error) {
	cfg = cfg.defaults()
	out := make([]Result, cfg.Requests)
	var wg sync.WaitGroup
	if cfg.Rate <= 0 {
		var next atomic.Int64
		for range min(cfg.Concurrency, cfg.Requests) {
			wg.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= cfg.Requests || ctx.Err() != nil {
						return
					}
					out[i] = cfg.do(ctx, hc, i)
				}
			})
		}
		wg.Wait()
		return out, ctx.Err()
	}
	// Open loop: request i starts at i/Rate, or as soon after as a slot
	// frees up.
	slots := make(chan struct{}, cfg.Concurrency)
	start := time.Now()
	t := time.NewTimer(0)
	defer t.Stop()
	for i := range cfg.Requests {
		t.Reset(time.Until(start.Add(time.Duration(float64(i) / cfg.Rate * float64(time.Second)))))
		select {
		case <-t.C:
		case <-ctx.Done():
			wg.Wait()
			return out, ctx.Err()
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return out, ctx.Err()
		}
		wg.Go(func() {
			defer func() { <-slots }()
			out[i] = cfg.do(ctx, hc, i)
		})
	}
	wg.Wait()
	return out, ctx.Err()
}

type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type request struct {
	Model    string    `json:"model"`
	Stream   bool      `json:"stream"`
	Messages []message `json:"messages"`
}

// do sends request i and judges the answer.
func (c Config) do(ctx context.Context, hc *http.Client, i int) (r Result) {
	r = Result{Index: i, Prompt: Prompt(c.Prefix, i)}
	switch c.Mode {
	case Mixed:
		r.Stream = i%2 == 0
	case Streaming:
		r.Stream = true
	}
	r.Want = Want(r.Prompt, c.Tokens)
	body, _ := json.Marshal(request{Model: c.Model, Stream: r.Stream, Messages: []message{{Role: "user", Content: r.Prompt}}})
	ctx, cancel := context.WithTimeoutCause(ctx, c.Timeout, errTimeout)
	defer cancel()
	start := time.Now()
	defer func() {
		r.Latency = time.Since(start)
		r.Verdict = Judge(r.Reply, r.Want)
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.URL, "/")+"/chat/completions", bytes.NewReader(body))
	if err != nil {
		r.Reply = transportReply(err, false)
		return r
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		r.Reply = transportReply(err, context.Cause(ctx) == errTimeout)
		return r
	}
	defer resp.Body.Close()
	r.RequestID, r.Target = resp.Header.Get("X-Request-Id"), resp.Header.Get("X-Keel-Target")
	if resp.StatusCode == http.StatusOK && r.Stream {
		r.Reply = ReadStream(resp.Body, func() { r.TTFT = time.Since(start) })
		if context.Cause(ctx) == errTimeout && !r.Reply.Clean {
			r.Reply.ErrKind = "client timeout"
		}
		return r
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.Reply = transportReply(err, context.Cause(ctx) == errTimeout)
		r.Reply.Status = resp.StatusCode
		return r
	}
	r.Reply = ReadWhole(resp.StatusCode, b)
	return r
}

// tagRE finds a drill request's tag in an upstream request body.
var tagRE = regexp.MustCompile(`drill-[0-9]+`)

// Tag wraps the simulator so that its attempt log ties every upstream
// attempt to the drill request it serves: it copies the prompt's tag
// ("drill-<i>") into the X-Request-Id header, which the simulator records
// as Attempt.RequestID.
func Tag(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.Body != nil {
			b, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
			r.Body.Close()
			if err != nil {
				http.Error(w, "drill: reading the request body: "+err.Error(), http.StatusBadRequest)
				return
			}
			if tag := tagRE.Find(b); tag != nil {
				r.Header.Set("X-Request-Id", string(tag))
			}
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		h.ServeHTTP(w, r)
	})
}

// tagOf is the tag of request i, as Tag records it.
func tagOf(i int) string { return fmt.Sprintf("drill-%d", i) }
