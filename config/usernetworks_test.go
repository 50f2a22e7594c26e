package config

import (
	"strings"
	"testing"
)

func TestParseUserServer(t *testing.T) {
	for in, want := range map[string]UserServer{
		"irc.example.org":             {"irc.example.org", 6697, true},
		" IRC.Example.ORG:6697 ":      {"irc.example.org", 6697, true},
		"ircs://irc.example.org:7000": {"irc.example.org", 7000, true},
		"irc://irc.example.org":       {"irc.example.org", 6667, false},
		"irc://irc.example.org:6668/": {"irc.example.org", 6668, false},
		"irc.example.org:+6697":       {"irc.example.org", 6697, true},
		"203.0.113.7:6697":            {"203.0.113.7", 6697, true},
		"a-b.c-d.example":             {"a-b.c-d.example", 6697, true},
	} {
		got, err := ParseUserServer(in)
		if err != nil || got != want {
			t.Errorf("ParseUserServer(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{
		"", "libera", "localhost", "irc.example.org:0", "irc.example.org:99999", "irc.example.org:x",
		"[::1]:6697", "::1", "irc..example.org", "irc.example.org.", "-irc.example.org", "irc_x.example.org",
		"irc.example.org\r\nQUIT", "irc.example.org/x", "user@irc.example.org", "irc.example.org:6697 #chan",
		strings.Repeat("a", 60) + ".example",
	} {
		if got, err := ParseUserServer(bad); err == nil {
			t.Errorf("ParseUserServer(%q) accepted: %+v", bad, got)
		}
	}
}

func TestUserNetworksCheck(t *testing.T) {
	c := parse(t, `
networks: {}
credentials_key: `+testKey+`
user_networks:
    enabled: true
    allow: ["*.libera.chat", "irc.oftc.net", "*.example.org"]
    deny: ["*.internal.example.org"]
    ports: [6697, 7000]
`)
	if err := c.Validate(); err != nil {
		t.Fatalf("a config with user networks only: %v", err)
	}
	u := &c.UserNetworks
	if u.MaxPerUser != DefaultMaxUserNetworks {
		t.Errorf("max_per_user default %d", u.MaxPerUser)
	}
	for srv, want := range map[UserServer]string{
		{"irc.eu.libera.chat", 6697, true}:          "",
		{"irc.oftc.net", 7000, true}:                "",
		{"irc.oftc.net.evil.com", 6697, true}:       "does not allow connections to irc.oftc.net.evil.com",
		{"chat.internal.example.org", 6697, true}:   "does not allow",
		{"irc.example.org", 6667, true}:             "port 6667 is not allowed",
		{"irc.example.org", 6697, false}:            "TLS only",
		{"irc.libera.chat.example.com", 6697, true}: "does not allow",
	} {
		err := u.Check(srv)
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("Check(%+v) = %v, want %q", srv, err, want)
		}
	}
	n := u.Network(UserServer{"irc.example.org", 7000, true})
	if n.ID != "irc.example.org" || !n.UserAdded || !n.UseTLS() || n.Port != 7000 || n.Flood.Burst != DefaultBurst || n.Reconnect.MaxDelay != DefaultMaxDelay {
		t.Errorf("user network %+v", n)
	}
	if err := parse(t, "networks: {}\ncredentials_key: "+testKey).Validate(); err == nil || !strings.Contains(err.Error(), "no IRC network") {
		t.Errorf("no networks and no user networks: %v", err)
	}
	u.Enabled = false
	if err := u.Check(UserServer{"irc.libera.chat", 6697, true}); err == nil {
		t.Error("Check passed with user networks off")
	}

	for src, want := range map[string]string{
		"user_networks: {enabled: true}":               "network.user_networks.allow: user networks are enabled but no host",
		"user_networks: {enabled: true, allow: ['[']}": "network.user_networks.allow",
		"user_networks: {allow: ['irc.x:6697']}":       "network.user_networks.allow",
		"user_networks: {deny: ['a b']}":               "network.user_networks.deny",
		"user_networks: {ports: [0]}":                  "network.user_networks.ports",
		"user_networks: {max_per_user: -1}":            "network.user_networks.max_per_user",
	} {
		c := parse(t, "networks: {lib: {address: x}}\ncredentials_key: "+testKey+"\n"+src)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", src, err, want)
		}
	}
}

// Whatever a user types as a server, an accepted one is a plain host (lowercase letters, digits,
// dashes and dots, at least one dot, never a separator of the ID scheme) and a TCP port.
func FuzzParseUserServer(f *testing.F) {
	for _, s := range []string{"irc.example.org", "ircs://irc.example.org:6697", "irc://a.b:1", "1.2.3.4:+7000", "x", "a..b", "[::1]:6697"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		srv, err := ParseUserServer(s)
		if err != nil {
			return
		}
		if srv.Port < 1 || srv.Port > 65535 || !strings.Contains(srv.Host, ".") || len(srv.Host) > maxUserHostLen {
			t.Fatalf("%q accepted as %+v", s, srv)
		}
		for _, r := range srv.Host {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
				t.Fatalf("%q accepted with host %q", s, srv.Host)
			}
		}
		again, err := ParseUserServer(srv.String())
		if err != nil || again != srv {
			t.Fatalf("%+v does not round-trip through %q: %+v %v", srv, srv.String(), again, err)
		}
	})
}
