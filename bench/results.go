package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
)

// results holds the benchmark's figures (startup split by database, the engine-only memory figure
// kept beside the whole-bridge one). A nil field was not measured and is written as null.
type results struct {
	MegolmEncryptUS     *float64 `json:"megolm_encrypt_us"`
	MegolmDecryptUS     *float64 `json:"megolm_decrypt_us"`
	IRCToMatrixMsgsPerS *float64 `json:"irc_to_matrix_msgs_per_s"`
	IRCToMatrixUSPerMsg *float64 `json:"irc_to_matrix_us_per_msg"`
	IRCToMatrixRatio    *float64 `json:"irc_to_matrix_ratio"`
	MatrixToIRCMsgsPerS *float64 `json:"matrix_to_irc_msgs_per_s"`
	MatrixToIRCUSPerMsg *float64 `json:"matrix_to_irc_us_per_msg"`
	MatrixToIRCRatio    *float64 `json:"matrix_to_irc_ratio"`
	LatencyP50MS        *float64 `json:"latency_p50_ms"`
	LatencyP99MS        *float64 `json:"latency_p99_ms"`
	RSSIdleMiB          *float64 `json:"rss_idle_mib"`
	RSSPerLoginKiB      *float64 `json:"rss_per_login_kib"` // the whole bridge
	// The IRC engine alone (bridge/irc without bridgev2): what rss_per_login_kib measured before
	// the bridge phases existed.
	RSSPerLoginEngineKiB *float64 `json:"rss_per_login_engine_kib"`
	Startup10kPortalsS   *float64 `json:"startup_10k_portals_s"`
	// The issue asks for SQLite and PostgreSQL; startup_10k_portals_s stays, = the SQLite figure.
	Startup10kPortalsSQLiteS   *float64 `json:"startup_10k_portals_sqlite_s"`
	Startup10kPortalsPostgresS *float64 `json:"startup_10k_portals_postgres_s"`
	// The whole bridge, and the IRC engine alone, when every connection drops at once.
	StormPeakRSSGrowthPct       *float64 `json:"storm_peak_rss_growth_pct"`
	StormPeakRSSGrowthEnginePct *float64 `json:"storm_peak_rss_growth_engine_pct"`
	// The whole bridge with 10,000 logins, each in 3 channels: its memory, and how long a restart
	// takes to have them all connected and joined.
	Logins10kRSSMiB   *float64 `json:"logins_10k_rss_mib"`
	Logins10kConnectS *float64 `json:"logins_10k_connect_s"`
	// The whole bridge's CPU per message against the test stack's real Dendrite.
	RealHSIRCToMatrixUSPerMsg *float64 `json:"real_hs_irc_to_matrix_us_per_msg"`
	RealHSMatrixToIRCUSPerMsg *float64 `json:"real_hs_matrix_to_irc_us_per_msg"`
	// CPU per IRC line said into a channel that K logins of the bridge share (each reads it).
	SharedUSPerLineK1   *float64 `json:"shared_channel_us_per_line_k1"`
	SharedUSPerLineK10  *float64 `json:"shared_channel_us_per_line_k10"`
	SharedUSPerLineK100 *float64 `json:"shared_channel_us_per_line_k100"`
}

type row struct {
	key    string
	value  *float64
	unit   string
	target string
	scope  string // what was measured, when it is less than the issue asks
}

func (r results) rows() []row {
	return []row{
		{"megolm_encrypt_us", r.MegolmEncryptUS, "us", "(reference)", "bare goolm, 256 B, median of rounds"},
		{"megolm_decrypt_us", r.MegolmDecryptUS, "us", "(reference)", "bare goolm, 256 B, median of rounds"},
		{"irc_to_matrix_msgs_per_s", r.IRCToMatrixMsgsPerS, "msg/s", "", ""},
		{"irc_to_matrix_us_per_msg", r.IRCToMatrixUSPerMsg, "us CPU", "<= 700", ""},
		{"irc_to_matrix_ratio", r.IRCToMatrixRatio, "x encrypt", "(reference)", ""},
		{"matrix_to_irc_msgs_per_s", r.MatrixToIRCMsgsPerS, "msg/s", "", ""},
		{"matrix_to_irc_us_per_msg", r.MatrixToIRCUSPerMsg, "us CPU", "<= 700", ""},
		{"matrix_to_irc_ratio", r.MatrixToIRCRatio, "x decrypt", "(reference)", ""},
		{"latency_p50_ms", r.LatencyP50MS, "ms", "", ""},
		{"latency_p99_ms", r.LatencyP99MS, "ms", "<= 10", ""},
		{"rss_idle_mib", r.RSSIdleMiB, "MiB", "<= 40", ""},
		{"rss_per_login_kib", r.RSSPerLoginKiB, "KiB", "<= 48", "whole bridge, idle registered logins, no channel"},
		{"rss_per_login_engine_kib", r.RSSPerLoginEngineKiB, "KiB", "", "IRC engine alone, without bridgev2"},
		{"startup_10k_portals_s", r.Startup10kPortalsS, "s", "", "= the SQLite figure (default database)"},
		{"startup_10k_portals_sqlite_s", r.Startup10kPortalsSQLiteS, "s", "<= 10", ""},
		{"startup_10k_portals_postgres_s", r.Startup10kPortalsPostgresS, "s", "<= 10", ""},
		{"storm_peak_rss_growth_pct", r.StormPeakRSSGrowthPct, "%", "<= 20", "whole bridge, largest of 3 storms"},
		{"storm_peak_rss_growth_engine_pct", r.StormPeakRSSGrowthEnginePct, "%", "", "IRC engine alone, without bridgev2"},
		{"logins_10k_rss_mib", r.Logins10kRSSMiB, "MiB", "<= 512", "whole bridge, every login in 3 channels"},
		{"logins_10k_connect_s", r.Logins10kConnectS, "s", "<= 1.1 x throttle", "restart to all registered and joined, 100 connections/s"},
		{"real_hs_irc_to_matrix_us_per_msg", r.RealHSIRCToMatrixUSPerMsg, "us CPU", "<= 1.5 x fake", "real Dendrite, 1,000-line burst"},
		{"real_hs_matrix_to_irc_us_per_msg", r.RealHSMatrixToIRCUSPerMsg, "us CPU", "<= 1.5 x fake", "real Dendrite, 1,000 messages"},
		{"shared_channel_us_per_line_k1", r.SharedUSPerLineK1, "us CPU", "", "one login in the channel"},
		{"shared_channel_us_per_line_k10", r.SharedUSPerLineK10, "us CPU", "", "10 logins in the channel"},
		{"shared_channel_us_per_line_k100", r.SharedUSPerLineK100, "us CPU", "< 1.2 x k1", "100 logins in the channel"},
	}
}

func (r results) write(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func printTable(w io.Writer, r results, notes []string) {
	fmt.Fprintf(w, "\n%-33s %12s  %-10s %-17s %s\n", "figure", "value", "unit", "target", "scope")
	for _, x := range r.rows() {
		v, scope := "-", x.scope
		if x.value != nil {
			v = strconv.FormatFloat(*x.value, 'f', 2, 64)
		} else {
			scope = "not measured yet"
		}
		fmt.Fprintf(w, "%-33s %12s  %-10s %-17s %s\n", x.key, v, x.unit, x.target, scope)
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintln(w, "  "+n)
		}
	}
	fmt.Fprintln(w)
}
