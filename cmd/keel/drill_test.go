package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	chaosdrill "github.com/keel-ai/keel/internal/drill"
)

// TestDrill runs a short chaos drill through a real in-process keel and
// simulator (issue 3): every answer must be complete, none truncated, no
// seam broken, and the faults must have struck.
func TestDrill(t *testing.T) {
	if testing.Short() {
		t.Skip("a drill takes seconds")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"drill", "-n", "200", "-c", "50", "-json"}, &stdout, &stderr)
	var r chaosdrill.Report
	if jerr := json.Unmarshal(stdout.Bytes(), &r); jerr != nil {
		t.Fatalf("drill: %v; report: %v\nstdout: %s\nstderr: %s", err, jerr, stdout.String(), stderr.String())
	}
	if err != nil || r.Floors() != nil {
		var table bytes.Buffer
		r.WriteTable(&table)
		t.Fatalf("drill: %v\n%s\nstderr: %s", err, table.String(), stderr.String())
	}
	if r.Requests != 200 || r.Streams != 100 {
		t.Errorf("requests = %d (%d streaming), want 200 (100)", r.Requests, r.Streams)
	}
	faults := 0
	for _, n := range r.Faults {
		faults += n
	}
	if faults == 0 || r.Exposed == 0 || r.Attempts <= r.Requests {
		t.Errorf("faults %v struck %d requests over %d attempts: want the drill to inject faults", r.Faults, r.Exposed, r.Attempts)
	}
}

// TestDrillFlags checks that bad flags and a bad user config fail before
// anything starts.
func TestDrillFlags(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"continuation", []string{"-continue", "sideways"}, "not one of reject, prefill, restart"},
		{"tokens", []string{"-tokens", "2"}, "-tokens"},
		{"route without config", []string{"-route", "smart"}, "-route needs -config"},
		{"missing config", []string{"-config", "/nonexistent/keel.yaml"}, "no such file"},
		{"arguments", []string{"extra"}, "unexpected arguments"},
		{"fallback faults", []string{"-fallback-faults", "2"}, "-fallback-faults"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append([]string{"drill"}, tt.args...), &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}
