package wire

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/keel-ai/keel/internal/chat"
	"github.com/keel-ai/keel/internal/llm"
)

// OpenAI Responses API answers, for clients (../shared/wire/README.md §2):
// ResponsesEncoder writes one response, streamed as its full event
// sequence or whole, and the record keel stores of it.

// ResponsesAPI is the OpenAI Responses API as a client API.
//
// The zero value serves any request statelessly: Decode refuses requests
// that refer to stored responses, and every answer gets a fresh id. To
// serve one request with stored responses, decode it with
// DecodeResponsesRequest and Resolve, and set Response.
type ResponsesAPI struct {
	// Response, if set, writes the answer of the one request this value
	// serves: Encoder returns it and AppendAnswer writes through it, so
	// that what the client sees and what keel stores (Response.Record)
	// agree.
	Response *ResponsesEncoder
}

// Name names the API in records.
func (ResponsesAPI) Name() string { return llm.SourceResponses }

// Decode decodes a request body that refers to no stored response.
func (ResponsesAPI) Decode(body []byte) (*llm.Request, error) {
	rr, err := DecodeResponsesRequest(body)
	if err != nil {
		return nil, err
	}
	if err := rr.Resolve(nil); err != nil {
		return nil, err
	}
	return rr.Request, nil
}

// Encoder returns the streaming encoder for r.
func (a ResponsesAPI) Encoder(r *llm.Request) StreamEncoder {
	if a.Response != nil {
		return a.Response
	}
	return NewResponsesEncoder(NewResponseID(), &ResponsesRequest{Request: r})
}

// AppendAnswer appends a whole answer as the non-streaming response body.
func (a ResponsesAPI) AppendAnswer(dst []byte, ans *llm.Answer) []byte {
	e := a.Response
	if e == nil {
		e = NewResponsesEncoder(NewResponseID(), nil)
	}
	return e.AppendAnswer(dst, ans)
}

// AppendError appends an error body: OpenAI's envelope, as for Chat.
func (ResponsesAPI) AppendError(dst []byte, e APIError) []byte {
	return AppendChatError(dst, e.Message, OpenAIType(e.Type, e.Status), e.Param, e.Code)
}

// Relay is llm.WireNone: no upstream speaks this format to keel yet.
func (ResponsesAPI) Relay() llm.Wire { return llm.WireNone }

// The kinds of output item.
const (
	respMessage = iota
	respFunctionCall
	respReasoning
)

// respOut is one output item of a response.
type respOut struct {
	kind   int
	id     string
	callID string // function_call
	name   string // function_call
	// text is the message's text, the reasoning, or the call's arguments.
	text []byte
	// call is the llm.ToolCallDelta.Index of a function_call.
	call   int
	status string
}

// ResponsesEncoder writes one response of the Responses API: as a stream
// of events (AppendEvent, then AppendDone or AppendError) or whole
// (AppendAnswer), and then the record keel stores of it (Record). One
// encoder serves one response, from one goroutine.
type ResponsesEncoder struct {
	// Created is the response's created_at. If zero, the time of the first
	// write is used.
	Created time.Time
	// Now returns the current time, for completed_at. If nil, time.Now.
	Now func() time.Time

	id  string
	req *ResponsesRequest

	started bool
	// ended is set once the response is complete (AppendDone,
	// AppendAnswer) or failed (AppendError); nothing is written after.
	ended, complete bool
	model           string
	seq             int
	echo            []byte // the request fields the response repeats
	items           []respOut
	open            int // index of the item being streamed, or -1
	finish          llm.Finish
	usage           *llm.Usage
	status          string
	completedAt     int64
	err             *APIError
}

// NewResponsesEncoder returns the encoder of the response with the given
// id (from NewResponseID) to the request r, which may be nil. Its output
// items are named after id: "msg_…", "fc_…" and "rs_…", each id's suffix
// followed by "_" and the item's index; a function call without an
// upstream id gets call_id "call_…" the same way.
func NewResponsesEncoder(id string, r *ResponsesRequest) *ResponsesEncoder {
	if r == nil {
		r = &ResponsesRequest{}
	}
	if r.Request == nil {
		c := *r
		c.Request = &llm.Request{}
		r = &c
	}
	return &ResponsesEncoder{id: id, req: r, open: -1}
}

// ID returns the response's id.
func (e *ResponsesEncoder) ID() string { return e.id }

