package sim

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// postEmbed sends body, JSON-encoded unless it is a []byte, to the
// embeddings endpoint; hdr is key, value pairs.
func postEmbed(ctx context.Context, t *testing.T, c *http.Client, base string, body any, hdr ...string) (*http.Response, error) {
	t.Helper()
	b, ok := body.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/embeddings", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return c.Do(req)
}

// embeddings is an embeddings response, with float or base64 vectors.
type embeddings struct {
	Object string `json:"object"`
	Data   []struct {
		Object    string          `json:"object"`
		Index     int             `json:"index"`
		Embedding json.RawMessage `json:"embedding"`
	} `json:"data"`
	Model string `json:"model"`
	Usage struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

// vectors reads the vectors of e, as a client of either format does.
func (e *embeddings) vectors(t *testing.T) [][]float32 {
	t.Helper()
	var out [][]float32
	for i, d := range e.Data {
		if d.Object != "embedding" || d.Index != i {
			t.Errorf("data[%d]: object %q, index %d", i, d.Object, d.Index)
		}
		var v []float32
		if d.Embedding[0] == '"' {
			var s string
			if err := json.Unmarshal(d.Embedding, &s); err != nil {
				t.Fatal(err)
			}
			raw, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				t.Fatal(err)
			}
			v = make([]float32, len(raw)/4)
			if err := binary.Read(bytes.NewReader(raw), binary.LittleEndian, v); err != nil {
				t.Fatal(err)
			}
		} else if err := json.Unmarshal(d.Embedding, &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func embed1(t *testing.T, c *http.Client, base string, body map[string]any, hdr ...string) *embeddings {
	t.Helper()
	resp, err := postEmbed(t.Context(), t, c, base, body, hdr...)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d, content type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	e := decodeJSON[embeddings](t, resp.Body)
	return &e
}

var bitsEqual = cmp.Comparer(func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })

func norm(v []float32) float64 {
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	return math.Sqrt(n)
}

func TestEmbeddings(t *testing.T) {
	s := newSim(nil)
	c, base := startServer(t, s)
	texts := []string{"The quick brown fox", "jumps over\nthe lazy dog", "é"}

	e := embed1(t, c, base, map[string]any{"model": "text-embedding-3-small", "input": texts})
	got := e.vectors(t)
	var want [][]float32
	for _, x := range texts {
		want = append(want, Embedding(x, 0))
	}
	if diff := cmp.Diff(want, got, bitsEqual); diff != "" {
		t.Errorf("vectors (-Embedding +served):\n%s", diff)
	}
	if e.Object != "list" || e.Model != "text-embedding-3-small" || e.Usage.PromptTokens != 4+5+1 || e.Usage.TotalTokens != 10 {
		t.Errorf("object %q, model %q, usage %+v", e.Object, e.Model, e.Usage)
	}
	for i, v := range got {
		if len(v) != EmbedDimensions || math.Abs(norm(v)-1) > 1e-6 {
			t.Errorf("vector %d: %d dimensions, norm %v", i, len(v), norm(v))
		}
	}
	if cmp.Equal(got[0], got[1]) {
		t.Error("two inputs embed alike")
	}

	b64 := embed1(t, c, base, map[string]any{"model": "other-model", "input": texts, "encoding_format": "base64"})
	if diff := cmp.Diff(got, b64.vectors(t), bitsEqual); diff != "" {
		t.Errorf("base64 vectors of another model (-float +base64):\n%s", diff)
	}

	one := embed1(t, c, base, map[string]any{"model": "m", "input": texts[0], "dimensions": 16, "encoding_format": "float"})
	short := one.vectors(t)[0]
	if len(short) != 16 || math.Abs(norm(short)-1) > 1e-6 {
		t.Fatalf("dimensions 16: %d dimensions, norm %v", len(short), norm(short))
	}
	// The short vector is the long one's prefix, renormalized.
	scale := norm(got[0][:16])
	for i, x := range short {
		if d := math.Abs(float64(x) - float64(got[0][i])/scale); d > 1e-6 {
			t.Errorf("dimension %d: %v, want %v", i, x, float64(got[0][i])/scale)
		}
	}

	tokens := embed1(t, c, base, map[string]any{"model": "m", "input": [][]int{{1, 2, 3}, {4}}})
	if v := tokens.vectors(t); len(v) != 2 || tokens.Usage.PromptTokens != 4 || cmp.Equal(v[0], v[1]) {
		t.Errorf("token arrays: %d vectors, usage %+v", len(v), tokens.Usage)
	}
	if a := s.Attempts("m")[0]; a.Status != 200 || !a.Completed || a.Stream || a.Fault != "" {
		t.Errorf("attempt = %+v", a)
	}
}

func TestEmbeddingsInvalid(t *testing.T) {
	many := make([]string, MaxEmbedInputs+1)
	for i := range many {
		many[i] = "x"
	}
	tests := []struct {
		name   string
		body   any
		status int
		param  any
	}{
		{"not JSON", []byte(`{`), 400, nil},
		{"no model", map[string]any{"input": "a"}, 400, "model"},
		{"no input", map[string]any{"model": "m"}, 400, "input"},
		{"empty input", map[string]any{"model": "m", "input": ""}, 400, "input"},
		{"empty array", map[string]any{"model": "m", "input": []string{}}, 400, "input"},
		{"empty string in array", map[string]any{"model": "m", "input": []string{"a", ""}}, 400, "input"},
		{"mixed array", map[string]any{"model": "m", "input": []any{"a", []int{1}}}, 400, "input"},
		{"too many inputs", map[string]any{"model": "m", "input": many}, 400, "input"},
		{"dimensions zero", map[string]any{"model": "m", "input": "a", "dimensions": 0}, 400, "dimensions"},
		{"dimensions too large", map[string]any{"model": "m", "input": "a", "dimensions": MaxEmbedDimensions + 1}, 400, "dimensions"},
		{"bad encoding_format", map[string]any{"model": "m", "input": "a", "encoding_format": "int8"}, 400, "encoding_format"},
	}
	s := newSim(nil)
	c, base := startServer(t, s)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := postEmbed(t.Context(), t, c, base, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			e := decodeJSON[map[string]map[string]any](t, resp.Body)
			if resp.StatusCode != tt.status || e["error"]["param"] != tt.param || e["error"]["type"] != "invalid_request_error" {
				t.Errorf("status %d, error %v; want %d naming %v", resp.StatusCode, e["error"], tt.status, tt.param)
			}
		})
	}
	resp, err := postEmbed(t.Context(), t, c, base, map[string]any{"model": "m", "input": "a"}, "X-Sim-Profile", "nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("unknown profile: status %d", resp.StatusCode)
	}
}

