package httpapi

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keel-ai/keel/internal/router"
)

// metrics are the API layer's Prometheus series.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	ttft     *prometheus.HistogramVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keel_http_requests_total", Help: "API requests by route and status.",
		}, []string{"route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "keel_http_request_duration_seconds", Help: "Time to the last byte of an API response.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"route"}),
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "keel_time_to_first_token_seconds", Help: "Time to the first token written to a client, by client API.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"api"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.ttft)
	}
	return m
}

func (m *metrics) observe(route string, status int, start time.Time) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
}

// targetCollector exports every target's health from the router at scrape
// time: targets appear as traffic first reaches them.
type targetCollector struct {
	status                  func() []router.TargetStatus
	breaker, inflight, ttft *prometheus.Desc
}

func newTargetCollector(status func() []router.TargetStatus) *targetCollector {
	l := []string{"target"}
	return &targetCollector{
		status:   status,
		breaker:  prometheus.NewDesc("keel_breaker_state", "Circuit breaker state per target: 0 closed, 1 half-open, 2 open.", l, nil),
		inflight: prometheus.NewDesc("keel_target_inflight", "Attempts in flight per target.", l, nil),
		ttft:     prometheus.NewDesc("keel_target_ttft_p95_seconds", "Observed p95 time to first token per target (the adaptive hedge delay).", l, nil),
	}
}

func (c *targetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.breaker
	ch <- c.inflight
	ch <- c.ttft
}

func (c *targetCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.status() {
		ch <- prometheus.MustNewConstMetric(c.breaker, prometheus.GaugeValue, float64(s.Breaker()), s.Target)
		ch <- prometheus.MustNewConstMetric(c.inflight, prometheus.GaugeValue, float64(s.Inflight), s.Target)
		ch <- prometheus.MustNewConstMetric(c.ttft, prometheus.GaugeValue, s.P95.Seconds(), s.Target)
	}
}
