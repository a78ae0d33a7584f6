package sim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// gContent is a Gemini content for tests.
type gContent struct {
	Role  string `json:"role,omitempty"`
	Parts []any  `json:"parts"`
}

func gText(s string) map[string]any { return map[string]any{"text": s} }
func gUser(s string) gContent       { return gContent{"user", []any{gText(s)}} }
func gModel(s string) gContent      { return gContent{"model", []any{gText(s)}} }

// gemReq builds a generateContent body; extra keys are merged in.
func gemReq(contents []gContent, extra map[string]any) map[string]any {
	m := map[string]any{"contents": contents}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// postGemini sends body to model's generateContent, or its
// streamGenerateContent?alt=sse if stream; hdr is key, value pairs.
func postGemini(t *testing.T, c *http.Client, base, model string, stream bool, body any, hdr ...string) *http.Response {
	t.Helper()
	u := base + "/v1beta/models/" + model + ":generateContent"
	if stream {
		u = base + "/v1beta/models/" + model + ":streamGenerateContent?alt=sse"
	}
	return postURL(t, c, u, body, hdr...)
}

func postURL(t *testing.T, c *http.Client, u string, body any, hdr ...string) *http.Response {
	t.Helper()
	b, ok := body.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Goog-Api-Key", "k")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// gResponse is a GenerateContentResponse as a client decodes it.
type gResponse struct {
	Candidates []struct {
		Content struct {
			Role  string `json:"role"`
			Parts []struct {
				Text         *string `json:"text"`
				FunctionCall *struct {
					ID   string          `json:"id"`
					Name string          `json:"name"`
					Args json.RawMessage `json:"args"`
				} `json:"functionCall"`
			} `json:"parts"`
		} `json:"content"`
		FinishReason string `json:"finishReason"`
		Index        int    `json:"index"`
	} `json:"candidates"`
	PromptFeedback *struct {
		BlockReason string `json:"blockReason"`
	} `json:"promptFeedback"`
	UsageMetadata *gUsage `json:"usageMetadata"`
	ModelVersion  string  `json:"modelVersion"`
	ResponseID    string  `json:"responseId"`
}

type gUsage struct {
	PromptTokenCount     int `json:"promptTokenCount"`
	CandidatesTokenCount int `json:"candidatesTokenCount"`
	TotalTokenCount      int `json:"totalTokenCount"`
}

// gStream is a decoded Gemini answer, streamed or whole.
type gStream struct {
	Chunks    []gResponse
	Raw       []string
	Malformed []string
	Err       error // the read error that ended the body, nil for a clean EOF
	Text      string
	Calls     []string // name(args) of each function call
	CallIDs   []string
	Finish    string
	Blocked   string
	Usage     *gUsage
}

func (s *gStream) add(t *testing.T, c gResponse, data string) {
	if len(s.Chunks) > 0 && (c.ResponseID != s.Chunks[0].ResponseID || c.ModelVersion != s.Chunks[0].ModelVersion) {
		t.Errorf("chunk %s: responseId or modelVersion differs from the first chunk's", data)
	}
	s.Chunks = append(s.Chunks, c)
	if c.UsageMetadata != nil {
		s.Usage = c.UsageMetadata
	}
	if c.PromptFeedback != nil {
		s.Blocked = c.PromptFeedback.BlockReason
	}
	for _, cd := range c.Candidates {
		if cd.Content.Role != "model" || cd.Index != 0 {
			t.Errorf("candidate role %q index %d: %s", cd.Content.Role, cd.Index, data)
		}
		for _, p := range cd.Content.Parts {
			if p.Text != nil {
				s.Text += *p.Text
			}
			if fc := p.FunctionCall; fc != nil {
				s.Calls = append(s.Calls, fc.Name+"("+string(fc.Args)+")")
				s.CallIDs = append(s.CallIDs, fc.ID)
			}
		}
		if cd.FinishReason != "" {
			if s.Finish != "" {
				t.Errorf("second finishReason: %s", data)
			}
			s.Finish = cd.FinishReason
		}
	}
}

// decodeGeminiStream reads an alt=sse body strictly: every event is one
// "data: " line and a blank line, holding a GenerateContentResponse.
func decodeGeminiStream(t *testing.T, body io.Reader) gStream {
	t.Helper()
	var s gStream
	br := bufio.NewReader(body)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if err != io.EOF || line != "" {
				s.Err = io.ErrUnexpectedEOF
				if err != io.EOF {
					s.Err = err
				}
			}
			return s
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Errorf("line %q is not a data line", line)
			return s
		}
		data = strings.TrimSuffix(data, "\n")
		if blank, err := br.ReadString('\n'); err != nil || blank != "\n" {
			s.Err = io.ErrUnexpectedEOF
			if err != nil && err != io.EOF {
				s.Err = err
			}
			return s
		}
		s.Raw = append(s.Raw, data)
		var c gResponse
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			s.Malformed = append(s.Malformed, data)
			continue
		}
		s.add(t, c, data)
	}
}