func (e *ResponsesEncoder) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// begin fixes what every write of the response shares: its creation time,
// model and echo of the request. model is the model that answered, if
// known.
func (e *ResponsesEncoder) begin(model string) {
	e.started = true
	if e.Created.IsZero() {
		e.Created = e.now()
	}
	e.model = model
	if e.model == "" {
		e.model = e.req.Request.Model
	}
	e.status = "in_progress"
	e.echo = e.appendEcho(nil)
}

// event starts an SSE event of type typ: its event line and the data
// object up to the sequence number.
func (e *ResponsesEncoder) event(dst []byte, typ string) []byte {
	dst = append(dst, "event: "...)
	dst = append(dst, typ...)
	dst = append(dst, "\ndata: {\"type\":\""...)
	dst = append(dst, typ...)
	dst = append(dst, `","sequence_number":`...)
	dst = strconv.AppendInt(dst, int64(e.seq), 10)
	e.seq++
	return dst
}

// responseEvent appends an event carrying the whole response.
func (e *ResponsesEncoder) responseEvent(dst []byte, typ string) []byte {
	dst = e.event(dst, typ)
	dst = append(dst, `,"response":`...)
	dst = e.appendResponse(dst)
	return append(dst, "}\n\n"...)
}

func (e *ResponsesEncoder) start(dst []byte, model string) []byte {
	e.begin(model)
	dst = e.responseEvent(dst, "response.created")
	return e.responseEvent(dst, "response.in_progress")
}

// AppendEvent appends the events ev adds to the response: the first call
// opens the response (response.created, response.in_progress); text,
// reasoning and each tool call go into output items, each opened when its
// first piece arrives and closed when another item opens or the response
// ends.
//
// A fragment of a tool call whose item was already closed (an upstream
// interleaving parallel calls) is still sent as a delta of that item, and
// is in the final response.
func (e *ResponsesEncoder) AppendEvent(dst []byte, ev *llm.Event) []byte {
	if e.ended {
		return dst
	}
	if !e.started {
		dst = e.start(dst, ev.Model)
	}
	if ev.Reasoning != "" {
		var i int
		dst, i = e.ensureOpen(dst, respReasoning)
		e.items[i].text = append(e.items[i].text, ev.Reasoning...)
		dst = e.event(dst, "response.reasoning_summary_text.delta")
		dst = e.appendItemRef(dst, i)
		dst = append(dst, `,"summary_index":0,"delta":`...)
		dst = appendJSONString(dst, ev.Reasoning)
		dst = append(dst, "}\n\n"...)
	}
	if ev.Text != "" {
		var i int
		dst, i = e.ensureOpen(dst, respMessage)
		e.items[i].text = append(e.items[i].text, ev.Text...)
		dst = e.event(dst, "response.output_text.delta")
		dst = e.appendItemRef(dst, i)
		dst = append(dst, `,"content_index":0,"delta":`...)
		dst = appendJSONString(dst, ev.Text)
		dst = append(dst, `,"logprobs":[]}`+"\n\n"...)
	}
	for _, tc := range ev.ToolCalls {
		dst = e.appendCall(dst, tc)
	}
	if ev.Finish != "" {
		e.finish = ev.Finish
	}
	return dst
}

// ensureOpen returns the index of the open item if it is of kind, or else
// closes it and opens a new one.
func (e *ResponsesEncoder) ensureOpen(dst []byte, kind int) ([]byte, int) {
	if e.open >= 0 && e.items[e.open].kind == kind {
		return dst, e.open
	}
	dst = e.closeOpen(dst, "completed")
	n := len(e.items)
	it := respOut{kind: kind, status: "in_progress"}
	switch kind {
	case respMessage:
		it.id = respItemID(respMsgPrefix, e.id, n)
	case respReasoning:
		it.id = respItemID(respReasoningPrefix, e.id, n)
	}
	e.items = append(e.items, it)
	e.open = n
	dst = e.itemEvent(dst, "response.output_item.added", n)
	switch kind {
	case respMessage:
		dst = e.event(dst, "response.content_part.added")
		dst = e.appendItemRef(dst, n)
		dst = append(dst, `,"content_index":0,"part":`...)
		dst = appendRespText(dst, nil)
		dst = append(dst, "}\n\n"...)
	case respReasoning:
		dst = e.event(dst, "response.reasoning_summary_part.added")
		dst = e.appendItemRef(dst, n)
		dst = append(dst, `,"summary_index":0,"part":{"type":"summary_text","text":""}}`+"\n\n"...)
	}
	return dst, n
}