func TestEmbeddingsErrorFaults(t *testing.T) {
	tests := []struct {
		name    string
		fault   Fault
		status  int
		headers map[string]string
		code    any
		param   any
	}{
		{"429", Fault{Kind: FaultHTTPError, Status: 429, RetryAfter: 2 * time.Second}, 429,
			map[string]string{"Retry-After": "2"}, "rate_limit_exceeded", nil},
		{"500", Fault{Kind: FaultHTTPError, Status: 500}, 500, nil, nil, nil},
		{"context_length", Fault{Kind: FaultContextLength}, 400, nil, "context_length_exceeded", "input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fault.Always = true
			s := newSim(map[string]Profile{"m": {Faults: []Fault{tt.fault}}})
			c, base := startServer(t, s)
			resp, err := postEmbed(t.Context(), t, c, base, map[string]any{"model": "m", "input": "a"})
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			for k, v := range tt.headers {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			e := decodeJSON[map[string]map[string]any](t, resp.Body)
			if resp.StatusCode != tt.status || e["error"]["code"] != tt.code || e["error"]["param"] != tt.param {
				t.Errorf("status %d, error %v; want %d, code %v, param %v", resp.StatusCode, e["error"], tt.status, tt.code, tt.param)
			}
			if a := s.Attempts("m")[0]; a.Fault != string(tt.fault.Kind) || a.Status != tt.status || a.Completed {
				t.Errorf("attempt = %+v", a)
			}
		})
	}
}