func decodeGeminiWhole(t *testing.T, body io.Reader) gStream {
	t.Helper()
	var s gStream
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	var c gResponse
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	s.add(t, c, string(b))
	return s
}

// gError is google.rpc.Status in its envelope.
type gError struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Details []struct {
			Type       string `json:"@type"`
			Reason     string `json:"reason"`
			RetryDelay string `json:"retryDelay"`
		} `json:"details"`
	} `json:"error"`
}

func TestGeminiStreamText(t *testing.T) {
	c, base := startServer(t, newSim(map[string]Profile{"gemini-x": {Tokens: 5}}))
	body := gemReq([]gContent{gUser("Hello!")}, map[string]any{
		"systemInstruction": gContent{Parts: []any{gText("Be brief.")}},
	})
	resp := postGemini(t, c, base, "gemini-x", true, body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := decodeGeminiStream(t, resp.Body)
	want := Answer(PromptOf("Be brief.", "Hello!"), 5)
	if s.Err != nil || len(s.Malformed) > 0 {
		t.Fatalf("err %v, malformed %q", s.Err, s.Malformed)
	}
	if s.Text != join(want) || s.Finish != "STOP" {
		t.Errorf("text %q finish %q, want %q STOP", s.Text, s.Finish, join(want))
	}
	// One chunk per token, then the finish chunk with an empty text part.
	if len(s.Chunks) != 6 {
		t.Fatalf("%d chunks, want 6: %q", len(s.Chunks), s.Raw)
	}
	for i, tok := range want {
		c := s.Chunks[i]
		if got := *c.Candidates[0].Content.Parts[0].Text; got != tok || c.Candidates[0].FinishReason != "" {
			t.Errorf("chunk %d = %s, want one token %q", i, s.Raw[i], tok)
		}
		if u := c.UsageMetadata; u == nil || u.PromptTokenCount != 3 || u.CandidatesTokenCount != i+1 {
			t.Errorf("chunk %d usage %+v, want running totals", i, u)
		}
	}
	if diff := cmp.Diff(&gUsage{3, 5, 8}, s.Usage); diff != "" {
		t.Errorf("usage (-want +got):\n%s", diff)
	}
	first := s.Chunks[0]
	if first.ModelVersion != "gemini-x" || len(first.ResponseID) != 24 {
		t.Errorf("modelVersion %q responseId %q", first.ModelVersion, first.ResponseID)
	}
	wantLast := `{"candidates":[{"content":{"parts":[{"text":""}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":5,"totalTokenCount":8},"modelVersion":"gemini-x","responseId":"` + first.ResponseID + `"}`
	if diff := cmp.Diff(wantLast, s.Raw[5]); diff != "" {
		t.Errorf("finish chunk (-want +got):\n%s", diff)
	}
}

func TestGeminiNonStream(t *testing.T) {
	c, base := startServer(t, newSim(map[string]Profile{"m": {Tokens: 4}}))
	resp := postGemini(t, c, base, "m", false, gemReq([]gContent{gUser("Hi there")}, nil))
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, ct)
	}
	s := decodeGeminiWhole(t, resp.Body)
	if want := join(Answer("Hi there", 4)); s.Text != want || s.Finish != "STOP" {
		t.Errorf("text %q finish %q, want %q STOP", s.Text, s.Finish, want)
	}
	if diff := cmp.Diff(&gUsage{2, 4, 6}, s.Usage); diff != "" {
		t.Errorf("usage (-want +got):\n%s", diff)
	}
}

