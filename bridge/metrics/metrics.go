// Package metrics is sealbridge's Prometheus instrumentation: the counters and histograms the bridge
// updates, gauges read from the running logins at scrape time, and the HTTP listener that serves
// them at /metrics (off unless `network.metrics.enabled` is set).
package metrics

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// Directions of a bridged message.
const (
	IRCToMatrix = "irc_to_matrix"
	MatrixToIRC = "matrix_to_irc"
)

// Metrics holds every collector in its own registry, so tests can make as many as they like.
type Metrics struct {
	Registry *prometheus.Registry

	// Messages bridged, by direction.
	Messages *prometheus.CounterVec
	// SendLatency is how long the bridge took, by direction: IRC->Matrix from the line's arrival on
	// the IRC socket to the homeserver accepting the event; Matrix->IRC from the bridge receiving the
	// event to its lines being queued for the IRC server (flood control delay not included).
	SendLatency *prometheus.HistogramVec
	// DecryptionFailures counts failed Megolm decryptions of incoming Matrix events, by reason
	// ("no_session": the key had not arrived yet, retried later; "other").
	DecryptionFailures *prometheus.CounterVec
	// Reconnects counts IRC connections re-established after a drop.
	Reconnects prometheus.Counter
	// PeerLimited counts what an IRC peer sent beyond one of the bridge's bounds (network.limits
	// and the engine's own), by limit: refused, dropped, or folded into something smaller.
	PeerLimited *prometheus.CounterVec
	// Undelivered counts messages the bridge gave up delivering (whom they concern was told), by
	// direction and reason.
	Undelivered *prometheus.CounterVec
	// SpoolUnopenable counts reads of undelivered items this credentials_key cannot open: they are
	// kept in the database (the right key opens them again), skipped and logged.
	SpoolUnopenable prometheus.Counter

	mu              sync.Mutex
	states          func() map[string]int
	depth           func() map[string]int
	version, commit string
}