func TestEmbeddingsBodyFaults(t *testing.T) {
	tests := []struct {
		name      string
		fault     Fault
		connErr   bool
		readErr   error
		validJSON bool
		completed bool
	}{
		{name: "reset", fault: Fault{Kind: FaultReset}, connErr: true},
		{name: "cut", fault: Fault{Kind: FaultCut}, readErr: io.ErrUnexpectedEOF},
		{name: "malformed", fault: Fault{Kind: FaultMalformed}},
		{name: "no_done does not apply", fault: Fault{Kind: FaultNoDone}, validJSON: true, completed: true},
		{name: "stall", fault: Fault{Kind: FaultStall, For: time.Millisecond}, validJSON: true, completed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fault.Always = true
			s := newSim(map[string]Profile{"m": {Faults: []Fault{tt.fault}}})
			c, base := startServer(t, s)
			resp, err := postEmbed(t.Context(), t, c, base, map[string]any{"model": "m", "input": []string{"a", "b"}})
			if tt.connErr {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("got a response (%d), want a connection error", resp.StatusCode)
				}
				if !isConnError(err) {
					t.Errorf("error %v, want a connection error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if !errors.Is(err, tt.readErr) || resp.StatusCode != 200 {
				t.Errorf("status %d, read error %v; want 200, %v", resp.StatusCode, err, tt.readErr)
			}
			if json.Valid(b) != tt.validJSON {
				t.Errorf("valid JSON = %v, want %v: %.80s", !tt.validJSON, tt.validJSON, b)
			}
			if a := s.Attempts("m")[0]; a.Fault != string(tt.fault.Kind) || a.Completed != tt.completed {
				t.Errorf("attempt = %+v", a)
			}
		})
	}
}

// TestEmbeddingsLatency checks that the answer comes whole after the
// profile's headers latency, that a stall adds to it and that a hang lasts
// until the client gives up.
func TestEmbeddingsLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fast := Builtin().Profiles["sim-fast"] // headers 5ms
		stall, hang := fast, fast
		stall.Faults = []Fault{{Kind: FaultStall, For: 3 * time.Second, Always: true}}
		hang.Faults = []Fault{{Kind: FaultHang, Always: true}}
		s := newSim(map[string]Profile{"fast": fast, "stall": stall, "hang": hang})
		c, base, stop := startPipeServer(s)
		defer stop()

		for model, want := range map[string]time.Duration{"fast": 5 * ms, "stall": 5*ms + 3*time.Second} {
			t0 := time.Now()
			resp, err := postEmbed(t.Context(), t, c, base, map[string]any{"model": model, "input": "a"})
			if err != nil {
				t.Fatal(err)
			}
			if got := time.Since(t0); got != want {
				t.Errorf("%s: headers after %v, want %v", model, got, want)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || !json.Valid(b) {
				t.Errorf("%s: body %.80s, err %v", model, b, err)
			}
		}

		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if _, err := postEmbed(ctx, t, c, base, map[string]any{"model": "hang", "input": "a"}); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("hang: err %v, want the client's deadline", err)
		}
		synctest.Wait()
		a := s.Attempts("hang")[0]
		if !a.Canceled || a.Status != 0 || a.Ended.Sub(a.Arrived) != 10*time.Second {
			t.Errorf("hang attempt = %+v", a)
		}
		if a := s.Attempts("fast")[0]; a.Headers.Sub(a.Arrived) != 5*ms || !a.Completed {
			t.Errorf("fast attempt = %+v", a)
		}
	})
}

func TestEmbedding(t *testing.T) {
	a, b := Embedding("hello", 8), Embedding("hello", 8)
	if !cmp.Equal(a, b) || len(a) != 8 || len(Embedding("hello", 0)) != EmbedDimensions {
		t.Errorf("Embedding is not deterministic: %v, %v", a, b)
	}
	if cmp.Equal(Embedding("hello", 8), Embedding("hello ", 8)) {
		t.Error("inputs that differ embed alike")
	}
}

func BenchmarkEmbeddings(b *testing.B) {
	job := embedJob{model: "m", dims: 1536, inputs: []embedInput{textInput("The quick brown fox")}}
	buf := appendEmbeddings(nil, &job)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendEmbeddings(buf[:0], &job)
	}
}