// TestGeminiSameAnswerAsOpenAI checks that a conversation gets the same
// answer in both formats, written as keel translates it: keel may fail an
// answer over from one to the other mid-stream and continue it there.
// (json.Marshal compacts the function response here; keel sends a tool
// result byte for byte, which ../provider/gemini tests end to end.)
func TestGeminiSameAnswerAsOpenAI(t *testing.T) {
	c, base := startServer(t, newSim(map[string]Profile{"a": {}, "b": {TPS: Dist[float64]{Value: 1e6}}}))
	openai := []msg{
		{"system", "Be brief."},
		{"user", []any{map[string]any{"type": "text", "text": "Weather in"}, map[string]any{"type": "image_url", "image_url": map[string]any{"url": "data:image/png;base64,AAAA"}}, map[string]any{"type": "text", "text": "Paris?"}}},
		{"assistant", nil},
		{"tool", `{"temp":18,"sky":"fog"}`},
		{"tool", "plain text result"},
		{"assistant", "It is foggy."},
		{"user", "And tomorrow?"},
	}
	gem := gemReq([]gContent{
		{"user", []any{gText("Weather in"), map[string]any{"inlineData": map[string]any{"mimeType": "image/png", "data": "AAAA"}}, gText("Paris?")}},
		{"model", []any{map[string]any{"functionCall": map[string]any{"name": "weather", "args": map[string]any{}}}}},
		{"user", []any{
			map[string]any{"functionResponse": map[string]any{"name": "weather", "response": json.RawMessage(`{"temp":18,"sky":"fog"}`)}},
			map[string]any{"functionResponse": map[string]any{"name": "weather", "response": map[string]any{"result": "plain text result"}}},
		}},
		gModel("It is foggy."),
		gUser("And tomorrow?"),
	}, map[string]any{"systemInstruction": gContent{Parts: []any{gText("Be brief.")}}})

	want := decodeStream(t, mustPost(t, c, base, chatReq("a", true, openai, nil)).Body).Content
	for _, model := range []string{"a", "b", "unknown"} {
		for _, stream := range []bool{true, false} {
			resp := postGemini(t, c, base, model, stream, gem)
			var s gStream
			if stream {
				s = decodeGeminiStream(t, resp.Body)
			} else {
				s = decodeGeminiWhole(t, resp.Body)
			}
			if s.Text != want {
				t.Errorf("%s stream %v: text %q, want OpenAI's %q", model, stream, s.Text, want)
			}
		}
	}
}

func TestGeminiMaxTokens(t *testing.T) {
	c, base := startServer(t, newSim(map[string]Profile{"m": {}}))
	ans := Answer("Hello!", DefaultTokens)
	for _, tt := range []struct {
		max    int
		want   int
		finish string
	}{{5, 5, "MAX_TOKENS"}, {100, DefaultTokens, "STOP"}} {
		body := gemReq([]gContent{gUser("Hello!")}, map[string]any{"generationConfig": map[string]any{"maxOutputTokens": tt.max}})
		s := decodeGeminiStream(t, postGemini(t, c, base, "m", true, body).Body)
		if s.Text != join(ans[:tt.want]) || s.Finish != tt.finish || s.Usage.CandidatesTokenCount != tt.want {
			t.Errorf("max %d: text %q finish %q usage %+v", tt.max, s.Text, s.Finish, s.Usage)
		}
	}
}

