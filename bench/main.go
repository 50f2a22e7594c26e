// Command bench is sealbridge's benchmark harness. It drives the real code paths on
// loopback and prints one table of figures, writing the same figures to a JSON file:
//
//	go run -tags goolm ./bench -out bench/results.json
//
// Figures are measurements, not pass/fail tests. A figure that the harness could not measure is
// written as null with a note saying why; nothing is ever estimated.
//
// What it measures:
//
//   - megolm_encrypt_us / megolm_decrypt_us: bare goolm Megolm group sessions on 256-byte
//     plaintexts, median of several rounds (megolm.go);
//   - rss_per_login_engine_kib and storm_peak_rss_growth_engine_pct: the IRC engine alone (bridge/irc,
//     without bridgev2) against a fake IRC server in a separate process (logins.go, storm.go,
//     ircd.go);
//   - the whole bridge (bridgev2, mautrix's Matrix connector and crypto helper, the sealbridge
//     connector) in a child process, against a "world" child holding a fake homeserver, a fake IRC
//     server and a fake Matrix device (world*.go, hs*.go, ircchan.go, device.go): IRC->Matrix and
//     Matrix->IRC throughput and CPU per message into encrypted portals, latency at 500 msg/s,
//     idle RSS, RSS per login, startup with 10,000 portals on SQLite and PostgreSQL, shared
//     channels, 10,000 logins and the whole bridge's storm (bridge*.go, startup.go, shared.go,
//     scale.go); the real stack's Dendrite (realhs.go).
//
// Every measured process is a child (this same binary re-executed with -role, or with
// SEALBRIDGE_BENCH_ROLE=bridge for the bridge, whose command line is mxmain's), so that the fakes
// and the other phases never count in the memory or CPU being measured.
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"
)

type options struct {
	out       string
	rounds    int
	megolmOps int
	logins    int
	storm     int
	skipIRC   bool
	memprof   string

	// Bridge phases.
	skipBridge      bool
	skipStartup     bool
	skipMessages    bool
	msgs            int
	latencySecs     int
	txnBatch        int
	startupPortals  int
	startupLogins   int
	skipShared      bool
	sharedLines     int
	skipScale       bool
	skipBridgeStorm bool
	scaleLogins     int
	skipRealHS      bool
	realHSLines     int
	realHSRounds    int
	bridgeProfile   string

	// Child roles.
	role                    string
	addr                    string
	ircdPID                 int
	asToken, hsToken, asURL string
	ircTags                 bool
}

