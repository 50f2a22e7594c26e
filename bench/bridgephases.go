package main

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/sealbridge/sealbridge/test/stack"
)

const (
	portals     = 10 // encrypted portals of the message phases
	benchUser   = "@alice:" + benchDomain
	benchNick   = "alice"
	chanPrefix  = "bench"
	latencyRate = 500 // msg/s
)

// bridgeEnv is a world child and a bridge child wired together on a fresh database.
type bridgeEnv struct {
	dir    string
	world  *worldProc
	bridge *bridgeProc
	setup  bridgeSetup
}

// envOptions set up a bridgeEnv: the database (dbURI "" = SQLite in the env's directory), whether
// the fake IRC server offers message-tags and gives every line a msgid, the bridge's connect
// throttle for the bench network (0: 1,000 connections a second), and whether the bridge may
// lower its garbage collector's target while many logins connect (bridge/startgc.go), as it does
// by default. Without startGC the bridge runs with GOGC=100, Go's default and the bridge's own
// setting outside that window, so that a phase measures the steady state whenever its logins
// connected.
type envOptions struct {
	dbType, dbURI string
	ircTags       bool
	connects      int
	startGC       bool
}

// startBridgeEnv starts a world and a bridge.
func startBridgeEnv(o envOptions) (*bridgeEnv, error) {
	dbType, dbURI := o.dbType, o.dbURI
	dir, err := os.MkdirTemp("", "sealbridge-bench-")
	if err != nil {
		return nil, err
	}
	asPort, err := freePort()
	if err != nil {
		return nil, err
	}
	s := bridgeSetup{dir: dir, asPort: asPort, asToken: randToken(), hsToken: randToken(), secret: randToken(), dbType: dbType, dbURI: dbURI, connects: o.connects, startGC: o.startGC}
	if dbURI == "" {
		s.dbType, s.dbURI = "sqlite3-fk-wal", stack.SQLiteURI(filepath.Join(dir, "sealbridge.db"))
	}
	asURL := fmt.Sprintf("http://127.0.0.1:%d", asPort)
	w, err := startWorld(s.asToken, s.hsToken, asURL, o.ircTags)
	if err != nil {
		return nil, err
	}
	s.hsURL, s.ircAddr = w.hsURL, w.ircAddr
	env := &bridgeEnv{dir: dir, world: w, setup: s}
	cfg, err := writeBridgeConfig(s)
	if err != nil {
		env.close()
		return nil, err
	}
	if env.bridge, err = startBridge(cfg, asURL, s.secret, s.startGC); err != nil {
		env.close()
		return nil, err
	}
	return env, nil
}

func (e *bridgeEnv) restartBridge() (time.Time, error) {
	e.bridge.stop()
	start := time.Now()
	b, err := startBridge(filepath.Join(e.dir, "config.yaml"), e.bridge.asURL, e.setup.secret, e.setup.startGC)
	if err != nil {
		return start, err
	}
	e.bridge = b
	return b.started, nil
}

func (e *bridgeEnv) close() {
	if e.bridge != nil {
		e.bridge.stop()
	}
	e.world.stop()
	if os.Getenv("BENCH_KEEP") != "" {
		logf("kept %s", e.dir)
		return
	}
	_ = os.RemoveAll(e.dir)
}

// loginWithChannels logs user in as nick and waits until the bridge has created a portal for each of
// the n channels the fake IRC server makes the nick join (wantRooms portal rooms in all).
func (e *bridgeEnv) loginWithChannels(user, nick, prefix string, n int, wantRooms int, timeout time.Duration) error {
	if err := e.loginAndJoin(user, nick, prefix, n); err != nil {
		return err
	}
	return e.waitRooms(wantRooms, timeout)
}

// loginAndJoin logs user in as nick and has the fake IRC server join it to n channels #prefix0...
func (e *bridgeEnv) loginAndJoin(user, nick, prefix string, n int) error {
	if err := e.bridge.login(user, nick); err != nil {
		return err
	}
	return e.world.call(http.MethodPost, "force", url.Values{"nick": {nick}, "n": {strconv.Itoa(n)}, "prefix": {prefix}}, nil)
}