func TestGeminiPrefill(t *testing.T) {
	c, base := startServer(t, newSim(map[string]Profile{
		"m":          {Tokens: 8},
		"restarter":  {Tokens: 8, Restart: true},
		"no-prefill": {Tokens: 8, RejectPrefill: true},
	}))
	q := "Why is the sky blue?"
	ans := Answer(PromptOf(q), 8)
	tests := []struct {
		name, model, prefill, want string
	}{
		{"token boundary", "m", join(ans[:3]), join(ans[3:])},
		{"mid token", "m", join(ans[:3]) + ans[3][:2], ans[3][2:] + join(ans[4:])},
		{"not our answer", "m", "Because of", join(Answer(PromptOf(q, "Because of"), 8))},
		{"restart", "restarter", join(ans[:3]), join(ans)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := decodeGeminiStream(t, postGemini(t, c, base, tt.model, true, gemReq([]gContent{gUser(q), gModel(tt.prefill)}, nil)).Body)
			if s.Text != tt.want || s.Finish != "STOP" {
				t.Errorf("text %q finish %q, want %q", s.Text, s.Finish, tt.want)
			}
		})
	}
	t.Run("reject_prefill", func(t *testing.T) {
		resp := postGemini(t, c, base, "no-prefill", true, gemReq([]gContent{gUser(q), gModel(join(ans[:3]))}, nil))
		e := decodeJSON[gError](t, resp.Body)
		if resp.StatusCode != 400 || e.Error.Status != "INVALID_ARGUMENT" || e.Error.Code != 400 {
			t.Errorf("status %d, error %+v", resp.StatusCode, e.Error)
		}
	})
}

var gWeather = map[string]any{
	"name": "get_current_weather",
	"parametersJsonSchema": map[string]any{
		"type": "object",
		"properties": map[string]any{
			"location": map[string]any{"type": "string"},
			"unit":     map[string]any{"type": "string", "enum": []string{"celsius", "fahrenheit"}},
			"days":     map[string]any{"type": "integer"},
		},
		"required": []string{"location"},
	},
}

// gStock declares its parameters in Gemini's OpenAPI subset.
var gStock = map[string]any{
	"name":       "get_stock_price",
	"parameters": map[string]any{"type": "OBJECT", "properties": map[string]any{"ticker": map[string]any{"type": "STRING"}, "exact": map[string]any{"type": "BOOLEAN"}}},
}

