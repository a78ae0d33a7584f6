package wire

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keel-ai/keel/internal/chat"
	"github.com/keel-ai/keel/internal/llm"
)

// The embeddings fixtures under testdata/embeddings are synthesized from
// the vendors' docs (no recorded embeddings exist in ../shared/wire):
// openai-float.json and openai-base64.json hold the same vectors, the
// base64 computed from the floats by encoding/json and encoding/binary.

// bitsEqual compares vectors bit for bit: -0 is not 0.
var bitsEqual = cmp.Comparer(func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })

func TestDecodeEmbedRequest(t *testing.T) {
	n := func(v int) *int { return &v }
	tests := []struct {
		name string
		body string
		want *EmbedRequest
	}{
		{"string", `{"model":"m","input":"hello"}`,
			&EmbedRequest{EmbedRequest: llm.EmbedRequest{Model: "m", Input: []string{"hello"}}}},
		{"array", `{"model":"m","input":["a","b <c>","\u00e9"]}`,
			&EmbedRequest{EmbedRequest: llm.EmbedRequest{Model: "m", Input: []string{"a", "b <c>", "é"}}}},
		{"every field", `{"model":"m","input":["a"],"dimensions":256,"encoding_format":"float","user":"u-1"}`,
			&EmbedRequest{EmbedRequest: llm.EmbedRequest{Model: "m", Input: []string{"a"}, Dimensions: n(256), User: "u-1"}}},
		{"base64", `{"model":"m","input":"a","encoding_format":"base64"}`,
			&EmbedRequest{EmbedRequest: llm.EmbedRequest{Model: "m", Input: []string{"a"}}, Format: EmbedBase64}},
		{"nulls are unset", `{"model":"m","input":"a","dimensions":null,"encoding_format":null,"user":null}`,
			&EmbedRequest{EmbedRequest: llm.EmbedRequest{Model: "m", Input: []string{"a"}}}},
		{"unknown fields ignored", `{"model":"m","input":"a","truncate":true,"keep_alive":"5m"}`,
			&EmbedRequest{EmbedRequest: llm.EmbedRequest{Model: "m", Input: []string{"a"}}}},
		{"the most inputs", `{"model":"m","input":[` + strings.Repeat(`"x",`, MaxEmbedInputs-1) + `"x"]}`,
			&EmbedRequest{EmbedRequest: llm.EmbedRequest{Model: "m", Input: strings.Split(strings.Repeat("x", MaxEmbedInputs), "")}}},
		{"openai-node default", string(read(t, "testdata/embeddings/openai-node-request.json")),
			&EmbedRequest{EmbedRequest: llm.EmbedRequest{Model: "text-embedding-3-small", Input: []string{"The food was delicious and the waiter..."}}, Format: EmbedBase64}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeEmbedRequest([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeEmbedRequestInvalid(t *testing.T) {
	req := func(fields string) string { return `{"model":"m","input":"a",` + fields + `}` }
	tests := []struct {
		name  string
		body  string
		param string
	}{
		{"empty body", ``, ""},
		{"not an object", `["m"]`, ""},
		{"null", `null`, ""},
		{"truncated", `{"model":"m","input":"a"`, ""},

		{"missing model", `{"input":"a"}`, "model"},
		{"empty model", `{"model":"","input":"a"}`, "model"},
		{"model not a string", `{"model":1,"input":"a"}`, "model"},

		{"missing input", `{"model":"m"}`, "input"},
		{"null input", `{"model":"m","input":null}`, "input"},
		{"empty string", `{"model":"m","input":""}`, "input"},
		{"empty array", `{"model":"m","input":[]}`, "input"},
		{"input a number", `{"model":"m","input":5}`, "input"},
		{"input an object", `{"model":"m","input":{"text":"a"}}`, "input"},
		{"empty string in array", `{"model":"m","input":["a",""]}`, "input[1]"},
		{"null in array", `{"model":"m","input":["a",null]}`, "input[1]"},
		{"object in array", `{"model":"m","input":["a",{}]}`, "input[1]"},
		{"bool in array", `{"model":"m","input":[true]}`, "input[0]"},
		{"token array", `{"model":"m","input":[1,2,3]}`, "input"},
		{"negative token", `{"model":"m","input":[-1]}`, "input"},
		{"token arrays", `{"model":"m","input":[[1,2],[3]]}`, "input"},
		{"text then tokens", `{"model":"m","input":["a",[1]]}`, "input"},
		{"too many inputs", `{"model":"m","input":[` + strings.Repeat(`"x",`, MaxEmbedInputs) + `"x"]}`, "input"},

		{"dimensions zero", req(`"dimensions":0`), "dimensions"},
		{"dimensions negative", req(`"dimensions":-8`), "dimensions"},
		{"dimensions fractional", req(`"dimensions":1.5`), "dimensions"},
		{"dimensions a string", req(`"dimensions":"256"`), "dimensions"},
		{"encoding_format unknown", req(`"encoding_format":"int8"`), "encoding_format"},
		{"encoding_format a number", req(`"encoding_format":1`), "encoding_format"},
		{"user not a string", req(`"user":5`), "user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := DecodeEmbedRequest([]byte(tt.body))
			if err == nil {
				t.Fatalf("decoded %+v, want an error", r)
			}
			var ce *chat.Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %T %v, want *chat.Error", err, err)
			}
			if ce.Code != chat.EInvalid || ce.Param != tt.param {
				t.Errorf("code, param = %q, %q; want %q, %q (message %q)", ce.Code, ce.Param, chat.EInvalid, tt.param, ce.Message)
			}
			for _, s := range []string{"wire.", "llm.", "json.RawMessage", "Go value", "[]string"} {
				if strings.Contains(ce.Message, s) {
					t.Errorf("message %q mentions %q", ce.Message, s)
				}
			}
		})
	}
}

// TestDecodeEmbedRequestTokenMessage checks that token arrays are refused
// as unsupported, not as malformed.
func TestDecodeEmbedRequestTokenMessage(t *testing.T) {
	_, err := DecodeEmbedRequest([]byte(`{"model":"m","input":[[1,2]]}`))
	if msg := chat.ErrorMessage(err); !strings.Contains(msg, "not supported") {
		t.Errorf("message = %q, want it to say token arrays are not supported", msg)
	}
}

func TestAppendEmbedRequest(t *testing.T) {
	n := func(v int) *int { return &v }
	tests := []struct {
		name string
		r    llm.EmbedRequest
		f    EmbedFormat
		want string
	}{
		{"float", llm.EmbedRequest{Model: "m", Input: []string{"a"}}, EmbedFloat,
			`{"model":"m","input":["a"]}`},
		{"base64, every field", llm.EmbedRequest{Model: "m", Input: []string{"a", "b\n\"c\""}, Dimensions: n(64), User: "u"}, EmbedBase64,
			`{"model":"m","input":["a","b\n\"c\""],"dimensions":64,"encoding_format":"base64","user":"u"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendEmbedRequest(nil, &tt.r, tt.f)
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			back, err := DecodeEmbedRequest(got)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(&EmbedRequest{EmbedRequest: tt.r, Format: tt.f}, back); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAppendEmbeddings(t *testing.T) {
	e := &llm.Embeddings{
		Model:   "text-embedding-3-small",
		Vectors: [][]float32{{0.5, -0.25, 1e-7, 0}, {float32(math.Copysign(0, -1)), 3.4028235e38, 1.5e-45, 0.1}},
		Usage:   llm.Usage{Input: 7},
	}
	tests := []struct {
		f    EmbedFormat
		want string
	}{
		{EmbedFloat, `{"object":"list","data":[` +
			`{"object":"embedding","index":0,"embedding":[0.5,-0.25,1e-7,0]},` +
			`{"object":"embedding","index":1,"embedding":[-0,3.4028235e+38,1e-45,0.1]}],` +
			`"model":"text-embedding-3-small","usage":{"prompt_tokens":7,"total_tokens":7}}`},
		{EmbedBase64, `{"object":"list","data":[` +
			`{"object":"embedding","index":0,"embedding":"AAAAPwAAgL6Vv9YzAAAAAA=="},` +
			`{"object":"embedding","index":1,"embedding":"AAAAgP//f38BAAAAzczMPQ=="}],` +
			`"model":"text-embedding-3-small","usage":{"prompt_tokens":7,"total_tokens":7}}`},
	}
	for _, tt := range tests {
		t.Run(tt.f.String(), func(t *testing.T) {
			got := AppendEmbeddings(nil, e, tt.f)
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			back, err := DecodeEmbeddings(got)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(e, back, bitsEqual); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAppendEmbeddingsLikeEncodingJSON checks that numbers are written as
// encoding/json writes float32s, across magnitudes.
func TestAppendEmbeddingsLikeEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	v := make([]float32, 4096)
	for i := range v {
		v[i] = math.Float32frombits(r.Uint32())
		if f := float64(v[i]); math.IsNaN(f) || math.IsInf(f, 0) {
			v[i] = float32(r.NormFloat64())
		}
	}
	want, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if got := appendFloatVector(nil, v); !bytes.Equal(want, got) {
		t.Errorf("float vector differs from encoding/json's:\n got %.200s\nwant %.200s", got, want)
	}
}

func TestAppendEmbeddingsNonFinite(t *testing.T) {
	inf := float32(math.Inf(1))
	e := &llm.Embeddings{Model: "m", Vectors: [][]float32{{float32(math.NaN()), inf, -inf}}}
	got := AppendEmbeddings(nil, e, EmbedFloat)
	if !json.Valid(got) || !bytes.Contains(got, []byte(`[0,0,0]`)) {
		t.Errorf("got %s, want valid JSON with zeros", got)
	}
}

// TestEmbeddingsBase64Exact checks the openai npm SDK's default path: it
// asks for base64 and reads the bytes as a little-endian Float32Array, so
// every bit of every float must survive, read back independently of the
// package's own decoder.
func TestEmbeddingsBase64Exact(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	v := make([]float32, 1537) // not a multiple of the encoder's blocks
	for i := range v {
		v[i] = float32(r.NormFloat64() / 40)
	}
	v[0], v[1], v[2] = float32(math.Copysign(0, -1)), math.SmallestNonzeroFloat32, math.MaxFloat32
	body := AppendEmbeddings(nil, &llm.Embeddings{Model: "m", Vectors: [][]float32{v}}, EmbedBase64)
	var out struct {
		Data []struct {
			Embedding string `json:"embedding"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(out.Data[0].Embedding)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]float32, len(raw)/4)
	if err := binary.Read(bytes.NewReader(raw), binary.LittleEndian, got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(v, got, bitsEqual); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestDecodeEmbeddingsFixtures(t *testing.T) {
	openai := &llm.Embeddings{
		Model: "text-embedding-3-small",
		Vectors: [][]float32{
			{-0.0069292834, -0.005336422, 0.024047505, -0.01407986, -2.1545726e-05, 0.6180339, -1, math.MaxFloat32},
			{0.0023064255, -0.009327292, 0.015797347, -0.0077780345, -0.0046922187, 0, float32(math.Copysign(0, -1)), math.SmallestNonzeroFloat32},
		},
		Usage: llm.Usage{Input: 9},
	}
	tests := []struct {
		file string
		want *llm.Embeddings
	}{
		{"openai-float.json", openai},
		{"openai-base64.json", openai},
		{"mistral.json", &llm.Embeddings{
			Model:   "mistral-embed",
			Vectors: [][]float32{{-0.0165863037109375, 0.07012939453125, 0.031494140625, 0.013092041015625}},
			Usage:   llm.Usage{Input: 6},
		}},
		{"ollama.json", &llm.Embeddings{
			Model:   "all-minilm",
			Vectors: [][]float32{{0.010071029, -0.0017594862, 0.05007221, 0.04692972}, {-0.009802309, 0.06080939, 0.030119052, -0.01713458}},
			Usage:   llm.Usage{Input: 8},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := DecodeEmbeddings(read(t, filepath.Join("testdata/embeddings", tt.file)))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, bitsEqual); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeEmbeddingsOrder(t *testing.T) {
	tests := []struct {
		name string
		body string
		want [][]float32
	}{
		{"by index", `{"data":[{"index":1,"embedding":[2]},{"index":0,"embedding":[1]},{"index":2,"embedding":[3]}]}`,
			[][]float32{{1}, {2}, {3}}},
		{"unnumbered", `{"data":[{"embedding":[1]},{"embedding":[2]}]}`,
			[][]float32{{1}, {2}}},
		{"spaces and escapes", `{"data":[{"index":0,"embedding":[ 1 , -2.5e0 ,3E-1 ]},{"index":1,"embedding":"AACAPwAAIMCamZk+"},{"index":2,"embedding":"AACAPwAAIMCamZk\u002b"}]}`,
			[][]float32{{1, -2.5, 0.3}, {1, -2.5, 0.3}, {1, -2.5, 0.3}}},
		{"base64 without padding or with line breaks", `{"data":[{"index":0,"embedding":"AACAPwAAIMCamZk+AACAPw"},{"index":1,"embedding":"AACAPwAA\r\nIMCamZk+AACAPw=="}]}`,
			[][]float32{{1, -2.5, 0.3, 1}, {1, -2.5, 0.3, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeEmbeddings([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got.Vectors, bitsEqual); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeEmbeddingsErrors(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		errorBody bool
	}{
		{"not JSON", `<html>`, false},
		{"truncated", `{"data":[{"index":0,"embedding":[0.1,0.`, false},
		{"no data", `{"object":"list","data":[]}`, false},
		{"data missing", `{"object":"list"}`, false},
		{"error body", `{"error":{"message":"x","type":"server_error"}}`, true},
		{"flat error body", `{"object":"error","message":"x","type":"t"}`, true},
		{"ollama error", `{"error":"model not found"}`, true},
		{"embedding missing", `{"data":[{"index":0}]}`, false},
		{"embedding null", `{"data":[{"index":0,"embedding":null}]}`, false},
		{"embedding empty", `{"data":[{"index":0,"embedding":[]}]}`, false},
		{"embedding empty base64", `{"data":[{"index":0,"embedding":""}]}`, false},
		{"embedding an object", `{"data":[{"index":0,"embedding":{}}]}`, false},
		{"embedding a number", `{"data":[{"index":0,"embedding":1}]}`, false},
		{"string in array", `{"data":[{"index":0,"embedding":[0.1,"0.2"]}]}`, false},
		{"nested array", `{"data":[{"index":0,"embedding":[[0.1]]}]}`, false},
		{"null in array", `{"data":[{"index":0,"embedding":[0.1,null]}]}`, false},
		{"too large for float32", `{"data":[{"index":0,"embedding":[1e39]}]}`, false},
		{"bad base64", `{"data":[{"index":0,"embedding":"!!!!"}]}`, false},
		{"base64 not whole floats", `{"data":[{"index":0,"embedding":"AACAPwAA"}]}`, false},
		{"base64 NaN", `{"data":[{"index":0,"embedding":"AADAfw=="}]}`, false},
		{"index out of range", `{"data":[{"index":0,"embedding":[1]},{"index":2,"embedding":[2]}]}`, false},
		{"negative index", `{"data":[{"index":-1,"embedding":[1]},{"index":0,"embedding":[2]}]}`, false},
		{"repeated index", `{"data":[{"index":1,"embedding":[1]},{"index":1,"embedding":[2]}]}`, false},
		{"ragged", `{"data":[{"index":0,"embedding":[1,2]},{"index":1,"embedding":[2]}]}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := DecodeEmbeddings([]byte(tt.body))
			if err == nil {
				t.Fatalf("decoded %+v, want an error", e)
			}
			var eb *ErrorBody
			if errors.As(err, &eb) != tt.errorBody {
				t.Errorf("err = %v; *ErrorBody: %v, want %v", err, !tt.errorBody, tt.errorBody)
			}
		})
	}
}

// TestEmbeddingsRoundTrip checks that vectors survive encoding and
// decoding in both formats, bit for bit.
func TestEmbeddingsRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, dims := range []int{1, 2, 3, 191, 192, 193, 256, 1536, 3072} {
		e := &llm.Embeddings{Model: "m", Usage: llm.Usage{Input: dims}}
		for range 3 {
			v := make([]float32, dims)
			for i := range v {
				v[i] = float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(20)-12)))
			}
			e.Vectors = append(e.Vectors, v)
		}
		for _, f := range []EmbedFormat{EmbedFloat, EmbedBase64} {
			got, err := DecodeEmbeddings(AppendEmbeddings(nil, e, f))
			if err != nil {
				t.Fatalf("%d dims, %v: %v", dims, f, err)
			}
			if diff := cmp.Diff(e, got, bitsEqual); diff != "" {
				t.Errorf("%d dims, %v (-want +got):\n%s", dims, f, diff)
			}
		}
	}
}

// FuzzDecodeEmbedRequest checks that no body panics, that every error is a
// 400 naming a param, and that a request that decodes encodes to one that
// decodes the same.
func FuzzDecodeEmbedRequest(f *testing.F) {
	f.Add(read(f, "testdata/embeddings/openai-node-request.json"))
	f.Add([]byte(`{"model":"m","input":["a","b"],"dimensions":8,"encoding_format":"float","user":"u"}`))
	f.Add([]byte(`{"model":"m","input":[[1,2]]}`))
	f.Add([]byte(`{"model":"m","input":["a",""]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := DecodeEmbedRequest(body)
		if err != nil {
			var ce *chat.Error
			if !errors.As(err, &ce) || ce.Code != chat.EInvalid {
				t.Fatalf("err = %#v, want a *chat.Error with code invalid", err)
			}
			return
		}
		if len(r.Input) == 0 || len(r.Input) > MaxEmbedInputs || r.Model == "" {
			t.Fatalf("accepted %+v", r)
		}
		out := AppendEmbedRequest(nil, &r.EmbedRequest, r.Format)
		if !json.Valid(out) {
			t.Fatalf("invalid JSON: %s", out)
		}
		again, err := DecodeEmbedRequest(out)
		if err != nil {
			t.Fatalf("re-decode: %v\n%s", err, out)
		}
		// Invalid UTF-8 is replaced on the way out, as encoding/json does.
		for i := range r.Input {
			r.Input[i] = strings.ToValidUTF8(r.Input[i], "\uFFFD")
		}
		r.Model, r.User = strings.ToValidUTF8(r.Model, "\uFFFD"), strings.ToValidUTF8(r.User, "\uFFFD")
		if diff := cmp.Diff(r, again); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

// FuzzDecodeEmbeddings checks that no upstream body panics, and that what
// decodes is re-encoded, in both formats, to the same vectors bit for bit.
func FuzzDecodeEmbeddings(f *testing.F) {
	files, _ := filepath.Glob("testdata/embeddings/*.json")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"data":[{"index":1,"embedding":[2]},{"index":0,"embedding":"AACAPw"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := DecodeEmbeddings(body)
		if err != nil {
			return
		}
		for i, v := range e.Vectors {
			if len(v) == 0 || len(v) != len(e.Vectors[0]) {
				t.Fatalf("vector %d has %d dimensions", i, len(v))
			}
		}
		for _, format := range []EmbedFormat{EmbedFloat, EmbedBase64} {
			out := AppendEmbeddings(nil, e, format)
			if !json.Valid(out) {
				t.Fatalf("invalid JSON: %s", out)
			}
			again, err := DecodeEmbeddings(out)
			if err != nil {
				t.Fatalf("re-decode %v: %v\n%s", format, err, out)
			}
			again.Model = e.Model // invalid UTF-8 is replaced
			if diff := cmp.Diff(e, again, bitsEqual); diff != "" {
				t.Fatalf("round trip %v (-first +second):\n%s", format, diff)
			}
		}
	})
}

// vector1536 is a typical embedding (text-embedding-3-small's size).
func vector1536() []float32 {
	r := rand.New(rand.NewPCG(7, 8))
	v := make([]float32, 1536)
	for i := range v {
		v[i] = float32(r.NormFloat64() / 40)
	}
	return v
}

// BenchmarkDecodeEmbeddings decodes an upstream answer of one 1536-float
// vector: the upstream → neutral direction.
func BenchmarkDecodeEmbeddings(b *testing.B) {
	for _, f := range []EmbedFormat{EmbedFloat, EmbedBase64} {
		b.Run(f.String(), func(b *testing.B) {
			body := AppendEmbeddings(nil, &llm.Embeddings{Model: "text-embedding-3-small", Vectors: [][]float32{vector1536()}}, f)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := DecodeEmbeddings(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAppendEmbeddings encodes one 1536-float vector for a client:
// the neutral → client direction.
func BenchmarkAppendEmbeddings(b *testing.B) {
	e := &llm.Embeddings{Model: "text-embedding-3-small", Vectors: [][]float32{vector1536()}}
	for _, f := range []EmbedFormat{EmbedFloat, EmbedBase64} {
		b.Run(f.String(), func(b *testing.B) {
			buf := AppendEmbeddings(nil, e, f)
			b.ReportAllocs()
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				buf = AppendEmbeddings(buf[:0], e, f)
			}
		})
	}
}
