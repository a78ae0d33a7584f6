package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/keel-ai/keel/internal/sim"
)

// BenchmarkServe measures keel's whole request path in-process, for
// profiling (go test -bench Serve -cpuprofile): a zero-latency simulator
// behind a real keel server, streaming and not. scripts/bench measures the
// same across processes for the README's figures.
func BenchmarkServe(b *testing.B) {
	_, simURL := newSim(b, map[string]sim.Profile{"zero50": {Tokens: 50}})
	k := startKeel(b, fmt.Sprintf("providers: [{name: up, type: sim, base_url: %q}]\n", simURL))
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for _, stream := range []bool{false, true} {
		body := fmt.Sprintf(`{"model":"zero50","stream":%v,"messages":[{"role":"user","content":"bench"}]}`, stream)
		b.Run(fmt.Sprintf("stream=%v", stream), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := hc.Post(k.url+"/chat/completions", "application/json", strings.NewReader(body))
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		})
	}
}