// appendCall appends a tool-call fragment: the call's item opens with its
// first fragment.
func (e *ResponsesEncoder) appendCall(dst []byte, tc llm.ToolCallDelta) []byte {
	i := -1
	for j := range e.items {
		if e.items[j].kind == respFunctionCall && e.items[j].call == tc.Index {
			i = j
			break
		}
	}
	if i < 0 {
		dst = e.closeOpen(dst, "completed")
		i = len(e.items)
		it := respOut{
			kind: respFunctionCall, id: respItemID(respCallPrefix, e.id, i),
			callID: tc.ID, name: tc.Name, call: tc.Index, status: "in_progress",
		}
		if it.callID == "" {
			it.callID = respItemID("call_", e.id, i)
		}
		e.items = append(e.items, it)
		e.open = i
		dst = e.itemEvent(dst, "response.output_item.added", i)
	}
	if tc.Arguments == "" {
		return dst
	}
	e.items[i].text = append(e.items[i].text, tc.Arguments...)
	dst = e.event(dst, "response.function_call_arguments.delta")
	dst = e.appendItemRef(dst, i)
	dst = append(dst, `,"delta":`...)
	dst = appendJSONString(dst, tc.Arguments)
	return append(dst, "}\n\n"...)
}

// closeOpen closes the open item, if any, with the given status.
func (e *ResponsesEncoder) closeOpen(dst []byte, status string) []byte {
	if e.open < 0 {
		return dst
	}
	i := e.open
	it := &e.items[i]
	e.open = -1
	it.status = status
	switch it.kind {
	case respMessage:
		dst = e.event(dst, "response.output_text.done")
		dst = e.appendItemRef(dst, i)
		dst = append(dst, `,"content_index":0,"text":`...)
		dst = appendJSONString(dst, string(it.text))
		dst = append(dst, `,"logprobs":[]}`+"\n\n"...)
		dst = e.event(dst, "response.content_part.done")
		dst = e.appendItemRef(dst, i)
		dst = append(dst, `,"content_index":0,"part":`...)
		dst = appendRespText(dst, it.text)
		dst = append(dst, "}\n\n"...)
	case respReasoning:
		dst = e.event(dst, "response.reasoning_summary_text.done")
		dst = e.appendItemRef(dst, i)
		dst = append(dst, `,"summary_index":0,"text":`...)
		dst = appendJSONString(dst, string(it.text))
		dst = append(dst, "}\n\n"...)
		dst = e.event(dst, "response.reasoning_summary_part.done")
		dst = e.appendItemRef(dst, i)
		dst = append(dst, `,"summary_index":0,"part":{"type":"summary_text","text":`...)
		dst = appendJSONString(dst, string(it.text))
		dst = append(dst, "}}\n\n"...)
	case respFunctionCall:
		dst = e.event(dst, "response.function_call_arguments.done")
		dst = e.appendItemRef(dst, i)
		dst = append(dst, `,"name":`...)
		dst = appendJSONString(dst, it.name)
		dst = append(dst, `,"arguments":`...)
		dst = appendJSONString(dst, string(it.text))
		dst = append(dst, "}\n\n"...)
	}
	return e.itemEvent(dst, "response.output_item.done", i)
}

// itemEvent appends an output_item event carrying the whole item i.
func (e *ResponsesEncoder) itemEvent(dst []byte, typ string, i int) []byte {
	dst = e.event(dst, typ)
	dst = append(dst, `,"output_index":`...)
	dst = strconv.AppendInt(dst, int64(i), 10)
	dst = append(dst, `,"item":`...)
	dst = appendRespItem(dst, &e.items[i])
	return append(dst, "}\n\n"...)
}

// appendItemRef appends the fields by which a delta names its item, i.
func (e *ResponsesEncoder) appendItemRef(dst []byte, i int) []byte {
	dst = append(dst, `,"item_id":`...)
	dst = appendJSONString(dst, e.items[i].id)
	dst = append(dst, `,"output_index":`...)
	return strconv.AppendInt(dst, int64(i), 10)
}

// AppendDone ends a complete response: it closes the open item and sends
// response.completed, or response.incomplete when the answer was cut by
// the output limit or a content filter, with the whole response and u.
func (e *ResponsesEncoder) AppendDone(dst []byte, u llm.Usage) []byte {
	if e.ended {
		return dst
	}
	if !e.started {
		dst = e.start(dst, "")
	}
	e.end(u)
	itemStatus := "completed"
	if e.status == "incomplete" {
		itemStatus = "incomplete"
	}
	dst = e.closeOpen(dst, itemStatus)
	return e.responseEvent(dst, "response."+e.status)
}

