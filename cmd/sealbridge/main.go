// Command sealbridge runs the IRC<->Matrix bridge: it wires the IRC network connector into mautrix's
// bridge main (config, registration, database, appservice, encryption) and adds sealbridge's example
// config, which has encryption on.
package main

import (
	"fmt"
	"os"

	_ "go.mau.fi/util/dbutil/litestream" // SQLite driver "sqlite3-fk-wal"

	"github.com/sealbridge/sealbridge/bridge"
	"github.com/sealbridge/sealbridge/internal/profiling"
)

// Filled in at build time with -ldflags "-X main.Tag=... -X main.Commit=... -X 'main.BuildTime=...'"
// (the Makefile and the Dockerfile pass `git describe --tags --always` as the tag).
var (
	Tag       = ""
	Commit    = "unknown"
	BuildTime = "unknown"
)

func main() {
	m, connector := bridge.NewBridgeMain(baseVersion(Tag))
	// The connector checks that a credentials key generated on this start reached the file.
	connector.ConfigPath = configPathFromArgs(os.Args[1:])
	m.InitVersion(Tag, Commit, BuildTime)
	connector.Metrics.SetBuildInfo(m.Version, Commit)
	if handleWriteExample(m) || handleHealthcheck(os.Args[1:]) {
		return
	}
	if wantsRegistration(os.Args[1:]) {
		// Before mxmain writes the registration (and exits): is the namespace free? (namespace.go)
		warnNamespaceClash(connector.ConfigPath, os.Stderr)
	}
	if addr := os.Getenv("SEALBRIDGE_PPROF_LISTEN"); addr != "" {
		// Profiles for whoever measures the bridge (docs/admin-guide.md, "Profiling").
		if err := profiling.Serve(addr); err != nil {
			fmt.Fprintln(os.Stderr, "SEALBRIDGE_PPROF_LISTEN:", err)
			os.Exit(1)
		}
	}
	m.PostStart = func() {
		// Type=notify and the watchdog, under systemd (health.go).
		notifySystemd(m.Bridge.BackgroundCtx, m.Config.AppService.Hostname, m.Config.AppService.Port, m.Log.With().Str("component", "systemd").Logger())
	}
	m.Run()
}
