package bridge

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sealbridge/sealbridge/bridge/irc"
	"github.com/sealbridge/sealbridge/config"
)

func TestIdentityTemplates(t *testing.T) {
	c := NewConnector()
	c.idKey = []byte("key one")
	const login = "libera:@alice:example.org"
	got := c.expandIdentity("{nick}|{id}|{localpart}|{mxid}", login, "Alice")
	parts := strings.Split(got, "|")
	if len(parts) != 4 || parts[0] != "Alice" || len(parts[1]) != 8 || parts[2] != "alice" || parts[3] != "@alice:example.org" {
		t.Fatalf("expanded to %q", got)
	}
	if c.pseudonym(login) != parts[1] || c.pseudonym("libera:@bob:example.org") == parts[1] {
		t.Error("the pseudonym is not stable per login")
	}
	other := NewConnector()
	other.idKey = []byte("key two")
	if other.pseudonym(login) == parts[1] {
		t.Error("the pseudonym does not depend on the bridge's key (anyone could compute it from the Matrix ID)")
	}
	for in, want := range map[string]string{"alice": "alice", "Ali ce@x!": "Alicex", "0123456789abc": "0123456789", "@@": "nick"} {
		if got := identUsername(in, "nick"); got != want {
			t.Errorf("identUsername(%q) = %q, want %q", in, got, want)
		}
	}
	var cfg irc.Config
	n := &config.Network{ID: "libera"}
	n.Identity = config.Identity{Username: "{id}", RealName: config.DefaultRealName, WebIRC: config.WebIRC{Password: "pw", Gateway: "gw", Hostname: "{id}.users.example", IPPrefix: "fd00::/48"}}
	c.applyIdentity(&cfg, n, login, "Alice")
	if cfg.Username != parts[1] || cfg.RealName != "Matrix user via sealbridge" || cfg.WebIRC == nil ||
		cfg.WebIRC.Hostname != parts[1]+".users.example" || !netip.MustParsePrefix("fd00::/48").Contains(netip.MustParseAddr(cfg.WebIRC.IP)) {
		t.Errorf("identity %+v %+v", cfg, cfg.WebIRC)
	}
}

// Each login gets its own stable address out of a bind prefix, never the prefix's network or
// broadcast address; one address is used as it is.
func TestAddrInPrefix(t *testing.T) {
	c := NewConnector()
	c.idKey = []byte("k")
	v4 := netip.MustParsePrefix("127.0.1.0/24")
	seen := map[netip.Addr]bool{}
	for _, login := range []string{"a", "b", "c", "d", "e"} {
		a := c.addrInPrefix(v4, login)
		if !v4.Contains(a) || a == v4.Addr() || a == netip.MustParseAddr("127.0.1.255") || a != c.addrInPrefix(v4, login) {
			t.Errorf("login %s: %s", login, a)
		}
		seen[a] = true
	}
	if len(seen) < 4 {
		t.Errorf("5 logins share %d addresses", len(seen))
	}
	v6 := netip.MustParsePrefix("2001:db8:1::/64")
	if a := c.addrInPrefix(v6, "a"); !v6.Contains(a) || a == v6.Addr() {
		t.Errorf("IPv6: %s", a)
	}
	one, _ := config.BindPrefix("192.0.2.7")
	if a := c.addrInPrefix(one, "a"); a != netip.MustParseAddr("192.0.2.7") {
		t.Errorf("a single address became %s", a)
	}
}

// Connections to a network with a bind prefix come from the login's own address.
func TestDialFromTheLoginsAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer ln.Close()
	c := NewConnector()
	c.idKey = []byte("k")
	n := &config.Network{ID: "bindnet"}
	n.BindAddress = "127.0.1.0/24"
	dial := c.dialFor(n, "bindnet:@alice:example.org")
	if dial == nil {
		t.Fatal("no dialer for a bind address")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := dial(ctx, "tcp", ln.Addr().String())
	must(t, err)
	defer conn.Close()
	server, err := ln.Accept()
	must(t, err)
	defer server.Close()
	want := c.addrInPrefix(netip.MustParsePrefix("127.0.1.0/24"), "bindnet:@alice:example.org")
	if got := server.RemoteAddr().(*net.TCPAddr).IP.String(); got != want.String() {
		t.Fatalf("the connection came from %s, want %s", got, want)
	}
}
