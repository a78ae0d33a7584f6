package router_test

import (
	"testing"
	"testing/synctest"

	"github.com/keel-ai/keel/internal/router"
	"github.com/keel-ai/keel/internal/sim"
)

// TestSeamKeepsRepeatedWord is a regression test (found by keel drill): an
// answer whose word repeats right at the seam ("wren wren") lost one of
// them, taken for a repeat of the text before the seam, and the client got
// a complete-looking answer with a word missing.
func TestSeamKeepsRepeatedWord(t *testing.T) {
	const prompt = "drill-1705 please answer this question"
	// Canonical: "Fresh early … sound wren wren myrtle … hollow." (tokens 11 and 12 are "wren ").
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, map[string]sim.Profile{
			"cuts": {Faults: []sim.Fault{{Kind: sim.FaultCut, After: 12, Always: true}}}, // sent ends "… sound wren "
			"good": {},
		}, map[string][]target{"r": {{"a", "cuts", false}, {"b", "good", true}}}, router.Options{})
		r := w.ask("r", prompt, true)
		w.complete(r, prompt)
	})
}