func TestGeminiTools(t *testing.T) {
	c, base := startServer(t, newSim(map[string]Profile{"a": {}, "b": {Tokens: 5}}))
	q := []gContent{gUser("What is the weather like in Boston today?")}
	tools := []any{map[string]any{"functionDeclarations": []any{gWeather, gStock}}}
	tests := []struct {
		name     string
		config   any
		wantTool string
		wantArgs []string
	}{
		{"auto picks the first tool", map[string]any{"functionCallingConfig": map[string]any{"mode": "AUTO"}}, "get_current_weather", []string{"days", "location", "unit"}},
		{"no toolConfig", nil, "get_current_weather", []string{"days", "location", "unit"}},
		{"allowed function", map[string]any{"functionCallingConfig": map[string]any{"mode": "ANY", "allowedFunctionNames": []string{"get_stock_price"}}}, "get_stock_price", []string{"exact", "ticker"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			extra := map[string]any{"tools": tools}
			if tt.config != nil {
				extra["toolConfig"] = tt.config
			}
			var calls []string
			for _, model := range []string{"a", "b"} {
				s := decodeGeminiStream(t, postGemini(t, c, base, model, true, gemReq(q, extra)).Body)
				// The call whole in one chunk, then the finish chunk.
				if len(s.Chunks) != 2 || len(s.Calls) != 1 || s.Finish != "STOP" || s.Text != "" || s.CallIDs[0] != "" {
					t.Fatalf("chunks %q", s.Raw)
				}
				name, args, _ := strings.Cut(strings.TrimSuffix(s.Calls[0], ")"), "(")
				var m map[string]any
				if err := json.Unmarshal([]byte(args), &m); err != nil || name != tt.wantTool {
					t.Fatalf("call %s: %v", s.Calls[0], err)
				}
				var keys []string
				for k := range m {
					keys = append(keys, k)
				}
				if diff := cmp.Diff(tt.wantArgs, keys, sortStrings); diff != "" {
					t.Errorf("argument keys (-want +got):\n%s", diff)
				}
				if tt.wantTool == "get_stock_price" && m["exact"] != true {
					t.Errorf("exact = %v: upper-case OpenAPI types not read", m["exact"])
				}
				calls = append(calls, s.Calls[0])
			}
			if calls[0] != calls[1] {
				t.Errorf("calls differ between models: %q", calls)
			}
		})
	}
	t.Run("non-streaming", func(t *testing.T) {
		s := decodeGeminiWhole(t, postGemini(t, c, base, "a", false, gemReq(q, map[string]any{"tools": tools})).Body)
		if len(s.Calls) != 1 || s.Finish != "STOP" || s.Text != "" {
			t.Errorf("answer %+v", s)
		}
	})
	t.Run("max tokens cuts the call", func(t *testing.T) {
		body := gemReq(q, map[string]any{"tools": tools, "generationConfig": map[string]any{"maxOutputTokens": 2}})
		for _, stream := range []bool{true, false} {
			resp := postGemini(t, c, base, "a", stream, body)
			var s gStream
			if stream {
				s = decodeGeminiStream(t, resp.Body)
			} else {
				s = decodeGeminiWhole(t, resp.Body)
			}
			if len(s.Calls) != 0 || s.Finish != "MAX_TOKENS" {
				t.Errorf("stream %v: calls %q finish %q", stream, s.Calls, s.Finish)
			}
		}
	})
	for _, tt := range []struct {
		name     string
		contents []gContent
		extra    map[string]any
		texts    []string
	}{
		{"mode NONE", q, map[string]any{"tools": tools, "toolConfig": map[string]any{"functionCallingConfig": map[string]any{"mode": "NONE"}}},
			[]string{"What is the weather like in Boston today?"}},
		{"after a function response", append(q[:1:1],
			gContent{"model", []any{map[string]any{"functionCall": map[string]any{"name": "get_current_weather", "args": map[string]any{"location": "Boston"}}}}},
			gContent{"user", []any{map[string]any{"functionResponse": map[string]any{"name": "get_current_weather", "response": map[string]any{"temperature": 22}}}}}),
			map[string]any{"tools": tools}, []string{"What is the weather like in Boston today?", "", `{"temperature":22}`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := decodeGeminiStream(t, postGemini(t, c, base, "a", true, gemReq(tt.contents, tt.extra)).Body)
			if want := join(Answer(PromptOf(tt.texts...), DefaultTokens)); s.Text != want || len(s.Calls) != 0 {
				t.Errorf("text %q calls %q, want text %q", s.Text, s.Calls, want)
			}
		})
	}
}

func TestGeminiJSONOutput(t *testing.T) {
	c, base := startServer(t, newSim(map[string]Profile{"m": {Tokens: 6}}))
	q := []gContent{gUser("Alice and Bob meet for lunch on Friday.")}
	t.Run("json mime type", func(t *testing.T) {
		body := gemReq(q, map[string]any{"generationConfig": map[string]any{"responseMimeType": "application/json"}})
		s := decodeGeminiStream(t, postGemini(t, c, base, "m", true, body).Body)
		var got map[string]string
		if err := json.Unmarshal([]byte(s.Text), &got); err != nil {
			t.Fatalf("text %q: %v", s.Text, err)
		}
		if want := join(Answer("Alice and Bob meet for lunch on Friday.", 6)); got["answer"] != want {
			t.Errorf("answer %q, want %q", got["answer"], want)
		}
	})
	for _, tt := range []struct {
		field  string
		schema map[string]any
	}{
		{"responseJsonSchema", map[string]any{"type": "object", "properties": map[string]any{"name": map[string]any{"type": "string"}, "people": map[string]any{"type": "array", "items": map[string]any{"type": "string"}}}}},
		{"responseSchema", map[string]any{"type": "OBJECT", "properties": map[string]any{"name": map[string]any{"type": "STRING"}, "people": map[string]any{"type": "ARRAY", "items": map[string]any{"type": "STRING"}}}}},
	} {
		t.Run(tt.field, func(t *testing.T) {
			body := gemReq(q, map[string]any{"generationConfig": map[string]any{"responseMimeType": "application/json", tt.field: tt.schema}})
			s := decodeGeminiWhole(t, postGemini(t, c, base, "m", false, body).Body)
			var got struct {
				Name   *string   `json:"name"`
				People *[]string `json:"people"`
			}
			dec := json.NewDecoder(strings.NewReader(s.Text))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&got); err != nil || got.Name == nil || got.People == nil {
				t.Errorf("text %q: %v", s.Text, err)
			}
		})
	}
}

