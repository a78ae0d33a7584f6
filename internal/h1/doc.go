// Package h1 is keel's lean HTTP/1.1, at both ends of a request: a client
// Transport for plain http:// upstreams (Ollama, vLLM, llama.cpp, the
// simulator) and the Server that faces keel's clients. In both, the
// connection's goroutine does all the work: no reader or writer
// goroutines per connection and no channel hand-offs. net/http's
// Transport spends about a fifth of keel's CPU per streamed request on its
// readLoop and writeLoop goroutines and the wake-ups between them and the
// caller; its Server starts a reader goroutine for every request.
//
// The two share one strict parser of heads (request and status lines,
// header fields, Content-Length), fuzzed against net/http's.
//
// # Transport
//
// Transport implements http.RoundTripper for http:// URLs only; any other
// scheme is an error, since the caller routes https:// to net/http. It
// speaks HTTP/1.1 without TLS, HTTP/2 or proxies: the caller must not use
// it where a proxy applies. A Transport is safe for concurrent use.
//
// Request. The request line carries URL.RequestURI(), Host is req.Host or
// else URL.Host, and the caller's header fields follow as given (a Host,
// Content-Length, Transfer-Encoding or Trailer field among them is
// ignored, whatever the case of its key; CR and LF in values become
// spaces). A request URI with control bytes in it is an error. User-Agent
// is sent only if the caller set one, and Accept-Encoding never unless the
// caller set it, so bodies are never gunzipped behind the caller's back. A body with
// ContentLength > 0 is sent with Content-Length; one of unknown length
// (-1, or 0 with a non-nil Body, as in net/http) with chunked transfer
// encoding. Head and body are written in one write when the body's length
// is known and at most 1 MiB; a larger body is streamed after the head.
// req.Body is always closed. req.Close, or a negative
// MaxIdleConnsPerHost, sends Connection: close.
//
// Response. Status, StatusCode, Proto*, Header (canonicalized like
// net/http), ContentLength, TransferEncoding, Close, Trailer and Request
// are set as net/http sets them. Interim 1xx responses are skipped (101 is
// an error). The body is delimited by chunked transfer encoding,
// Content-Length, or the server closing the connection; HEAD, 204 and 304
// responses have none (Body is http.NoBody). Each Read returns what has
// arrived without waiting for more, so a streamed event reaches the caller
// as soon as the server flushes it. Trailer values are filled in at EOF.
// A malformed status line, header section (over 1 MiB, say) or chunk
// framing is an error, never a panic.
//
// Connection reuse. A connection returns to the pool when its body has
// been read to EOF, unless the server or the request asked to close it.
// Closing a body before EOF closes the connection, unless the rest of a
// Content-Length body is already buffered. Body.Close is idempotent and
// may be called concurrently with Read, which it unblocks; Read after
// Close returns an error. Idle connections close after IdleConnTimeout,
// and at most MaxIdleConnsPerHost wait per host:port.
//
// Cancellation. While a request is in flight (dial, write, header read,
// body reads), the request context being done closes the connection, which
// unblocks whatever is waiting; the call returns an error wrapping
// ctx.Err(), and the connection is never reused. The context watch is
// released when the body completes.
//
// Stale connections. Without a reader goroutine, a connection the server
// closed while it sat idle is only noticed on use. So, like net/http, if a
// reused connection fails on write, or ends or resets before the first
// byte of the response, the request is sent once more on a freshly dialed
// connection: from the buffer it was written from when it fitted in one
// write, or else from req.GetBody. A request that can be sent neither way
// returns the error.
//
// # Why not a library
//
// github.com/valyala/fasthttp's HostClient with StreamResponseBody is the
// library made for this job. Measured through an http.RoundTripper adapter
// in this package's benchmark, it was no faster than this transport: the
// geometric mean of client CPU per request was the same (27.2 µs), single
// cases within ±8% either way. And the adapter has gaps it cannot close
// from outside: fasthttp has no context, so a call can be given a deadline
// but not canceled, and a streamed body cannot be interrupted mid-read
// because the connection is not exposed; its stale-connection retry skips
// POST, which is every chat call keel makes; requests and header fields
// must be copied between its types and net/http's both ways; and its
// pooled Request and Response objects live apart from the http.Response
// handed to the caller. So the rule that prefers a library does not apply
// here. The transport is about 1,200 lines with comments, all exercised by
// the tests and the fuzz target.
//
// # Server
//
// Server serves HTTP/1.1 over plain TCP to an http.Handler, one goroutine
// per connection, with keep-alive and pipelining. It implements what
// keel's handlers use of net/http's server: Header, WriteHeader, Write,
// and Flush or FlushError (so http.ResponseController works). There is no
// TLS, HTTP/2, Hijack, response trailers or deadline control; keel needs
// none, and a proxy in front terminates TLS.
//
// Requests. The request line must be METHOD SP target SP HTTP/1.0 or
// HTTP/1.1 (another version gets 505); header fields are read by the
// Transport's parser, up to 1 MiB (431 past it) within ReadHeaderTimeout
// of the first byte. An HTTP/1.1 request needs exactly one valid Host.
// Refused with 400, where net/http is lenient or smuggling hides: both
// Content-Length and Transfer-Encoding, differing Content-Length values,
// Transfer-Encoding in HTTP/1.0, and trailer fields after a chunked body;
// a transfer coding other than chunked gets 501 and CONNECT 405. A
// refused request's connection closes. FuzzRequest holds the reader to
// net/http's: whatever the server accepts, net/http reads alike, with the
// same fields, body and bytes left for the next request. Expect:
// 100-continue is answered when the handler first reads the body. What a
// handler leaves unread of a body is read and dropped, up to 256 KiB, to
// keep the connection; beyond that it closes.
//
// Responses. The body is held until the handler flushes, writes more than
// 64 KiB, or returns. A response complete by then goes out in one write
// with Content-Length (the common case for JSON answers); any other is
// chunked, or for HTTP/1.0 runs to the connection's close. Each flush is
// one write. Date is set, Content-Type sniffed when absent, header keys
// sorted, and CR or LF in values turned into spaces. HEAD, 204 and 304
// carry no body.
//
// The client going away. net/http starts a reader goroutine on every
// request to notice a client that hangs up. Here a watch starts only once
// the body is read and the handler has run for WatchAfter (50 ms): the
// request's context is then canceled with ErrClientGone as soon as the
// connection ends. A quick request costs a timer reset and no goroutine;
// a streaming one learns of the client leaving from the next failed
// write, which cancels its context too. A byte of a pipelined request that
// the watch reads is handed back to the next request.
//
// Shutdown closes the listeners and idle connections and waits for the
// requests in flight, which then close their connections; Close closes
// everything at once. A panicking handler ends its connection, as in
// net/http.
//
// Why not net/http's server: in scripts/bench, alternating the two in the
// same build (-keel-yaml 'http_server: net/http'), keel with this server
// made 32 concurrent streams at 40.5 % of direct where net/http's made
// 36.8 %, and maximum throughput 31.5 % where it made 29.0 %. config's http_server: net/http keeps net/http's server one
// line away. Why not a library: fasthttp's server takes no http.Handler;
// its adaptor (v1.78) runs each handler on a second goroutine and streams
// through a channel, the hand-off this package exists to avoid, and the
// request's context is done only when the server shuts down, never when
// the client leaves.
package h1
