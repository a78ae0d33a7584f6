// Package h1 is a lean HTTP/1.1 client transport for plain http://
// upstreams (Ollama, vLLM, llama.cpp, the simulator), in which the calling
// goroutine does all the work. It takes an idle keep-alive connection or
// dials one, writes the request in one write, reads the status line and
// header fields, and returns a response whose Body reads straight from the
// connection's read buffer. There are no per-connection goroutines and no
// channel hand-offs: net/http's Transport spends about a fifth of keel's
// CPU per streamed request on its readLoop and writeLoop goroutines and
// the wake-ups between them and the caller.
//
// # Contract
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
package h1