func TestGeminiRequestErrors(t *testing.T) {
	c, base := startServer(t, newSim(map[string]Profile{"m": {}}))
	tests := []struct {
		name   string
		path   string
		body   any
		hdr    []string
		status int
		gstat  string
	}{
		{"not JSON", "m:generateContent", []byte("{"), nil, 400, "INVALID_ARGUMENT"},
		{"empty body", "m:generateContent", []byte(""), nil, 400, "INVALID_ARGUMENT"},
		{"no contents", "m:generateContent", map[string]any{"contents": []any{}}, nil, 400, "INVALID_ARGUMENT"},
		{"bad role", "m:streamGenerateContent?alt=sse", gemReq([]gContent{{"robot", []any{gText("hi")}}}, nil), nil, 400, "INVALID_ARGUMENT"},
		{"bad maxOutputTokens", "m:generateContent", gemReq([]gContent{gUser("hi")}, map[string]any{"generationConfig": map[string]any{"maxOutputTokens": 0}}), nil, 400, "INVALID_ARGUMENT"},
		{"unknown x-sim-profile", "m:generateContent", gemReq([]gContent{gUser("hi")}, nil), []string{"x-sim-profile", "nope"}, 400, "INVALID_ARGUMENT"},
		{"unknown method", "m:countTokens", gemReq([]gContent{gUser("hi")}, nil), nil, 404, "NOT_FOUND"},
		{"no method", "m", gemReq([]gContent{gUser("hi")}, nil), nil, 404, "NOT_FOUND"},
		{"no model", ":generateContent", gemReq([]gContent{gUser("hi")}, nil), nil, 404, "NOT_FOUND"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := postURL(t, c, base+"/v1beta/models/"+tt.path, tt.body, tt.hdr...)
			e := decodeJSON[gError](t, resp.Body)
			if resp.StatusCode != tt.status || e.Error.Code != tt.status || e.Error.Status != tt.gstat || e.Error.Message == "" {
				t.Errorf("status %d, error %+v", resp.StatusCode, e.Error)
			}
		})
	}
}

