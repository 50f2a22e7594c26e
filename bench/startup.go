package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/sealbridge/sealbridge/test/stack"
)

// runStartupPhases measures startup_10k_portals_sqlite_s and startup_10k_portals_postgres_s (and
// startup_10k_portals_s, the SQLite figure: SQLite is the shipped default).
func runStartupPhases(o options, r *results) []string {
	var notes []string
	logf("bridge: startup with %d portals on SQLite", o.startupPortals)
	s, note, err := startupOn(o, "", "")
	if err != nil {
		notes = append(notes, "startup_10k_portals_sqlite_s not measured: "+err.Error())
		logf("startup sqlite: %v", err)
	} else {
		r.Startup10kPortalsSQLiteS, r.Startup10kPortalsS = round2(s), round2(s)
		notes = append(notes, "startup (SQLite): "+note)
	}

	logf("bridge: startup with %d portals on PostgreSQL", o.startupPortals)
	dir, err := os.MkdirTemp("", "sealbridge-bench-pg-")
	if err == nil {
		defer os.RemoveAll(dir)
		var pg *stack.Postgres
		ctx := context.Background()
		if pg, err = stack.StartPostgres(ctx, dir); err == nil {
			defer pg.Stop()
			var uri string
			if uri, err = pg.CreateDatabase(ctx, "sealbridge_bench"); err == nil {
				s, note, err = startupOn(o, "postgres", uri)
			}
		}
	}
	if err != nil {
		notes = append(notes, "startup_10k_portals_postgres_s not measured: "+err.Error())
		logf("startup postgres: %v", err)
	} else {
		r.Startup10kPortalsPostgresS = round2(s)
		notes = append(notes, "startup (PostgreSQL 15, test/stack cluster, fsync off): "+note)
	}
	return notes
}

// startupOn seeds o.startupPortals portals the real way (o.startupLogins logins, each made to join its
// share of channels by the fake IRC server; the bridge creates one encrypted portal per channel),
// stops the bridge, starts it again and times exec -> every login connected, every channel rejoined
// (the fake IRC server answered all the JOINs) and one message per login bridged after that into
// its last-joined channel's portal (bridgev2 loads a portal before queueing its events, in the
// login's order, so that message arrives only once all its portals are loaded).
func startupOn(o options, dbType, dbURI string) (float64, string, error) {
	env, err := startBridgeEnv(envOptions{dbType: dbType, dbURI: dbURI})
	if err != nil {
		return 0, "", err
	}
	defer env.close()
	per := o.startupPortals / o.startupLogins
	total := per * o.startupLogins
	seedStart := time.Now()
	for i := range o.startupLogins {
		user, nick, prefix := fmt.Sprintf("@s%d:%s", i, benchDomain), fmt.Sprintf("s%d", i), fmt.Sprintf("s%d-", i)
		if err := env.loginAndJoin(user, nick, prefix, per); err != nil {
			return 0, "", fmt.Errorf("seeding: %w", err)
		}
	}
	if err := env.waitRooms(total, 60*time.Minute); err != nil {
		return 0, "", fmt.Errorf("seeding: %w", err)
	}
	seeded := time.Since(seedStart)
	// let the portals' creation finish (the homeserver quiet for 2 s)
	if err := env.waitQuiet(2*time.Second, 60*time.Minute); err != nil {
		return 0, "", err
	}
	if err := env.world.call(http.MethodPost, "resetjoins", nil, nil); err != nil {
		return 0, "", err
	}
	if _, err := env.restartBridge(); err != nil {
		return 0, "", err
	}
	name := "startup_sqlite"
	if dbType != "" {
		name = "startup_" + dbType
	}
	prof := startProfile(o.bridgeProfile, env.bridge.ctlAddr, name)
	defer prof.finish()
	start := env.bridge.started
	ready := time.Since(start)
	deadline := time.Now().Add(30 * time.Minute)
	for {
		st, err := env.world.state()
		if err != nil {
			return 0, "", err
		}
		if st.Joins >= int64(total) {
			break
		}
		if time.Now().After(deadline) {
			return 0, "", fmt.Errorf("%d of %d channels rejoined within 30 minutes", st.Joins, total)
		}
		time.Sleep(20 * time.Millisecond)
	}
	joined := time.Since(start)
	var last time.Time
	for i := range o.startupLogins {
		var p struct {
			At int64 `json:"at_unix_nano"`
		}
		ch := fmt.Sprintf("#s%d-%d", i, per-1)
		// generous: what is measured is how long it takes
		if err := env.world.call(http.MethodPost, "probe", url.Values{"channel": {ch}, "timeout": {"1080"}}, &p); err != nil {
			return 0, "", err
		}
		if at := time.Unix(0, p.At); at.After(last) {
			last = at
		}
	}
	secs := last.Sub(start).Seconds()
	return secs, fmt.Sprintf("%d portals over %d logins (seeded by the bridge in %s); /ready after %.2f s, all channels rejoined after %.2f s, first message bridged after that at %.2f s",
		total, o.startupLogins, seeded.Round(time.Second), ready.Seconds(), joined.Seconds(), secs), nil
}