// end marks the response complete, with its status from the finish
// reason.
func (e *ResponsesEncoder) end(u llm.Usage) {
	e.ended, e.complete = true, true
	e.usage = &u
	e.completedAt = e.now().Unix()
	e.status = "completed"
	if respIncomplete(e.finish) != "" {
		e.status = "incomplete"
	}
}

// respIncomplete returns why an answer with finish f is incomplete, or "".
func respIncomplete(f llm.Finish) string {
	switch f {
	case llm.FinishLength:
		return "max_output_tokens"
	case llm.FinishContentFilter:
		return "content_filter"
	}
	return ""
}

// AppendError ends a broken response in band: an error event (the nested
// form, which openai-node raises as an APIError), then response.failed
// with the output so far.
func (e *ResponsesEncoder) AppendError(dst []byte, ae APIError) []byte {
	if e.ended {
		return dst
	}
	if !e.started {
		dst = e.start(dst, "")
	}
	e.ended = true
	e.status = "failed"
	ae.Type = OpenAIType(ae.Type, ae.Status)
	e.err = &ae
	if e.open >= 0 {
		e.items[e.open].status = "incomplete"
		e.open = -1
	}
	dst = e.event(dst, "error")
	dst = append(dst, `,"error":{"type":`...)
	dst = appendJSONString(dst, ae.Type)
	dst = append(dst, `,"code":`...)
	dst = appendNullable(dst, ae.Code)
	dst = append(dst, `,"message":`...)
	dst = appendJSONString(dst, ae.Message)
	dst = append(dst, `,"param":`...)
	dst = appendNullable(dst, ae.Param)
	dst = append(dst, "}}\n\n"...)
	return e.responseEvent(dst, "response.failed")
}

// AppendAnswer appends a whole answer as the response object, for a
// client that did not stream. The output is the reasoning, the text, then
// the tool calls, each an item.
func (e *ResponsesEncoder) AppendAnswer(dst []byte, a *llm.Answer) []byte {
	if !e.started {
		e.begin(a.Model)
	}
	if !e.ended {
		e.items = e.items[:0]
		add := func(it respOut) { e.items = append(e.items, it) }
		if len(a.Reasoning) > 0 {
			add(respOut{kind: respReasoning, id: respItemID(respReasoningPrefix, e.id, len(e.items)), text: a.Reasoning})
		}
		if len(a.Text) > 0 || len(a.ToolCalls) == 0 {
			add(respOut{kind: respMessage, id: respItemID(respMsgPrefix, e.id, len(e.items)), text: a.Text})
		}
		for i, tc := range a.ToolCalls {
			it := respOut{
				kind: respFunctionCall, id: respItemID(respCallPrefix, e.id, len(e.items)),
				callID: tc.ID, name: tc.Name, call: i, text: []byte(tc.Arguments),
			}
			if it.callID == "" {
				it.callID = respItemID("call_", e.id, len(e.items))
			}
			add(it)
		}
		e.finish = a.Finish
		e.end(a.Usage)
		for i := range e.items {
			e.items[i].status = "completed"
		}
		if n := len(e.items); e.status == "incomplete" && n > 0 {
			e.items[n-1].status = "incomplete"
		}
	}
	return e.appendResponse(dst)
}

// Output returns the response's output items as a JSON array.
func (e *ResponsesEncoder) Output() json.RawMessage {
	return e.appendOutput(nil)
}

// Record returns what keel stores of a complete response, for the key
// keyID; nil if the client did not ask to store it (store: false) or the
// response did not complete. It holds conversation content: save it only
// for that reason.
func (e *ResponsesEncoder) Record(keyID string) *chat.Response {
	if !e.complete || !e.req.Store {
		return nil
	}
	return &chat.Response{
		ID: e.id, KeyID: keyID, Created: e.Created, Model: e.model,
		PreviousID: e.req.PreviousResponseID,
		Input:      e.req.appendInput(nil),
		Output:     e.Output(),
	}
}

func (e *ResponsesEncoder) appendOutput(dst []byte) []byte {
	dst = append(dst, '[')
	for i := range e.items {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendRespItem(dst, &e.items[i])
	}
	return append(dst, ']')
}

