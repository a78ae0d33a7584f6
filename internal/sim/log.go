package sim

import "time"

// Attempt is the record of one request to the simulator. Times come from
// the Server's clock (WithClock); a zero time means the moment never came.
type Attempt struct {
	// Model is the model name the request asked for.
	Model string `json:"model"`
	// Profile is the profile that answered: the x-sim-profile header, the
	// model name, or "default".
	Profile string `json:"profile"`
	// Number is the 1-based attempt number for Model since the last Reset.
	Number int `json:"number"`
	// Stream reports whether the client asked for a stream.
	Stream bool `json:"stream"`

	Arrived    time.Time `json:"arrived"`
	Headers    time.Time `json:"headers,omitzero"`
	FirstToken time.Time `json:"first_token,omitzero"`
	Ended      time.Time `json:"ended,omitzero"`

	// Status is the HTTP status sent, or 0 if none was (reset, hang, or
	// the client left first).
	Status int `json:"status"`
	// Fault is the name of the injected fault, or "" if none.
	Fault string `json:"fault,omitempty"`
	// Tokens is the number of completion tokens sent.
	Tokens int `json:"tokens"`
	// Completed reports whether the whole answer went out and the response
	// ended cleanly: for a stream, the finish chunk and the end marker.
	Completed bool `json:"completed"`
	// Canceled reports whether the client went away before the end.
	Canceled bool `json:"canceled"`

	// RequestID and KeelAttempt are the request's x-request-id and
	// x-keel-attempt headers.
	RequestID   string `json:"request_id,omitempty"`
	KeelAttempt string `json:"keel_attempt,omitempty"`
}

// attemptLog keeps the most recent attempts in arrival order, in a ring of
// at most limit entries. A slot is taken on arrival and filled in when the
// attempt ends, so the order is arrival order even when attempts end out of
// order. The zero value with limit 0 records nothing. It is guarded by the
// Server's mutex.
type attemptLog struct {
	limit int
	buf   []Attempt
	next  uint64 // sequence number of the next attempt
}

// addLocked records a and returns its sequence number.
func (l *attemptLog) addLocked(a Attempt) uint64 {
	seq := l.next
	l.next++
	if l.limit <= 0 {
		return seq
	}
	if len(l.buf) < l.limit {
		l.buf = append(l.buf, a)
	} else {
		l.buf[seq%uint64(l.limit)] = a
	}
	return seq
}

// setLocked replaces the record of attempt seq, unless it has been pushed
// out of the ring.
func (l *attemptLog) setLocked(seq uint64, a Attempt) {
	if l.limit <= 0 || l.next-seq > uint64(l.limit) {
		return
	}
	l.buf[seq%uint64(l.limit)] = a
}

// listLocked returns a copy of the records for model ("" = all), oldest
// first.
func (l *attemptLog) listLocked(model string) []Attempt {
	out := []Attempt{}
	n := uint64(len(l.buf))
	first := uint64(0)
	if l.next > n {
		first = l.next - n
	}
	for seq := first; seq < l.next; seq++ {
		a := l.buf[seq%uint64(max(l.limit, 1))]
		if model == "" || a.Model == model {
			out = append(out, a)
		}
	}
	return out
}

func (l *attemptLog) resetLocked() {
	l.buf = l.buf[:0]
	l.next = 0
}
