package main

import (
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/sealbridge/sealbridge/config"
	"github.com/sealbridge/sealbridge/test/stack"
)

// The example-config.yaml at the repository root must be exactly what `sealbridge -e` writes.
func TestExampleConfigFileIsCurrent(t *testing.T) {
	want := ExampleConfig(config.ExampleYAML)
	got, err := os.ReadFile("../../example-config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatal("example-config.yaml differs from `sealbridge -e -c -`; regenerate it with `make example-config`")
	}
}

func TestExampleConfigEncryptionOnAndValid(t *testing.T) {
	var cfg struct {
		Network    config.Config `yaml:"network"`
		Encryption struct {
			Allow, Default, Require bool
			SelfSign                bool `yaml:"self_sign"`
			Levels                  struct {
				Receive, Share string
			} `yaml:"verification_levels"`
		} `yaml:"encryption"`
		Database struct{ Type, URI string } `yaml:"database"`
		Bridge   struct {
			Relay struct {
				Enabled   bool
				AdminOnly bool `yaml:"admin_only"`
			} `yaml:"relay"`
		} `yaml:"bridge"`
	}
	if err := yaml.Unmarshal([]byte(ExampleConfig(config.ExampleYAML)), &cfg); err != nil {
		t.Fatal(err)
	}
	e := cfg.Encryption
	if !e.Allow || !e.Default || !e.Require || !e.SelfSign {
		t.Errorf("encryption settings in the example: %+v", e)
	}
	if e.Levels.Receive != "cross-signed-tofu" || e.Levels.Share != "cross-signed-tofu" {
		t.Errorf("key sharing levels: %+v", e.Levels)
	}
	// A relay's IRC user speaks for everyone in the room: only bridge admins choose whose.
	if r := cfg.Bridge.Relay; !r.Enabled || !r.AdminOnly {
		t.Errorf("relay in the example: %+v, want enabled and admin_only", r)
	}
	if len(cfg.Network.RelayActions) != 0 {
		t.Errorf("the example lets the relay moderate for others: %v", cfg.Network.RelayActions)
	}
	if cfg.Database.Type != "sqlite3-fk-wal" || !strings.HasPrefix(cfg.Database.URI, "file:") {
		t.Errorf("database default: %+v", cfg.Database)
	}
	n := cfg.Network.Networks["libera"]
	if n == nil || !n.UseTLS() || n.TLSInsecureSkipVerify {
		t.Fatalf("example network: %+v", n)
	}
	cfg.Network.CredentialsKey = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	if err := cfg.Network.Validate(); err != nil {
		t.Fatalf("example network section does not validate: %v", err)
	}
}

// docker/entrypoint.sh rewrites these example lines for the container; each must stay unique.
func TestExampleLinesTheDockerEntrypointRewrites(t *testing.T) {
	example := ExampleConfig(config.ExampleYAML)
	for _, line := range []string{
		"    uri: file:sealbridge.db?_txlock=immediate&_stmt_cache_size=64",
		"    hostname: 127.0.0.1",
		"          filename: ./logs/bridge.log",
	} {
		n := 0
		for _, l := range strings.Split(example, "\n") {
			if l == line {
				n++
			}
		}
		if n != 1 {
			t.Errorf("the example has %d lines %q; docker/entrypoint.sh expects exactly one", n, line)
		}
	}
}

// The end-to-end tests, the demo and the bench open SQLite as the example config does
// (stack.SQLiteURI), so that they run the settings admins get.
func TestStackUsesTheExampleSQLiteURI(t *testing.T) {
	want := "    uri: " + stack.SQLiteURI("sealbridge.db") + "\n"
	if example := ExampleConfig(config.ExampleYAML); !strings.Contains(example, want) {
		t.Errorf("the example config has no line %q: stack.SQLiteQuery and the example differ", want)
	}
}
