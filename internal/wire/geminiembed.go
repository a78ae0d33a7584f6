package wire

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/keel-ai/keel/internal/llm"
)

// Google Gemini batchEmbedContents, the upstream direction.

// AppendBatchEmbedRequest appends r as a batchEmbedContents body: one
// request per input, each naming model, the resource name the URL names
// too ("models/text-embedding-004").
func AppendBatchEmbedRequest(dst []byte, r *llm.EmbedRequest, model string) []byte {
	dst = append(dst, `{"requests":[`...)
	for i, in := range r.Input {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"model":`...)
		dst = appendJSONString(dst, model)
		dst = append(dst, `,"content":{"parts":[{"text":`...)
		dst = appendJSONString(dst, in)
		dst = append(dst, `}]}`...)
		if r.Dimensions != nil {
			dst = append(dst, `,"outputDimensionality":`...)
			dst = strconv.AppendInt(dst, int64(*r.Dimensions), 10)
		}
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}

// DecodeBatchEmbedResponse reads the vectors of a batchEmbedContents
// answer, in input order. An error object sent with a 2xx status is a
// *GeminiError.
func DecodeBatchEmbedResponse(body []byte) ([][]float32, error) {
	var out struct {
		Embeddings []struct {
			Values []float32 `json:"values"`
		} `json:"embeddings"`
		Error json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("wire: decode gemini embeddings: %w", err)
	}
	if !isNull(out.Error) {
		return nil, parseGeminiStatus(out.Error)
	}
	vs := make([][]float32, len(out.Embeddings))
	for i, e := range out.Embeddings {
		vs[i] = e.Values
	}
	return vs, nil
}
