// Package sim is the provider simulator: an http.Handler that speaks a
// vendor's wire format and stands in for external LLM vendors in keel's
// tests, benchmarks and chaos drills. It injects latency and faults per
// model name, deterministically from a seed, and logs every attempt.
//
// It speaks three vendors' formats at once, with the same answers, faults
// and attempt log in each:
//
//	POST /v1/chat/completions   OpenAI Chat Completions, streaming and not
//	POST /v1/embeddings         OpenAI embeddings (deterministic vectors)
//	POST /v1/messages           Anthropic Messages, streaming and not
//	POST /v1beta/models/{m}:generateContent, :streamGenerateContent?alt=sse  Gemini
//	GET  /v1/models             the configured profile names
//	GET  /sim/attempts?model=X  the attempt log as JSON ("" = all models)
//	POST /sim/reset             clear the log, counters and flap clocks
//
// The scenario engine (profile.go, fault.go, reply.go, play.go, log.go)
// knows nothing of wire formats; openai.go, anthropic.go and gemini.go
// decode requests into the engine's request and render its replies.
//
// # Answers
//
// The answer depends only on the request's messages, never on the model,
// so two simulated models give the identical answer (mid-stream failover
// relies on it). It is Answer(PromptOf(texts of all messages), tokens):
// words from a fixed vocabulary picked by a hash of the prompt's words,
// each token a word and a space, the last ending in "." — so a truncated
// answer is always detectable.
//
//   - Prefill: if the last message is from the assistant and its text is a
//     prefix of the canonical answer to the messages before it, the reply
//     continues exactly where the prefill ends (possibly mid-word). Other
//     assistant-final requests are answered as an ordinary turn. Profiles
//     may instead reject prefill (reject_prefill, 400) or ignore it and
//     start over (restart).
//   - Tools: with tools and tool_choice other than "none", unless the last
//     message is a tool result or an assistant prefill, the reply is one
//     call to the named (else the first) tool, id "call_" plus a
//     deterministic suffix, with arguments built from its parameter schema
//     (every listed property: string → a word, number/integer → a number,
//     boolean → true, array → [], object → its properties) and streamed in
//     fragments; finish_reason "tool_calls".
//   - response_format json_object gives {"answer": "<canonical text>"},
//     json_schema an instance of the schema, both streamed in fragments.
//   - max_tokens / max_completion_tokens stop the reply early with
//     finish_reason "length". Usage counts prompt words and pieces sent.
//
// # Profiles and the YAML format
//
// A Config maps model names to Profiles; unknown model names get the
// default profile, and a request can pick any profile by name with the
// x-sim-profile header. LoadConfig reads YAML (snake_case keys; see
// testdata/example.yaml for every option with comments):
//
//	seed: 42                # seeds latencies and rate faults
//	log_limit: 10000        # attempts kept in the log; negative disables
//	builtin: true           # include the built-in profiles (default true)
//	default: sim            # a profile name, or an inline profile
//	profiles:
//	  gpt-4o-mini:
//	    base: sim-fast      # start from another profile (file or built-in)
//	    headers: {dist: lognormal, median: 150ms, sigma: 0.5, max: 2s}
//	    ttft: 250ms         # a bare value is a fixed distribution
//	    tps: {dist: uniform, min: 40, max: 80}   # tokens/s; 0 = unlimited
//	    tokens: 24
//	    reject_prefill: false
//	    restart: false
//	    faults:
//	      - {kind: http_error, status: 429, retry_after: 2s, attempts: [1, 2]}
//	      - {kind: cut, after: 5, rate: 0.1}
//
// Latencies (headers: arrival to response headers; ttft: headers to first
// token; tps: streaming speed) are distributions: fixed (value), uniform
// (min, max) or lognormal (median, sigma, optional min/max clamp). Each
// attempt samples them from a PCG generator seeded by (seed, model,
// attempt number), so a run is reproducible.
//
// Built-in profiles (Builtin): sim (realistic, the default), sim-fast,
// sim-zero (no latency; the benchmark baseline) and sim-heavytail.
//
// # Faults
//
// A profile's faults are tried in order on every attempt and the first
// that applies is injected. A fault applies when always is true, when the
// model's 1-based attempt number (counted since the last Reset) is listed
// in attempts, or with probability rate (a seeded draw per attempt); flap
// faults apply by the clock instead. Kinds: http_error (status,
// retry_after, retry_after_date, retry_after_ms, should_retry, code, type,
// message), reset, hang, cut (after), stall (after, for), malformed
// (after), no_done, context_length, content_filter and flap (down, start,
// every, from_start). See FaultKind for what each does.
//
// # Time
//
// Delays use time.NewTimer and end early when the client goes away, so
// tests run them under testing/synctest. Timestamps, flap windows and
// Retry-After dates use the clock from WithClock.
package sim