func TestGeminiErrorFaults(t *testing.T) {
	tests := []struct {
		name       string
		fault      Fault
		status     int
		gstat      string
		message    string // substring
		reason     string
		retryDelay string
	}{
		{"429 with retry_after", Fault{Kind: FaultHTTPError, Status: 429, RetryAfter: 2500 * time.Millisecond},
			429, "RESOURCE_EXHAUSTED", "exceeded your current quota", "", "2.5s"},
		{"429 with retry_after_ms", Fault{Kind: FaultHTTPError, Status: 429, RetryAfterMS: 1750},
			429, "RESOURCE_EXHAUSTED", "quota", "", "1.75s"},
		{"429 without a hint", Fault{Kind: FaultHTTPError, Status: 429}, 429, "RESOURCE_EXHAUSTED", "quota", "", ""},
		{"503", Fault{Kind: FaultHTTPError, Status: 503}, 503, "UNAVAILABLE", "overloaded", "", ""},
		{"500", Fault{Kind: FaultHTTPError, Status: 500}, 500, "INTERNAL", "internal error", "", ""},
		{"504", Fault{Kind: FaultHTTPError, Status: 504}, 504, "DEADLINE_EXCEEDED", "Deadline", "", ""},
		{"403", Fault{Kind: FaultHTTPError, Status: 403}, 403, "PERMISSION_DENIED", "", "", ""},
		{"flap", Fault{Kind: FaultFlap, Down: time.Hour}, 503, "UNAVAILABLE", "overloaded", "", ""},
		{"bad key", Fault{Kind: FaultHTTPError, Status: 400, Code: "API_KEY_INVALID", Message: "API key not valid. Please pass a valid API key."},
			400, "INVALID_ARGUMENT", "API key not valid", "API_KEY_INVALID", ""},
		{"type overrides the status", Fault{Kind: FaultHTTPError, Status: 400, Type: "FAILED_PRECONDITION"}, 400, "FAILED_PRECONDITION", "", "", ""},
		{"context_length", Fault{Kind: FaultContextLength}, 400, "INVALID_ARGUMENT", "input token count", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.fault.Kind != FaultFlap {
				tt.fault.Always = true
			}
			s := newSim(map[string]Profile{"m": {Faults: []Fault{tt.fault}}}, WithClock(func() time.Time { return epoch }))
			c, base := startServer(t, s)
			for _, stream := range []bool{true, false} {
				resp := postGemini(t, c, base, "m", stream, gemReq([]gContent{gUser("hi")}, nil))
				e := decodeJSON[gError](t, resp.Body)
				if resp.StatusCode != tt.status || e.Error.Code != tt.status || e.Error.Status != tt.gstat || !strings.Contains(e.Error.Message, tt.message) {
					t.Errorf("stream %v: status %d, error %+v", stream, resp.StatusCode, e.Error)
				}
				var reason, delay string
				for _, d := range e.Error.Details {
					switch d.Type {
					case "type.googleapis.com/google.rpc.ErrorInfo":
						reason = d.Reason
					case "type.googleapis.com/google.rpc.RetryInfo":
						delay = d.RetryDelay
					}
				}
				if reason != tt.reason || delay != tt.retryDelay {
					t.Errorf("reason %q retryDelay %q, want %q %q", reason, delay, tt.reason, tt.retryDelay)
				}
			}
		})
	}
}

// TestGeminiContentFilter checks that a content_filter fault is Gemini's
// blocked prompt: a 200 with promptFeedback and no candidates.
func TestGeminiContentFilter(t *testing.T) {
	s := newSim(map[string]Profile{"m": {Faults: []Fault{{Kind: FaultContentFilter, Always: true}}}})
	c, base := startServer(t, s)
	for _, stream := range []bool{true, false} {
		resp := postGemini(t, c, base, "m", stream, gemReq([]gContent{gUser("hi")}, nil))
		var g gStream
		if stream {
			g = decodeGeminiStream(t, resp.Body)
		} else {
			g = decodeGeminiWhole(t, resp.Body)
		}
		if resp.StatusCode != 200 || g.Blocked != "PROHIBITED_CONTENT" || len(g.Chunks) != 1 || len(g.Chunks[0].Candidates) != 0 || g.Err != nil {
			t.Errorf("stream %v: status %d, %+v", stream, resp.StatusCode, g)
		}
	}
	if a := s.Attempts("m")[0]; a.Fault != "content_filter" || a.Completed {
		t.Errorf("attempt %+v", a)
	}
}

