//go:build e2e

package e2e

import (
	"encoding/base64"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sealbridge/sealbridge/test/stack"
)

// An admin's config survives an upgrade: their values stay, keys added since are filled in with
// defaults, `generate` becomes a real credentials key. A broken network section stops the bridge at
// startup with an error naming the key.
func TestConfigUpgradeKeepsValuesAndValidates(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	regPath := filepath.Join(dir, "registration.yaml")
	runOK := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(bridgeBinary, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("sealbridge %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	runOK("-e", "-c", cfgPath)
	must(t, stack.EditYAML(cfgPath, func(cfg map[string]any) {
		stack.SetYAML(cfg, "http://127.0.0.1:1", "homeserver", "address")
		stack.SetYAML(cfg, "example.org", "homeserver", "domain")
		stack.SetYAML(cfg, map[string]any{"example.org": "user"}, "bridge", "permissions")
		stack.SetYAML(cfg, stack.SQLiteURI(filepath.Join(dir, "db.sqlite")), "database", "uri")
		network := stack.GetYAML(cfg, "network").(map[string]any)
		// An older config: no metrics section, no plaintext notice, no connection pacing.
		delete(network, "metrics")
		delete(network, "plaintext_notice")
		network["networks"] = map[string]any{
			"oftc": map[string]any{"name": "OFTC", "address": "irc.oftc.net", "flood": map[string]any{"burst": 7}},
		}
		network["ctcp_replies"] = true
	}))
	runOK("-g", "-c", cfgPath, "-r", regPath)
	cfg, err := stack.ReadYAML(cfgPath)
	must(t, err)
	for path, want := range map[string]any{
		"network.networks.oftc.name":        "OFTC",
		"network.networks.oftc.flood.burst": 7,
		"network.ctcp_replies":              true,
		"network.metrics.enabled":           false,
		"network.metrics.listen":            "127.0.0.1:8001",
		"homeserver.domain":                 "example.org",
	} {
		if got := stack.GetYAML(cfg, strings.Split(path, ".")...); got != want {
			t.Errorf("%s after upgrade = %#v, want %#v", path, got, want)
		}
	}
	if notice, _ := stack.GetYAML(cfg, "network", "plaintext_notice").(string); !strings.Contains(notice, "plaintext") {
		t.Errorf("plaintext_notice not restored: %q", notice)
	}
	key, _ := stack.GetYAML(cfg, "network", "credentials_key").(string)
	if raw, err := base64.StdEncoding.DecodeString(key); err != nil || len(raw) != 32 {
		t.Errorf("credentials_key after upgrade = %q, want base64 of 32 random bytes", key)
	}
	// The key stays the same on later upgrades (else sealed passwords would be lost).
	runOK("-g", "-c", cfgPath, "-r", regPath)
	cfg2, err := stack.ReadYAML(cfgPath)
	must(t, err)
	if again := stack.GetYAML(cfg2, "network", "credentials_key"); again != key {
		t.Error("credentials_key changed on a second upgrade")
	}

	// `generate` with a config the bridge may not write (-n here; a read-only mount alike): a new key
	// on every start would lock stored passwords away, so the bridge refuses to start and says why.
	must(t, stack.EditYAML(cfgPath, func(cfg map[string]any) {
		stack.SetYAML(cfg, "generate", "network", "credentials_key")
	}))
	cmd := exec.Command(bridgeBinary, "-c", cfgPath, "-r", regPath, "-n")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the bridge started with a credentials key it could not keep:\n%s", out)
	}
	if !strings.Contains(string(out), "could not write the key it generated") {
		t.Errorf("startup error does not explain the unkept key:\n%s", out)
	}
	must(t, stack.EditYAML(cfgPath, func(cfg map[string]any) {
		stack.SetYAML(cfg, key, "network", "credentials_key")
	}))

	// A network without an address: the bridge refuses to start and names the key.
	must(t, stack.EditYAML(cfgPath, func(cfg map[string]any) {
		stack.SetYAML(cfg, map[string]any{"broken": map[string]any{"port": 6697}}, "network", "networks")
	}))
	cmd = exec.Command(bridgeBinary, "-c", cfgPath, "-r", regPath, "-n")
	cmd.Dir = dir
	out, err = cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the bridge started with a network lacking its address:\n%s", out)
	}
	if !strings.Contains(string(out), "network.networks.broken.address: missing") {
		t.Errorf("startup error does not name the key:\n%s", out)
	}
}
