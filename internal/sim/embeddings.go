package sim

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
)

// This file is OpenAI's embeddings endpoint (POST /v1/embeddings): one
// deterministic unit vector per input, under the same profiles as chat.
//
// The vector depends only on the input, never on the model, so two
// simulated models embed alike (failover relies on it); see Embedding.
// Latency is the profile's headers distribution: the whole answer is
// sent with the headers. Faults apply as to a non-streamed chat answer:
// http_error, flap, context_length and content_filter answer their error
// (context_length names the input); reset and hang; stall pauses before
// the body; cut sends half of it and aborts; malformed sends half of it
// and ends cleanly. no_done, reject_prefill and restart do not apply.

// The embeddings limits. Requests beyond them get OpenAI's 400.
const (
	// EmbedDimensions is the length of a vector when the request sets no
	// dimensions.
	EmbedDimensions = 64
	// MaxEmbedDimensions is the largest dimensions a request may ask for,
	// text-embedding-3-large's size.
	MaxEmbedDimensions = 3072
	// MaxEmbedInputs is the most inputs one request may hold.
	MaxEmbedInputs = 2048
)

// Embedding returns the simulator's embedding of input in dims dimensions
// (EmbedDimensions if dims <= 0): a unit vector whose components are drawn
// from a hash of the input's bytes. Component i does not depend on dims,
// so a shorter embedding is a longer one's prefix, renormalized, as with
// OpenAI's dimensions parameter.
func Embedding(input string, dims int) []float32 {
	if dims <= 0 {
		dims = EmbedDimensions
	}
	v := make([]float32, dims)
	embed(v, hashString(0, input))
	return v
}

// embed fills v with the unit vector of digest h.
func embed(v []float32, h uint64) {
	var norm float64
	for i := range v {
		x := float64(int64(mix(h^uint64(i+1)*0x9E3779B97F4A7C15))>>11) / (1 << 52) // [-1, 1)
		v[i] = float32(x)
		norm += x * x
	}
	if norm == 0 {
		v[0], norm = 1, 1
	}
	scale := 1 / math.Sqrt(norm)
	for i := range v {
		v[i] = float32(float64(v[i]) * scale)
	}
}

type embedRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	Dimensions     *int            `json:"dimensions"`
	EncodingFormat *string         `json:"encoding_format"`
}

// embedInput is one input as the engine sees it: its digest, and the
// tokens it counts for.
type embedInput struct {
	h      uint64
	tokens int
}

// embedJob is a decoded embeddings request.
type embedJob struct {
	model  string
	inputs []embedInput
	dims   int
	base64 bool
}

// openAIEmbeddings serves POST /v1/embeddings.
func (s *Server) openAIEmbeddings(w http.ResponseWriter, r *http.Request) {
	arrived := s.now()
	job, invalid := decodeEmbed(w, r)
	prof, pname, found := s.profile(job.model, r.Header.Get("X-Sim-Profile"))
	rn := run{
		s:   s,
		ctx: r.Context(),
		w:   w,
		rc:  http.NewResponseController(w),
		enc: &openAI{model: job.model}, // for error bodies only
		buf: make([]byte, 0, 64+len(job.inputs)*job.dims*12),
		rec: Attempt{
			Model:       job.model,
			Profile:     pname,
			Arrived:     arrived,
			RequestID:   r.Header.Get("X-Request-Id"),
			KeelAttempt: r.Header.Get("X-Keel-Attempt"),
		},
	}
	first, start := s.arrive(&rn)
	defer rn.end()
	switch {
	case !found:
		rn.fail(&failure{status: 400, kind: failInvalid, param: "x-sim-profile",
			message: "unknown simulator profile " + strconv.Quote(pname)})
		return
	case invalid != nil:
		rn.fail(invalid)
		return
	}

	n := rn.rec.Number
	var draws, lat prng
	draws.seed(s.cfg.Seed, job.model, n, 1)
	lat.seed(s.cfg.Seed, job.model, n, 0)
	f := pick(prof.Faults, n, &draws, arrived, first, start)
	headers := prof.Headers.sample(&lat)
	if f != nil {
		rn.rec.Fault = f.name()
		if f.Kind == FaultHang {
			<-rn.ctx.Done()
			return
		}
	}
	if !rn.wait(headers) {
		return
	}
	if f != nil && f.Kind == FaultReset {
		rn.reset()
		return
	}
	if f != nil {
		if fl, ok := failureOf(f); ok {
			if fl.kind == failContextLength {
				fl.param = "input"
				if fl.message == "" {
					fl.message = "This model's maximum context length is 8192 tokens, however you requested 9000 tokens (9000 in your prompt; 0 for the completion). Please reduce your prompt; or completion length."
				}
			}
			rn.fail(&fl)
			return
		}
		if f.Kind == FaultStall && !rn.stall(f.For) {
			return
		}
	}
	body := appendEmbeddings(rn.buf[:0], &job)
	rn.header(200, "application/json")
	rn.rec.FirstToken = rn.rec.Headers
	switch {
	case f != nil && f.Kind == FaultCut:
		rn.emit(body[:len(body)/2])
		rn.abort()
	case f != nil && f.Kind == FaultMalformed:
		rn.emit(body[:len(body)/2])
		return
	}
	rn.emit(body)
	rn.flush()
	rn.rec.Completed = !rn.broken
}

