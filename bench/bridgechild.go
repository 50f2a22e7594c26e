package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	_ "go.mau.fi/util/dbutil/litestream" // SQLite driver "sqlite3-fk-wal"
	"gopkg.in/yaml.v3"

	"github.com/sealbridge/sealbridge/bridge"
	"github.com/sealbridge/sealbridge/internal/profiling"
	"github.com/sealbridge/sealbridge/test/stack"
)

const (
	botLocalpart = "sealbridgebot" // appservice.bot.username in example-config.yaml
	benchDomain  = "bench.invalid"
	benchNetwork = "bench"
)

// bridgeSetup is what a bench bridge config points at.
type bridgeSetup struct {
	dir              string // config, registration and bridge.log go here
	hsURL            string
	ircAddr          string // host:port of the world's fake IRC server
	asPort           int
	asToken, hsToken string
	secret           string // provisioning shared secret
	dbType, dbURI    string
	connects         int  // connects_per_second and connect_burst of the bench network (0: 1000)
	startGC          bool // envOptions.startGC
}

func randToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// writeBridgeConfig writes the repository's example-config.yaml with the bench's edits: the fake
// homeserver and IRC server on loopback, encryption allowed/default/required (as shipped), the bot
// not cross-signing itself and every verification level "unverified" (the fake homeserver has no
// cross-signing; this changes who receives room keys, not the per-message work), logging at warn to
// a file, and a flood/connect pacing high enough not to be what is measured (see README).
func writeBridgeConfig(s bridgeSetup) (string, error) {
	data, err := os.ReadFile("example-config.yaml")
	if err != nil {
		return "", fmt.Errorf("run the bench from the repository root: %w", err)
	}
	var cfg map[string]any
	if err = yaml.Unmarshal(data, &cfg); err != nil {
		return "", err
	}
	host, portStr, _ := net.SplitHostPort(s.ircAddr)
	port, _ := strconv.Atoi(portStr)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	set := func(v any, path ...string) { stack.SetYAML(cfg, v, path...) }
	set(s.hsURL, "homeserver", "address")
	set(benchDomain, "homeserver", "domain")
	set(fmt.Sprintf("http://127.0.0.1:%d", s.asPort), "appservice", "address")
	set("127.0.0.1", "appservice", "hostname")
	set(s.asPort, "appservice", "port")
	set(s.asToken, "appservice", "as_token")
	set(s.hsToken, "appservice", "hs_token")
	set(s.dbType, "database", "type")
	set(s.dbURI, "database", "uri")
	set(map[string]any{"*": "relay", benchDomain: "admin"}, "bridge", "permissions")
	set(s.secret, "provisioning", "shared_secret")
	set(map[string]any{"min_level": logLevel(), "writers": []any{map[string]any{"type": "stdout", "format": "json"}}}, "logging")
	set(true, "encryption", "allow")
	set(true, "encryption", "default")
	set(true, "encryption", "require")
	set(false, "encryption", "self_sign")
	set(base64.StdEncoding.EncodeToString(key[:16]), "encryption", "pickle_key")
	for _, lvl := range []string{"receive", "send", "share"} {
		set("unverified", "encryption", "verification_levels", lvl)
	}
	set(base64.StdEncoding.EncodeToString(key), "network", "credentials_key")
	// The fake IRC server joins the bench's logins to their channels itself (10,000 in the startup
	// phase); the default limits, made for hostile servers, would part all but a few.
	set(100000, "network", "limits", "max_channels")
	set(100000, "network", "limits", "new_dm_burst")
	set(100000, "network", "limits", "max_dms")
	connects := s.connects
	if connects == 0 {
		connects = 1000
	}
	set(map[string]any{benchNetwork: map[string]any{
		"name": "Bench IRC", "address": host, "port": port, "tls": false,
		"flood":     map[string]any{"burst": 1000000, "lines_per_second": 1000000},
		"reconnect": map[string]any{"min_delay": "1s", "max_delay": "10s", "connects_per_second": connects, "connect_burst": connects},
	}}, "network", "networks")
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return "", err
	}
	path := filepath.Join(s.dir, "config.yaml")
	return path, os.WriteFile(path, out, 0o600)
}

// childBridge runs the real bridge in this process, wired by bridge.NewBridgeMain as cmd/sealbridge
// is, with the config written by writeBridgeConfig.
// It also serves internal/profiling (GC, CPU and heap profiles) on a loopback port (profile.go).
func childBridge(ctlAddr string) {
	if ctlAddr != "" {
		if err := profiling.Serve(ctlAddr); err != nil {
			fmt.Fprintln(os.Stderr, "bench: the bridge's control endpoints:", err)
			os.Exit(1)
		}
	}
	m, _ := bridge.NewBridgeMain("bench")
	m.InitVersion("bench", "", "")
	m.Run()
}

// The bridge child is this binary with these variables set and mxmain's arguments.
const (
	bridgeRoleEnv = "SEALBRIDGE_BENCH_ROLE"
	bridgeCtlEnv  = "SEALBRIDGE_BENCH_CTL"
)

func bridgeArgs(cfgPath string) []string {
	return []string{"-c", cfgPath, "-r", filepath.Join(filepath.Dir(cfgPath), "registration.yaml"), "-n", "--ignore-unsupported-server"}
}

// logLevel is the bridge's log level: warn, or $BENCH_BRIDGE_LOG (for debugging the harness).
func logLevel() string {
	if l := os.Getenv("BENCH_BRIDGE_LOG"); l != "" {
		return l
	}
	return "warn"
}
