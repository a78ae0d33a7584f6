package router

import (
	"errors"

	"github.com/keel-ai/keel/internal/llm"
)

// action is what the router does after an attempt fails.
type action uint8

const (
	// giveUp returns the error to the client.
	giveUp action = iota
	// failover moves on to the next target.
	failover
)

// decide is the one place that maps a failure to an action (STYLE.md:
// errors are classified by adapters, decided on here). Issue 2's first
// version fails over on a refused or reset connection, a silent upstream,
// a rate limit or a server error, all before the first byte; everything
// else is the caller's problem or the upstream's final word.
func decide(err error) action {
	var e *llm.Error
	if !errors.As(err, &e) {
		return giveUp
	}
	switch e.Kind {
	case llm.KindConnect, llm.KindTimeout, llm.KindRateLimit, llm.KindQuota,
		llm.KindOverloaded, llm.KindServer, llm.KindStream, llm.KindAuth, llm.KindNotFound:
		return failover
	}
	return giveUp
}