// waitRooms waits until the fake homeserver holds wantRooms rooms.
func (e *bridgeEnv) waitRooms(wantRooms int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := e.world.state()
		if err != nil {
			return err
		}
		if st.Rooms >= wantRooms {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d portal rooms created within %s", st.Rooms, wantRooms, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runMessagePhases measures rss_idle_mib, IRC->Matrix and Matrix->IRC throughput and CPU, and the
// latency at 500 msg/s, on one bridge with SQLite.
func runMessagePhases(o options, r *results) (notes []string, err error) {
	env, err := startBridgeEnv(envOptions{})
	if err != nil {
		return nil, err
	}
	defer env.close()
	b := env.bridge

	time.Sleep(5 * time.Second)
	rss, err := b.rssKiB()
	if err != nil {
		return nil, err
	}
	r.RSSIdleMiB = round2(float64(rss) / 1024)
	notes = append(notes, "rss_idle_mib: VmRSS of the bridge child 5 s after /_matrix/mau/ready, no login, SQLite, against the fake homeserver")

	logf("bridge: login %s, %d encrypted portals", benchUser, portals)
	if err = env.loginWithChannels(benchUser, benchNick, chanPrefix, portals, portals, 2*time.Minute); err != nil {
		return notes, err
	}
	q := url.Values{"channels": {strconv.Itoa(portals)}, "prefix": {chanPrefix}}
	warm := url.Values{"warm": {"1"}}
	for k, v := range q {
		warm[k] = v
	}
	if err = env.world.call(http.MethodPost, "irc2mx", warm, nil); err != nil {
		return notes, err
	}

	logf("bridge: IRC->Matrix, %d messages as fast as the bridge takes them", o.msgs)
	prof := startProfile(o.bridgeProfile, b.ctlAddr, "irc_to_matrix")
	var i2m ircToMatrixResult
	cpu, err := measureCPU(b, func() error {
		return env.world.call(http.MethodPost, "irc2mx", with(q, "n", o.msgs, "rate", 0), &i2m)
	})
	prof.finish()
	if err != nil {
		return notes, err
	}
	r.IRCToMatrixMsgsPerS = round2(i2m.MsgsPerS)
	us := float64(cpu.Microseconds()) / float64(o.msgs)
	r.IRCToMatrixUSPerMsg = round2(us)
	if r.MegolmEncryptUS != nil {
		r.IRCToMatrixRatio = round2(us / *r.MegolmEncryptUS)
	}
	notes = append(notes, fmt.Sprintf("irc_to_matrix: %d PRIVMSGs round-robin into %d encrypted portals, %d m.room.encrypted arrived, bridge CPU %s; other sends %s",
		o.msgs, portals, i2m.Arrived, cpu.Round(time.Millisecond), i2m.Others))

	n := latencyRate * int(o.latencySecs)
	logf("bridge: latency, %d messages at %d msg/s", n, latencyRate)
	var lat ircToMatrixResult
	if err = env.world.call(http.MethodPost, "irc2mx", with(q, "n", n, "rate", latencyRate), &lat); err != nil {
		return notes, err
	}
	r.LatencyP50MS, r.LatencyP99MS = round2(lat.P50MS), round2(lat.P99MS)
	notes = append(notes, fmt.Sprintf("latency: %d PRIVMSGs at %d msg/s over %d portals, IRC write -> homeserver arrival; max %.2f ms",
		n, latencyRate, portals, lat.MaxMS))

	logf("bridge: Matrix->IRC, %d encrypted events in transactions of %d", o.msgs, o.txnBatch)
	if err = env.world.call(http.MethodPost, "mx2irc/prepare", with(q, "n", o.msgs, "user", benchUser), nil); err != nil {
		return notes, err
	}
	prof = startProfile(o.bridgeProfile, b.ctlAddr, "matrix_to_irc")
	var m2i matrixToIRCResult
	cpu, err = measureCPU(b, func() error {
		return env.world.call(http.MethodPost, "mx2irc/run", with(nil, "batch", o.txnBatch), &m2i)
	})
	prof.finish()
	if err != nil {
		return notes, err
	}
	r.MatrixToIRCMsgsPerS = round2(m2i.MsgsPerS)
	us = float64(cpu.Microseconds()) / float64(o.msgs)
	r.MatrixToIRCUSPerMsg = round2(us)
	if r.MegolmDecryptUS != nil {
		r.MatrixToIRCRatio = round2(us / *r.MegolmDecryptUS)
	}
	notes = append(notes, fmt.Sprintf("matrix_to_irc: %d m.room.encrypted events (Megolm, from a mautrix OlmMachine device) in transactions of %d over %d portals, %d PRIVMSGs arrived, %d duplicates, bridge CPU %s",
		o.msgs, o.txnBatch, portals, m2i.Arrived, m2i.Dups, cpu.Round(time.Millisecond)))
	return notes, nil
}

func with(base url.Values, kv ...any) url.Values {
	q := url.Values{}
	for k, v := range base {
		q[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i].(string), fmt.Sprint(kv[i+1]))
	}
	return q
}

// measureCPU returns the bridge child's CPU time spent while fn runs.
func measureCPU(b *bridgeProc, fn func() error) (time.Duration, error) {
	before, err := b.cpu()
	if err != nil {
		return 0, err
	}
	if err = fn(); err != nil {
		return 0, err
	}
	after, err := b.cpu()
	return after - before, err
}