// appendRespItem appends an output item. An item in progress is written as
// output_item.added shows it: without its content.
func appendRespItem(dst []byte, it *respOut) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendJSONString(dst, it.id)
	dst = append(dst, `,"type":`...)
	full := it.status != "in_progress"
	switch it.kind {
	case respMessage:
		dst = append(dst, `"message","status":`...)
		dst = appendJSONString(dst, it.status)
		dst = append(dst, `,"role":"assistant","content":[`...)
		if full {
			dst = appendRespText(dst, it.text)
		}
		dst = append(dst, ']')
	case respFunctionCall:
		dst = append(dst, `"function_call","status":`...)
		dst = appendJSONString(dst, it.status)
		dst = append(dst, `,"arguments":`...)
		if full {
			dst = appendJSONString(dst, string(it.text))
		} else {
			dst = append(dst, `""`...)
		}
		dst = append(dst, `,"call_id":`...)
		dst = appendJSONString(dst, it.callID)
		dst = append(dst, `,"name":`...)
		dst = appendJSONString(dst, it.name)
	case respReasoning:
		dst = append(dst, `"reasoning","status":`...)
		dst = appendJSONString(dst, it.status)
		dst = append(dst, `,"summary":[`...)
		if full {
			dst = append(dst, `{"type":"summary_text","text":`...)
			dst = appendJSONString(dst, string(it.text))
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

// appendRespText appends an output_text content part. The spec requires
// logprobs (§12), so it is written, empty.
func appendRespText(dst, text []byte) []byte {
	dst = append(dst, `{"type":"output_text","text":`...)
	dst = appendJSONString(dst, string(text))
	return append(dst, `,"annotations":[],"logprobs":[]}`...)
}

// appendResponse appends the response object as it stands.
func (e *ResponsesEncoder) appendResponse(dst []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendJSONString(dst, e.id)
	dst = append(dst, `,"object":"response","created_at":`...)
	dst = strconv.AppendInt(dst, e.Created.Unix(), 10)
	dst = append(dst, `,"status":`...)
	dst = appendJSONString(dst, e.status)
	dst = append(dst, `,"background":false,"completed_at":`...)
	if e.completedAt != 0 {
		dst = strconv.AppendInt(dst, e.completedAt, 10)
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"error":`...)
	if e.err != nil {
		code := e.err.Code
		if code == "" {
			code = e.err.Type
		}
		dst = append(dst, `{"code":`...)
		dst = appendJSONString(dst, code)
		dst = append(dst, `,"message":`...)
		dst = appendJSONString(dst, e.err.Message)
		dst = append(dst, '}')
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"incomplete_details":`...)
	if reason := respIncomplete(e.finish); reason != "" && e.status == "incomplete" {
		dst = append(dst, `{"reason":`...)
		dst = appendJSONString(dst, reason)
		dst = append(dst, '}')
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"model":`...)
	dst = appendJSONString(dst, e.model)
	dst = append(dst, `,"output":`...)
	dst = e.appendOutput(dst)
	dst = append(dst, `,"usage":`...)
	if u := e.usage; u != nil {
		dst = append(dst, `{"input_tokens":`...)
		dst = strconv.AppendInt(dst, int64(u.Input), 10)
		dst = append(dst, `,"input_tokens_details":{"cached_tokens":`...)
		dst = strconv.AppendInt(dst, int64(u.Cached), 10)
		dst = append(dst, `,"cache_write_tokens":`...)
		dst = strconv.AppendInt(dst, int64(u.CacheWrite), 10)
		dst = append(dst, `},"output_tokens":`...)
		dst = strconv.AppendInt(dst, int64(u.Output), 10)
		dst = append(dst, `,"output_tokens_details":{"reasoning_tokens":`...)
		dst = strconv.AppendInt(dst, int64(u.Reasoning), 10)
		dst = append(dst, `},"total_tokens":`...)
		dst = strconv.AppendInt(dst, int64(u.Total()), 10)
		dst = append(dst, '}')
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, e.echo...)
	return append(dst, '}')
}

// appendEcho appends the request parameters a response repeats, each
// with a leading comma; those not set are written as OpenAI's defaults or
// null (§12: emit the nullable fields).
func (e *ResponsesEncoder) appendEcho(dst []byte) []byte {
	rr, r := e.req, e.req.Request
	dst = append(dst, `,"instructions":`...)
	dst = appendNullable(dst, rr.Instructions)
	dst = append(dst, `,"max_output_tokens":`...)
	if r.MaxTokens != nil {
		dst = strconv.AppendInt(dst, int64(*r.MaxTokens), 10)
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"max_tool_calls":null,"parallel_tool_calls":`...)
	dst = strconv.AppendBool(dst, r.ParallelToolCalls == nil || *r.ParallelToolCalls)
	dst = append(dst, `,"previous_response_id":`...)
	dst = appendNullable(dst, rr.PreviousResponseID)
	dst = append(dst, `,"prompt_cache_key":`...)
	dst = respExtra(dst, r, "prompt_cache_key", "null")
	dst = append(dst, `,"prompt_cache_retention":`...)
	dst = respExtra(dst, r, "prompt_cache_retention", "null")
	dst = append(dst, `,"reasoning":`...)
	dst = respExtra(dst, r, "reasoning", `{"effort":null,"summary":null}`)
	dst = append(dst, `,"safety_identifier":`...)
	dst = appendNullable(dst, rr.safetyID)
	dst = append(dst, `,"service_tier":`...)
	dst = respExtra(dst, r, "service_tier", `"default"`)
	dst = append(dst, `,"store":`...)
	dst = strconv.AppendBool(dst, rr.Store)
	dst = append(dst, `,"temperature":`...)
	dst = respFloat(dst, r.Temperature)
	dst = append(dst, `,"text":{"format":`...)
	switch f := r.ResponseFormat; {
	case f == nil:
		dst = append(dst, `{"type":"text"}`...)
	case f.Type == llm.FormatJSONSchema:
		dst = append(dst, `{"type":"json_schema","name":`...)
		dst = appendJSONString(dst, f.Name)
		if f.Description != "" {
			dst = append(dst, `,"description":`...)
			dst = appendJSONString(dst, f.Description)
		}
		dst = append(dst, `,"schema":`...)
		dst = respRaw(dst, f.Schema)
		dst = append(dst, `,"strict":`...)
		dst = respBool(dst, f.Strict)
		dst = append(dst, '}')
	default:
		dst = append(dst, `{"type":`...)
		dst = appendJSONString(dst, string(f.Type))
		dst = append(dst, '}')
	}
	if rr.verbosity != "" {
		dst = append(dst, `,"verbosity":`...)
		dst = appendJSONString(dst, rr.verbosity)
	}
	dst = append(dst, `},"tool_choice":`...)
	switch tc := r.ToolChoice; {
	case tc == nil:
		dst = append(dst, `"auto"`...)
	case tc.Mode == llm.ToolFunction:
		dst = append(dst, `{"type":"function","name":`...)
		dst = appendJSONString(dst, tc.Name)
		dst = append(dst, '}')
	default:
		dst = appendJSONString(dst, string(tc.Mode))
	}
	dst = append(dst, `,"tools":[`...)
	for i, t := range r.Tools {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"type":"function","name":`...)
		dst = appendJSONString(dst, t.Name)
		dst = append(dst, `,"description":`...)
		dst = appendNullable(dst, t.Description)
		dst = append(dst, `,"parameters":`...)
		dst = respRaw(dst, t.Parameters)
		dst = append(dst, `,"strict":`...)
		dst = respBool(dst, t.Strict)
		dst = append(dst, '}')
	}
	dst = append(dst, `],"top_logprobs":`...)
	dst = respExtra(dst, r, "top_logprobs", "0")
	dst = append(dst, `,"top_p":`...)
	dst = respFloat(dst, r.TopP)
	dst = append(dst, `,"truncation":`...)
	dst = respExtra(dst, r, "truncation", `"disabled"`)
	dst = append(dst, `,"user":`...)
	dst = appendNullable(dst, rr.user)
	dst = append(dst, `,"metadata":{`...)
	for i, k := range sortedKeys(rr.Metadata) {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, k)
		dst = append(dst, ':')
		dst = appendJSONString(dst, rr.Metadata[k])
	}
	return append(dst, '}')
}

// respExtra appends the pass-through field k of r, or def if the client
// did not send it.
func respExtra(dst []byte, r *llm.Request, k, def string) []byte {
	if v, ok := r.Extra[k]; ok && !isNull(v) {
		return respCompact(dst, v)
	}
	return append(dst, def...)
}

func respRaw(dst []byte, raw json.RawMessage) []byte {
	if isNull(raw) {
		return append(dst, "null"...)
	}
	return respCompact(dst, raw)
}

func respFloat(dst []byte, f *float64) []byte {
	if f == nil {
		return append(dst, "null"...)
	}
	return strconv.AppendFloat(dst, *f, 'g', -1, 64)
}

func respBool(dst []byte, b *bool) []byte {
	if b == nil {
		return append(dst, "null"...)
	}
	return strconv.AppendBool(dst, *b)
}