// decodeEmbed decodes an embeddings request. It returns a failure for
// requests OpenAI would reject with 400; the job's model is set whenever
// the body had one, for the attempt log.
func decodeEmbed(w http.ResponseWriter, r *http.Request) (embedJob, *failure) {
	var er embedRequest
	job := embedJob{dims: EmbedDimensions}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&er); err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return job, &failure{status: 413, kind: failInvalid, message: "Request body too large."}
		case errors.Is(err, io.EOF):
			return job, &failure{status: 400, kind: failInvalid, message: "We could not parse the JSON body of your request: the body is empty."}
		}
		return job, &failure{status: 400, kind: failInvalid, message: "We could not parse the JSON body of your request. (" + err.Error() + ")"}
	}
	job.model = er.Model
	if er.Model == "" {
		return job, &failure{status: 400, kind: failInvalid, param: "model", message: "you must provide a model parameter"}
	}
	if d := er.Dimensions; d != nil {
		if *d < 1 || *d > MaxEmbedDimensions {
			return job, &failure{status: 400, kind: failInvalid, param: "dimensions",
				message: "Invalid 'dimensions': expected a value between 1 and " + strconv.Itoa(MaxEmbedDimensions) + ", but got " + strconv.Itoa(*d) + " instead."}
		}
		job.dims = *d
	}
	if e := er.EncodingFormat; e != nil {
		switch *e {
		case "float":
		case "base64":
			job.base64 = true
		default:
			return job, &failure{status: 400, kind: failInvalid, param: "encoding_format",
				message: "Invalid value: " + strconv.Quote(*e) + ". Supported values are: 'float' and 'base64'."}
		}
	}
	inputs, fl := decodeEmbedInputs(er.Input)
	if fl != nil {
		return job, fl
	}
	job.inputs = inputs
	return job, nil
}

// decodeEmbedInputs reads OpenAI's four input shapes: a string, strings,
// a token array, or token arrays. A token array is hashed by its tokens.
func decodeEmbedInputs(raw json.RawMessage) ([]embedInput, *failure) {
	bad := &failure{status: 400, kind: failInvalid, param: "input",
		message: "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference."}
	if len(raw) == 0 || raw[0] == 'n' {
		return nil, bad
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		if one == "" {
			return nil, bad
		}
		return []embedInput{textInput(one)}, nil
	}
	var tokens []int
	if json.Unmarshal(raw, &tokens) == nil {
		if len(tokens) == 0 {
			return nil, bad
		}
		return []embedInput{tokenInput(tokens)}, nil
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil || len(items) == 0 {
		return nil, bad
	}
	if len(items) > MaxEmbedInputs {
		return nil, &failure{status: 400, kind: failInvalid, param: "input",
			message: "Too many inputs. The max number of inputs is " + strconv.Itoa(MaxEmbedInputs) + ". We recommend sending multiple requests."}
	}
	text := items[0][0] == '"'
	out := make([]embedInput, len(items))
	for i, it := range items {
		if text {
			var s string
			if json.Unmarshal(it, &s) != nil || s == "" {
				return nil, bad
			}
			out[i] = textInput(s)
			continue
		}
		var ts []int
		if json.Unmarshal(it, &ts) != nil || len(ts) == 0 {
			return nil, bad
		}
		out[i] = tokenInput(ts)
	}
	return out, nil
}

func textInput(s string) embedInput {
	_, words := digest(s)
	return embedInput{h: hashString(0, s), tokens: max(words, 1)}
}

func tokenInput(ts []int) embedInput {
	h := hashString(0, "tokens:")
	for _, t := range ts {
		h = (h ^ uint64(t)) * fnvPrime
	}
	return embedInput{h: h, tokens: len(ts)}
}

// appendEmbeddings appends the response body of job. Numbers are written
// as Python writes them (shortest form, exponent below 1e-4), as OpenAI's
// are, so that clients meet exponents.
func appendEmbeddings(b []byte, job *embedJob) []byte {
	v := make([]float32, job.dims)
	raw := make([]byte, 0, 4*job.dims)
	b = append(b, `{"object":"list","data":[`...)
	tokens := 0
	for i, in := range job.inputs {
		tokens += in.tokens
		embed(v, in.h)
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"object":"embedding","index":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `,"embedding":`...)
		if job.base64 {
			raw = raw[:0]
			for _, x := range v {
				raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(x))
			}
			b = append(b, '"')
			b = base64.StdEncoding.AppendEncode(b, raw)
			b = append(b, '"')
		} else {
			b = append(b, '[')
			for j, x := range v {
				if j > 0 {
					b = append(b, ',')
				}
				b = strconv.AppendFloat(b, float64(x), 'g', -1, 32)
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	b = append(b, `],"model":`...)
	b = appendString(b, job.model)
	b = append(b, `,"usage":{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(tokens), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(tokens), 10)
	return append(b, "}}\n"...)
}
