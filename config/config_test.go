package config

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const testKey = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

func parse(t *testing.T, src string) *Config {
	t.Helper()
	var c Config
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

func TestDefaults(t *testing.T) {
	c := parse(t, "networks: {libera: {address: irc.libera.chat}, local: {address: 127.0.0.1, tls: false}}\ncredentials_key: "+testKey)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	l := c.Networks["libera"]
	if l.Reconnect.ConnectsPerSecond != 5 || l.Reconnect.ConnectBurst != 10 {
		t.Errorf("connection pacing defaults: %+v", l.Reconnect)
	}
	if !l.UseTLS() || l.Port != 6697 || l.Flood.Burst != 5 || l.Flood.LinesPerSecond != 1 || l.ID != "libera" || l.DisplayName() != "libera" {
		t.Errorf("defaults for a TLS network: %+v", l)
	}
	if n := c.Networks["local"]; n.UseTLS() || n.Port != 6667 {
		t.Errorf("defaults for a plain network: %+v", n)
	}
	if got := c.NetworkIDs(); strings.Join(got, ",") != "libera,local" {
		t.Errorf("NetworkIDs = %v", got)
	}
}

func TestValidationNamesTheKey(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"networks: {}", "network.networks: no IRC network"},
		{"networks: {Libera: {address: x}}", "network.networks.Libera: network IDs"},
		{"networks: {a/b: {address: x}}", "network.networks.a/b: network IDs"},
		{"networks: {lib: {}}", "network.networks.lib.address: missing"},
		{"networks: {lib: {address: 'irc.x:6697'}}", "network.networks.lib.address"},
		{"networks: {lib: {address: x, port: 70000}}", "network.networks.lib.port"},
		{"networks: {lib: {address: x, password: \"a\\r\\nQUIT\"}}", "network.networks.lib.password"},
		{"networks: {lib: {address: x, flood: {burst: -1}}}", "network.networks.lib.flood.burst"},
		{"networks: {lib: {address: x, reconnect: {min_delay: 10m, max_delay: 1s}}}", "network.networks.lib.reconnect"},
		{"networks: {lib: {address: x, reconnect: {connects_per_second: -1}}}", "network.networks.lib.reconnect: connects_per_second"},
		{"networks: {lib: {address: x}}\nmetrics: {enabled: true, listen: nonsense}", "network.metrics.listen"},
	} {
		c := parse(t, tc.src+"\ncredentials_key: "+testKey)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to contain %q", tc.src, err, tc.want)
		}
	}
}

func TestCredentialsKey(t *testing.T) {
	for _, key := range []string{"", "generate", "c2hvcnQ=", "not base64!"} {
		c := parse(t, "networks: {lib: {address: x}}\ncredentials_key: '"+key+"'")
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "network.credentials_key") {
			t.Errorf("key %q: %v", key, err)
		}
	}
	c := parse(t, "networks: {lib: {address: x}}\ncredentials_key: "+testKey)
	if k, err := c.SealingKey(); err != nil || len(k) != 32 {
		t.Errorf("SealingKey = %d bytes, %v", len(k), err)
	}
}

func TestExampleParses(t *testing.T) {
	c := parse(t, ExampleYAML)
	if c.CredentialsKey != "generate" || c.CTCPReplies || c.PlaintextNotice == "" {
		t.Errorf("example: %+v", c)
	}
	c.CredentialsKey = testKey
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestIdentityValidation(t *testing.T) {
	for _, tc := range []struct{ yaml, err string }{
		{"networks: {n: {address: x, username: '{who}'}}", "network.networks.n.username"},
		{"networks: {n: {address: x, username: 'a b'}}", "network.networks.n.username"},
		{"networks: {n: {address: x, bind_address: 'not-an-ip'}}", "network.networks.n.bind_address"},
		{"networks: {n: {address: x, max_connections: -1}}", "network.networks.n.max_connections"},
		{"networks: {n: {address: x, webirc: {password: pw, ip_prefix: 10.0.0.0/8}}}", "network.networks.n.webirc.ip_prefix"},
	} {
		var c Config
		if err := yaml.Unmarshal([]byte(tc.yaml), &c); err != nil {
			t.Fatal(err)
		}
		c.CredentialsKey = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v, want an error naming %s", tc.yaml, err, tc.err)
		}
	}
	var c Config
	if err := yaml.Unmarshal([]byte("networks: {n: {address: x, bind_address: '2001:db8::/64', webirc: {password: pw}}}"), &c); err != nil {
		t.Fatal(err)
	}
	c.CredentialsKey = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	n := c.Networks["n"]
	if n.Username != DefaultUsername || n.RealName != DefaultRealName || n.WebIRC.Hostname != DefaultWebIRCHostname || n.WebIRC.IPPrefix != DefaultWebIRCIPPrefix {
		t.Errorf("identity defaults: %+v", n.Identity)
	}
}
