package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"text/template"

	"maunium.net/go/mautrix/bridgev2/matrix/mxmain"

	"github.com/sealbridge/sealbridge/bridge"
)

// exampleEdits turn mautrix's generic example config into sealbridge's: encrypted portals required,
// keys shared only with cross-signed devices, the bot cross-signing itself, SQLite by default, logs at
// info level.
// Each edit must match exactly once (ExampleConfig panics otherwise, and a test runs it).
var exampleEdits = []struct{ old, new string }{
	// sealbridge's own namespace: mautrix-irc's defaults (irc, @ircbot, @irc_...) would clash on a
	// homeserver that runs both bridges
	{"    id: $<<.NetworkID>>\n", "    id: sealbridge\n"},
	{"        username: $<<.NetworkID>>bot\n", "        username: sealbridgebot\n"},
	{"    username_template: $<<.NetworkID>>_{{.}}\n", "    username_template: sealbridge_{{.}}\n"},
	{"    allow: false\n    # Whether to force-enable encryption in all bridged rooms.\n    default: false\n",
		"    allow: true\n    # Whether to force-enable encryption in all bridged rooms.\n    default: true\n"},
	{"    require: false\n", "    require: true\n"},
	{"    self_sign: false\n", "    self_sign: true\n"},
	// without it mautrix sends reactions in plaintext (the emoji and the message reacted to)
	{"    msc4392: false\n", "    msc4392: true\n"},
	{"        receive: unverified\n", "        receive: cross-signed-tofu\n"},
	{"    type: postgres\n", "    type: sqlite3-fk-wal\n"},
	// _stmt_cache_size keeps each connection's prepared statements: without it every query is
	// prepared and finalized again, about a fifth of the CPU per message in make bench
	{"    uri: postgres://user:password@host/database?sslmode=disable\n",
		"    uri: file:sealbridge.db?_txlock=immediate&_stmt_cache_size=64\n"},
	// keep the connections open: with 1 idle of 5, connections were opened and closed all the time
	// (PRAGMAs rerun, prepared statements lost), about 10 % of the CPU per message in make bench
	{"    max_idle_conns: 1\n", "    max_idle_conns: 5\n"},
	// a disconnection healed within half a minute (a netsplit, a server restart) is not reported:
	// no state to the status endpoint and no per-login wait for a delayed notice
	{"    transient_state_debounce: 0s\n", "    transient_state_debounce: 30s\n"},
	// info carries no message bodies; debug is for troubleshooting
	{"    min_level: debug\n", "    min_level: info\n"},
	// mautrix's error notices are plaintext m.notice events, which would break the promise of an
	// encrypted portal; sealbridge posts its own notices, encrypted, where it can.
	{"    message_error_notices: true\n", "    message_error_notices: false\n"},
	// relay mode: a room admin can let Matrix users without a login speak through their own login
	// (`set-relay` in the portal); shown on IRC as "<name> text", or RELAYMSG where offered
	{"        # authenticated user into a relaybot for that chat.\n        enabled: false\n",
		"        # authenticated user into a relaybot for that chat.\n        enabled: true\n"},
	// admin_only stays true (mautrix's default): a relay's IRC user speaks for everyone in the
	// room, so only a bridge admin (or default_relays) decides whose connection does that.
	// history: sealbridge fetches it with CHATHISTORY where the IRC server or bouncer keeps it
	// (bridge/history.go): the latest 20 lines for a new room, up to 500 after a reconnect
	{"backfill:\n    # Whether to do backfilling at all.\n    enabled: false\n    # Maximum number of messages to backfill in empty rooms.\n    # If this is zero or negative, backfill will be disabled in new rooms.\n    max_initial_messages: 50\n",
		"backfill:\n    # Whether to do backfilling at all.\n    enabled: true\n    # Maximum number of messages to backfill in empty rooms.\n    # If this is zero or negative, backfill will be disabled in new rooms.\n    max_initial_messages: 20\n"},
	// media links (`media-links on` in a room): links expire after a day, and files from encrypted
	// rooms need the database entry that holds their keys
	{"    # If set to 0, URLs will never expire.\n    expiry: 0\n", "    # If set to 0, URLs will never expire.\n    expiry: 86400\n"},
	{"    # This also allows invalidating URLs by deleting the database entry.\n    use_database: false\n",
		"    # This also allows invalidating URLs by deleting the database entry.\n    use_database: true\n"},
}

// ExampleConfig is the full example config that `sealbridge -e` writes.
func ExampleConfig(networkExample string) string {
	base := mxmain.MatrixExampleConfigBase
	for _, e := range exampleEdits {
		if n := strings.Count(base, e.old); n != 1 {
			panic(fmt.Sprintf("example config edit %q matched %d times", e.old, n))
		}
		base = strings.Replace(base, e.old, e.new, 1)
	}
	tpl := template.Must(template.New("example-config.yaml").Delims("$<<", ">>").Parse(base))
	var buf strings.Builder
	buf.WriteString("# Network-specific config options\nnetwork:\n")
	for _, line := range strings.Split(strings.TrimRight(networkExample, "\n"), "\n") {
		buf.WriteString("    " + line + "\n")
	}
	buf.WriteRune('\n')
	if err := tpl.Execute(&buf, bridge.NewConnector().GetName()); err != nil {
		panic(err)
	}
	return buf.String()
}

// configPathFromArgs is the config file mxmain will read: -c/--config, else config.yaml.
func configPathFromArgs(args []string) string {
	path := "config.yaml"
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case (a == "-c" || a == "--config") && i+1 < len(args):
			path = args[i+1]
			i++
		case strings.HasPrefix(a, "--config="):
			path = strings.TrimPrefix(a, "--config=")
		}
	}
	return path
}

// handleWriteExample takes over mxmain's `-e`, whose example has encryption off, and writes ours.
// It follows mxmain's flags: -c/--config names the file ("-" for stdout), an existing file is kept.
func handleWriteExample(m *mxmain.BridgeMain) bool {
	path, want := configPathFromArgs(os.Args[1:]), false
	for _, a := range os.Args[1:] {
		if a == "-e" || a == "--generate-example-config" {
			want = true
		}
	}
	if !want {
		return false
	}
	networkExample, _, _ := m.Connector.GetConfig()
	cfg := ExampleConfig(networkExample)
	if path == "-" {
		fmt.Print(cfg)
		return true
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintln(os.Stderr, path, "already exists, please remove it if you want to generate a new example")
		os.Exit(1)
	}
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "Failed to write the example config:", err)
		os.Exit(1)
	}
	fmt.Println("Wrote example config to", path)
	return true
}