func TestGeminiStreamFaults(t *testing.T) {
	ans := Answer("hi", 6)
	tests := []struct {
		name      string
		fault     Fault
		readErr   error
		text      string
		finish    string
		malformed int
		completed bool
	}{
		{name: "cut", fault: Fault{Kind: FaultCut, After: 3}, readErr: io.ErrUnexpectedEOF, text: join(ans[:3])},
		{name: "cut past the end", fault: Fault{Kind: FaultCut, After: 99}, readErr: io.ErrUnexpectedEOF, text: join(ans)},
		{name: "malformed", fault: Fault{Kind: FaultMalformed, After: 2}, text: join(ans), finish: "STOP", malformed: 1, completed: true},
		// No end marker to omit: the body ends cleanly all the same.
		{name: "no_done", fault: Fault{Kind: FaultNoDone}, text: join(ans), finish: "STOP"},
		{name: "stall", fault: Fault{Kind: FaultStall, After: 2, For: time.Millisecond}, text: join(ans), finish: "STOP", completed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fault.Always = true
			s := newSim(map[string]Profile{"m": {Tokens: 6, Faults: []Fault{tt.fault}}})
			c, base := startServer(t, s)
			g := decodeGeminiStream(t, postGemini(t, c, base, "m", true, gemReq([]gContent{gUser("hi")}, nil)).Body)
			if !errors.Is(g.Err, tt.readErr) {
				t.Errorf("read error = %v, want %v", g.Err, tt.readErr)
			}
			got := []any{g.Text, g.Finish, len(g.Malformed)}
			if diff := cmp.Diff([]any{tt.text, tt.finish, tt.malformed}, got); diff != "" {
				t.Errorf("text, finish, malformed (-want +got):\n%s", diff)
			}
			if tt.malformed > 0 && g.Raw[2] != g.Malformed[0] {
				t.Errorf("garbled line at %q, want after 2 tokens: %q", g.Malformed[0], g.Raw)
			}
			if a := s.Attempts("m")[0]; a.Completed != tt.completed {
				t.Errorf("attempt %+v, want completed %v", a, tt.completed)
			}
		})
	}
	t.Run("reset", func(t *testing.T) {
		c, base := startServer(t, newSim(map[string]Profile{"m": {Faults: []Fault{{Kind: FaultReset, Always: true}}}}))
		b, _ := json.Marshal(gemReq([]gContent{gUser("hi")}, nil))
		_, err := c.Post(base+"/v1beta/models/m:streamGenerateContent?alt=sse", "application/json", bytes.NewReader(b))
		if !isConnError(err) {
			t.Errorf("err = %v, want a connection error", err)
		}
	})
}

// TestGeminiArrayStream checks streamGenerateContent without alt=sse: one
// JSON array, sent element by element.
func TestGeminiArrayStream(t *testing.T) {
	c, base := startServer(t, newSim(map[string]Profile{"m": {Tokens: 3}}))
	resp := postURL(t, c, base+"/v1beta/models/m:streamGenerateContent", gemReq([]gContent{gUser("hi")}, nil))
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var chunks []gResponse
	if err := json.Unmarshal(b, &chunks); err != nil || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("body %s (%s): %v", b, resp.Header.Get("Content-Type"), err)
	}
	var s gStream
	for _, ch := range chunks {
		s.add(t, ch, "")
	}
	if want := join(Answer("hi", 3)); s.Text != want || s.Finish != "STOP" || len(chunks) != 4 {
		t.Errorf("text %q finish %q in %d chunks, want %q", s.Text, s.Finish, len(chunks), want)
	}
}

// BenchmarkServeZeroGemini measures the simulator's own cost per sim-zero
// request in Gemini's format, without the network (BenchmarkServeZero's
// counterpart).
func BenchmarkServeZeroGemini(b *testing.B) {
	body, err := json.Marshal(gemReq([]gContent{gUser("Hello! How are you today?")}, map[string]any{
		"systemInstruction": gContent{Parts: []any{gText("You are a helpful assistant.")}},
	}))
	if err != nil {
		b.Fatal(err)
	}
	for _, path := range []string{"sim-zero:streamGenerateContent?alt=sse", "sim-zero:generateContent"} {
		b.Run(path, func(b *testing.B) {
			s := New(Builtin())
			rd := bytes.NewReader(body)
			req := httptest.NewRequest(http.MethodPost, "/v1beta/models/"+path, nil)
			w := &discard{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(body)
				req.Body = io.NopCloser(rd)
				clear(w.h)
				s.ServeHTTP(w, req)
			}
			b.SetBytes(int64(w.n) / int64(b.N))
		})
	}
}