// New makes the collectors and registers them with Go and process collectors.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sealbridge_messages_bridged_total",
			Help: "Messages bridged, by direction and network (\"user\" for servers users named at login).",
		}, []string{"direction", "network"}),
		SendLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sealbridge_send_latency_seconds",
			Help:    "Time the bridge took to pass a message on, by direction.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"direction"}),
		DecryptionFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sealbridge_decryption_failures_total",
			Help: "Failed decryptions of incoming Matrix events, by reason.",
		}, []string{"reason"}),
		Reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sealbridge_irc_reconnects_total",
			Help: "IRC connections re-established after a drop.",
		}),
		PeerLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sealbridge_peer_limited_total",
			Help: "What IRC peers sent beyond one of the bridge's bounds (refused, dropped or folded), by limit.",
		}, []string{"limit"}),
		Undelivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sealbridge_undelivered_messages_total",
			Help: "Messages the bridge gave up delivering, by direction and reason; whom they concern was told.",
		}, []string{"direction", "reason"}),
		SpoolUnopenable: NewSpoolUnopenable(),
	}
	for _, dir := range []string{IRCToMatrix, MatrixToIRC} {
		m.SendLatency.WithLabelValues(dir)
	}
	for _, reason := range []string{"no_session", "other"} {
		m.DecryptionFailures.WithLabelValues(reason)
	}
	for _, limit := range Limits {
		m.PeerLimited.WithLabelValues(limit)
	}
	for _, dir := range []string{IRCToMatrix, MatrixToIRC} {
		for _, reason := range UndeliveredReasons {
			m.Undelivered.WithLabelValues(dir, reason)
		}
	}
	m.Registry.MustRegister(m.Messages, m.SendLatency, m.DecryptionFailures, m.Reconnects, m.PeerLimited, m.Undelivered, m.SpoolUnopenable,
		&gaugeCollector{m: m},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// The limits PeerLimited counts.
const (
	LimitChannels   = "channels"    // a JOIN beyond network.limits.max_channels
	LimitNewDMs     = "new_dms"     // a private chat held as a request (rate or max_dms)
	LimitDMRequests = "dm_requests" // a request dropped: max_dm_requests reached
	LimitQueue      = "queue"       // an event beyond queue_in_memory (message left in the database, other event folded)
	LimitBatch      = "batch"       // a batch line or batch beyond max_batch_lines / max_open_batches
	LimitHistory    = "history"     // a CHATHISTORY answer the bridge did not ask for
	LimitNicks      = "nicks"       // a nick forgotten to stay within max_nicks
	LimitISupport   = "isupport"    // an ISUPPORT or CAP token beyond the engine's bound
)

// Limits are the label values of PeerLimited.
var Limits = []string{LimitChannels, LimitNewDMs, LimitDMRequests, LimitQueue, LimitBatch, LimitHistory, LimitNicks, LimitISupport}

// The reasons Undelivered counts a message under.
const (
	UndeliveredExpired      = "expired"       // still not delivered a day after it arrived
	UndeliveredAttempts     = "attempts"      // handed over again at several starts without success
	UndeliveredRefused      = "refused"       // the IRC server refused it (an error numeric or FAIL)
	UndeliveredUnconfirmed  = "unconfirmed"   // the connection dropped before the server confirmed it
	UndeliveredNotConnected = "not_connected" // no IRC connection came back in time
	UndeliveredOther        = "other"         // anything else the sender was told (too long, not supported, ...)
)

// UndeliveredReasons are the reason label values of Undelivered.
var UndeliveredReasons = []string{UndeliveredExpired, UndeliveredAttempts, UndeliveredRefused, UndeliveredUnconfirmed, UndeliveredNotConnected, UndeliveredOther}

// Undeliverable counts one message given up in direction for reason.
func (m *Metrics) Undeliverable(direction, reason string) {
	if m != nil {
		m.Undelivered.WithLabelValues(direction, reason).Inc()
	}
}

// SetBuildInfo sets sealbridge_build_info's labels (the version and commit the binary was built
// from); its value is always 1.
func (m *Metrics) SetBuildInfo(version, commit string) {
	m.mu.Lock()
	m.version, m.commit = version, commit
	m.mu.Unlock()
}

// Limited counts one thing refused or dropped under limit.
func (m *Metrics) Limited(limit string) {
	if m != nil {
		m.PeerLimited.WithLabelValues(limit).Inc()
	}
}

// The queues sealbridge_send_queue_depth reports.
const (
	QueueIRC        = "irc"        // lines waiting for IRC flood control
	QueueHomeserver = "homeserver" // IRC events waiting for the homeserver (memory and spool)
)

// SetSources tells the gauges where to read, at scrape time, the IRC connections by state and the
// number of lines and events waiting in the bridge's queues (by QueueIRC and QueueHomeserver).
func (m *Metrics) SetSources(states func() map[string]int, depth func() map[string]int) {
	m.mu.Lock()
	m.states, m.depth = states, depth
	m.mu.Unlock()
}

// Observe records one message bridged in direction on network, arrived (or received) at since.
func (m *Metrics) Observe(direction, network string, since time.Time) {
	m.Messages.WithLabelValues(direction, network).Inc()
	m.SendLatency.WithLabelValues(direction).Observe(time.Since(since).Seconds())
}

var (
	connDesc  = prometheus.NewDesc("sealbridge_irc_connections", "IRC connections (one per login), by state.", []string{"state"}, nil)
	queueDesc = prometheus.NewDesc("sealbridge_send_queue_depth", "Lines waiting for IRC flood control (queue=irc) and IRC events waiting for the homeserver (queue=homeserver).", []string{"queue"}, nil)
	buildDesc = prometheus.NewDesc("sealbridge_build_info", "The version and commit sealbridge was built from (always 1).", []string{"version", "commit", "goversion"}, nil)
)

// ConnectionStates are the states the connection gauge always reports.
var ConnectionStates = []string{"connected", "connecting", "disconnected"}

type gaugeCollector struct{ m *Metrics }

func (g *gaugeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- connDesc
	ch <- queueDesc
	ch <- buildDesc
}

func (g *gaugeCollector) Collect(ch chan<- prometheus.Metric) {
	g.m.mu.Lock()
	states, depth, version, commit := g.m.states, g.m.depth, g.m.version, g.m.commit
	g.m.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(buildDesc, prometheus.GaugeValue, 1, version, commit, runtime.Version())
	counts := map[string]int{}
	if states != nil {
		counts = states()
	}
	for _, s := range ConnectionStates {
		ch <- prometheus.MustNewConstMetric(connDesc, prometheus.GaugeValue, float64(counts[s]), s)
	}
	depths := map[string]int{}
	if depth != nil {
		depths = depth()
	}
	for _, q := range []string{QueueIRC, QueueHomeserver} {
		ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(depths[q]), q)
	}
}

// Serve answers /metrics on addr until ctx ends.
func (m *Metrics) Serve(ctx context.Context, addr string, log zerolog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	log.Info().Str("address", addr).Msg("Serving Prometheus metrics")
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// NewSpoolUnopenable makes the SpoolUnopenable counter (the spool keeps one of its own until the
// connector gives it the registered one).
func NewSpoolUnopenable() prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sealbridge_spool_unopenable_total",
		Help: "Reads of undelivered items the credentials_key cannot open; they are kept in the database, not delivered.",
	})
}
