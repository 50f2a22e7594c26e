package irc

import (
	"context"
	"crypto/tls"
	"net"
	"time"
)

// FloodConfig configures the outgoing token bucket.
type FloodConfig struct {
	// Burst is the number of lines that may be sent back to back (default 5).
	Burst int
	// LinesPerSecond is the refill rate once the burst is spent (default 2).
	LinesPerSecond float64
}

// BackoffConfig configures the reconnect backoff of Run.
type BackoffConfig struct {
	// Min is the first delay and the lower bound of every delay (default 2s).
	Min time.Duration
	// Max is the upper bound of the delay (default 5m).
	Max time.Duration
}

// Config configures a Client.
type Config struct {
	// Addr is "host:port".
	Addr string
	// TLS enables TLS, with certificate verification by default.
	TLS bool
	// TLSConfig is optional; ServerName defaults to the host of Addr.
	TLSConfig *tls.Config
	// ServerPassword is sent with PASS when set.
	ServerPassword string
	// Nick is the wanted nick; Username and RealName default to it.
	Nick, Username, RealName string
	// SASLUser and SASLPassword make SASL PLAIN required when set.
	SASLUser, SASLPassword string
	// SASLExternal makes SASL EXTERNAL required instead: the server logs us in to the account
	// that has the fingerprint of the client certificate in TLSConfig.Certificates (CertFP).
	// https://ircv3.net/specs/extensions/sasl-3.1
	SASLExternal bool
	// NickServPassword, for servers without SASL, makes registration end only once
	// "PRIVMSG NickServ :IDENTIFY <Nick> <password>" is answered with RPL_LOGGEDIN
	// (900); a refusal from NickServ is ErrNickServFailed.
	NickServPassword string
	// NickFallback makes registration try Nick+"_", Nick+"__" and
	// Nick+"___" on 433 instead of failing with ErrNickInUse.
	NickFallback bool
	Flood        FloodConfig
	Backoff      BackoffConfig
	// ConnectTimeout bounds dial plus registration (default 30s).
	ConnectTimeout time.Duration
	// PingInterval is the idle time after which we PING, and the time we
	// then wait for any traffic before dropping the connection (default 60s).
	PingInterval time.Duration
	// QuitWait is how long Close waits for the server to close the link after QUIT, and then
	// for the reader to end (default 2s).
	QuitWait time.Duration
	// Dial replaces net.Dialer.DialContext when set.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Pace, when set, is called by Run before every connection attempt (the first one included,
	// not by Connect) and may wait; an error (ctx done) stops Run. Several clients share one Pace
	// to spread their connections over time.
	Pace func(ctx context.Context) error
	// WebIRC, when set, opens every connection with WEBIRC: the server shows Hostname and IP for
	// this client instead of the bridge's own (a gateway the server's operators configured).
	WebIRC *WebIRC
	// MaxBatchLines bounds the lines kept for one labeled response (default 1000); the rest are
	// still passed to the Handler, only not collected.
	MaxBatchLines int
	// Limited, when set, is told each time the server sent more than one of the engine's bounds
	// (LimitBatch, LimitISupport) and the excess was dropped.
	Limited func(limit string)
}

// WebIRC is the WEBIRC line (https://ircv3.net/specs/extensions/webirc).
type WebIRC struct {
	Password, Gateway, Hostname, IP string
}

// The bounds the engine reports to Config.Limited.
const (
	LimitBatch    = "batch"
	LimitISupport = "isupport"
)

const (
	defaultBurst          = 5
	defaultLinesPerSecond = 2
	defaultBackoffMin     = 2 * time.Second
	defaultBackoffMax     = 5 * time.Minute
	defaultConnectTimeout = 30 * time.Second
	defaultPingInterval   = 60 * time.Second
	defaultQuitWait       = 2 * time.Second
	maxNickFallbacks      = 3
	defaultMaxBatchLines  = 1000
	// maxISupportTokens and maxCaps bound what a server can make a connection remember of its
	// ISUPPORT tokens and offered capabilities; real servers send well under a hundred of each.
	maxISupportTokens = 200
	maxCaps           = 200
	// stableConnection is how long a connection must stay up for the
	// backoff to start again from Min.
	stableConnection = time.Minute
)

func (cfg Config) withDefaults() Config {
	if cfg.Username == "" {
		cfg.Username = cfg.Nick
	}
	if cfg.RealName == "" {
		cfg.RealName = cfg.Nick
	}
	if cfg.Flood.Burst <= 0 {
		cfg.Flood.Burst = defaultBurst
	}
	if cfg.Flood.LinesPerSecond <= 0 {
		cfg.Flood.LinesPerSecond = defaultLinesPerSecond
	}
	if cfg.Backoff.Min <= 0 {
		cfg.Backoff.Min = defaultBackoffMin
	}
	if cfg.Backoff.Max <= 0 {
		cfg.Backoff.Max = defaultBackoffMax
	}
	if cfg.Backoff.Max < cfg.Backoff.Min {
		cfg.Backoff.Max = cfg.Backoff.Min
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = defaultConnectTimeout
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = defaultPingInterval
	}
	if cfg.QuitWait <= 0 {
		cfg.QuitWait = defaultQuitWait
	}
	if cfg.MaxBatchLines <= 0 {
		cfg.MaxBatchLines = defaultMaxBatchLines
	}
	if cfg.Limited == nil {
		cfg.Limited = func(string) {}
	}
	return cfg
}
