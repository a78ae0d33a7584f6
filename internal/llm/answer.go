package llm

// Answer accumulates a streamed answer into its whole: what a non-streaming
// client receives, what keel records, and what it knows of a partial answer
// when a stream breaks. The zero value is empty and ready to use.
type Answer struct {
	ID      string
	Model   string
	Created int64

	Text      []byte
	Reasoning []byte
	ToolCalls []ToolCall
	Finish    Finish
	Usage     Usage
	// HasUsage reports whether any event carried usage.
	HasUsage bool
	// Events counts the events added.
	Events int
}

// Add folds ev into a. Usage replaces rather than adds: vendors report
// running totals.
func (a *Answer) Add(ev *Event) {
	a.Events++
	if a.ID == "" {
		a.ID, a.Model, a.Created = ev.ID, ev.Model, ev.Created
	}
	a.Text = append(a.Text, ev.Text...)
	a.Reasoning = append(a.Reasoning, ev.Reasoning...)
	for _, d := range ev.ToolCalls {
		for len(a.ToolCalls) <= d.Index {
			a.ToolCalls = append(a.ToolCalls, ToolCall{})
		}
		tc := &a.ToolCalls[d.Index]
		if d.ID != "" {
			tc.ID = d.ID
		}
		if d.Name != "" {
			tc.Name = d.Name
		}
		tc.Arguments += d.Arguments
	}
	if ev.Finish != "" {
		a.Finish = ev.Finish
	}
	if ev.Usage != nil {
		a.Usage, a.HasUsage = *ev.Usage, true
	}
}