func main() {
	var o options
	// The bridge child takes mxmain's own command line (mauflag reads os.Args at init), so its role
	// comes from the environment.
	if os.Getenv(bridgeRoleEnv) == "bridge" {
		childBridge(os.Getenv(bridgeCtlEnv))
		return
	}
	flag.StringVar(&o.out, "out", "bench/results.json", "where to write the JSON results")
	flag.IntVar(&o.rounds, "rounds", 7, "rounds per micro-benchmark (the median is reported)")
	flag.IntVar(&o.megolmOps, "megolm-ops", 5000, "Megolm encrypts (and decrypts) per round")
	flag.IntVar(&o.logins, "logins", 2000, "idle connected logins for rss_per_login_kib and rss_per_login_engine_kib")
	flag.IntVar(&o.storm, "storm", 1000, "logins dropped and reconnected for storm_peak_rss_growth_pct (whole bridge) and _engine_pct")
	flag.StringVar(&o.memprof, "memprofile", "", "write a heap profile of the idle logins to this file")
	flag.BoolVar(&o.skipIRC, "skip-irc", false, "skip the IRC engine memory phases")
	flag.BoolVar(&o.skipBridge, "skip-bridge", false, "skip every phase that runs the bridge")
	flag.BoolVar(&o.skipStartup, "skip-startup", false, "skip the startup_10k_portals phases")
	flag.BoolVar(&o.skipMessages, "skip-messages", false, "skip the bridge's message and idle-memory phases")
	flag.IntVar(&o.msgs, "msgs", 20000, "messages each way for the throughput phases")
	flag.IntVar(&o.latencySecs, "latency-secs", 10, "seconds of 500 msg/s for the latency phase")
	flag.IntVar(&o.txnBatch, "txn-batch", 50, "events per appservice transaction (Matrix->IRC)")
	flag.IntVar(&o.startupPortals, "startup-portals", 10000, "portals pre-seeded for startup_10k_portals_*")
	flag.IntVar(&o.startupLogins, "startup-logins", 10, "logins the startup portals are spread over")
	flag.BoolVar(&o.skipShared, "skip-shared", false, "skip the shared_channel_us_per_line_k* phase")
	flag.IntVar(&o.sharedLines, "shared-lines", 2000, "lines said into each shared channel")
	flag.BoolVar(&o.skipScale, "skip-scale", false, "skip the logins_10k_* phase")
	flag.BoolVar(&o.skipBridgeStorm, "skip-bridge-storm", false, "skip the whole-bridge storm_peak_rss_growth_pct phase")
	flag.IntVar(&o.scaleLogins, "scale-logins", 10000, "logins of the logins_10k_* phase")
	flag.BoolVar(&o.skipRealHS, "skip-real-hs", false, "skip the real_hs_* phase (the test stack's Dendrite)")
	flag.IntVar(&o.realHSLines, "real-hs-lines", 1000, "messages each way in the real_hs_* phase")
	flag.IntVar(&o.realHSRounds, "real-hs-rounds", 3, "rounds of the real_hs_* phase (each figure is the median round)")
	flag.StringVar(&o.bridgeProfile, "bridge-profile", "", "write CPU profiles of the bridge during each bridge phase (and its heap after the logins_10k_* restart) into this directory")
	flag.StringVar(&o.role, "role", "", "internal: run as a child (ircd, logins, storm, world)")
	flag.StringVar(&o.addr, "addr", "", "internal: fake IRC server address for a child")
	flag.IntVar(&o.ircdPID, "ircd-pid", 0, "internal: fake IRC server pid (storm child)")
	flag.StringVar(&o.asToken, "as-token", "", "internal: appservice token (world child)")
	flag.StringVar(&o.hsToken, "hs-token", "", "internal: homeserver token (world child)")
	flag.StringVar(&o.asURL, "as-url", "", "internal: the bridge's appservice URL (world child)")
	flag.BoolVar(&o.ircTags, "irc-tags", false, "internal: the fake IRC server offers message-tags (world child)")

	flag.Parse()

	var err error
	switch o.role {
	case "":
		err = orchestrate(o)
	case "ircd":
		err = runIRCd()
	case "logins":
		err = childLogins(o)
	case "storm":
		err = childStorm(o)
	case "world":
		err = runWorld(o)
	default:
		err = fmt.Errorf("unknown role %q", o.role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// orchestrate runs every phase, prints the table and writes the JSON file.
func orchestrate(o options) error {
	start := time.Now()
	loadStart := loadAvg()
	var r results
	var notes []string

	logf("megolm: %d rounds of %d encrypts and decrypts of 256 bytes", o.rounds, o.megolmOps)
	enc, dec, encs, decs, err := benchMegolm(o.rounds, o.megolmOps)
	if err != nil {
		return fmt.Errorf("megolm: %w", err)
	}
	r.MegolmEncryptUS, r.MegolmDecryptUS = round2(enc), round2(dec)
	notes = append(notes, fmt.Sprintf("megolm: %d rounds of %d ops after a warm-up round; per-round means encrypt %.1f..%.1f us, decrypt %.1f..%.1f us",
		o.rounds, o.megolmOps, slices.Min(encs), slices.Max(encs), slices.Min(decs), slices.Max(decs)))

	if !o.skipIRC {
		logf("irc engine: %d idle logins", o.logins)
		lr, err := runLoginsPhase(o.logins, o.memprof)
		if err != nil {
			return fmt.Errorf("logins phase: %w", err)
		}
		r.RSSPerLoginEngineKiB = round2(lr.PerLoginKiB)
		notes = append(notes, lr.notes()...)

		logf("irc engine: storm of %d logins", o.storm)
		sr, err := runStormPhase(o.storm)
		if err != nil {
			return fmt.Errorf("storm phase: %w", err)
		}
		r.StormPeakRSSGrowthEnginePct = round2(sr.GrowthPct)
		notes = append(notes, sr.notes()...)
	}

	if !o.skipBridge {
		// Each phase: a log line, its run, its notes; a failed phase says what it did not measure
		// and the others go on.
		phases := []struct {
			skip        bool
			what        string
			run         func(options, *results) ([]string, error)
			notMeasured string
		}{
			{o.skipMessages, "message phases (fake homeserver, fake IRC server, the real bridge in a child)", runMessagePhases, "the bridge message phases failed"},
			{o.skipMessages, fmt.Sprintf("%d idle logins (whole bridge)", o.logins), runBridgeLoginsPhase, "rss_per_login_kib (whole bridge) not measured"},
			{o.skipShared, "shared channels (1, 10 and 100 logins in one channel)", runSharedPhase, "shared_channel_us_per_line_k* not measured"},
			{o.skipScale, fmt.Sprintf("%d logins, each in 3 channels", o.scaleLogins), runScalePhase, "logins_10k_* not measured"},
			{o.skipBridgeStorm, fmt.Sprintf("storms of %d logins (whole bridge)", o.storm), runBridgeStormPhase, "storm_peak_rss_growth_pct not measured"},
			{o.skipRealHS, "against the test stack's Dendrite, InspIRCd and matrix-js-sdk", runRealHSPhase, "real_hs_* not measured"},
		}
		for _, ph := range phases {
			if ph.skip {
				continue
			}
			logf("bridge: %s", ph.what)
			n, err := ph.run(o, &r)
			notes = append(notes, n...)
			if err != nil {
				notes = append(notes, ph.notMeasured+": "+err.Error())
				logf("bridge: %s: %v", ph.notMeasured, err)
			}
		}
		if !o.skipStartup {
			notes = append(notes, runStartupPhases(o, &r)...)
		}
	}

	notes = append(notes, "load average (1, 5, 15 min) at the start: "+loadStart+", at the end: "+loadAvg())
	printTable(os.Stdout, r, notes)
	if err := r.write(o.out); err != nil {
		return err
	}
	logf("wrote %s (%s)", o.out, time.Since(start).Round(time.Second))
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

// round2 rounds to two decimals for the JSON file.
func round2(v float64) *float64 {
	v = math.Round(v*100) / 100
	return &v
}

// loadAvg is the first three fields of /proc/loadavg (the machine is shared: say how busy it was).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}
