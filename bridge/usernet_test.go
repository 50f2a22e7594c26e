package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/sealbridge/sealbridge/config"
	"github.com/sealbridge/sealbridge/sbdb"
)

func userNetConnector(t *testing.T, yamlAllowPrivate bool) *IRCConnector {
	t.Helper()
	c := NewConnector()
	c.Config = config.Config{
		Networks:       map[string]*config.Network{"libera": {Address: "irc.libera.chat"}},
		CredentialsKey: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		UserNetworks: config.UserNetworks{
			Enabled: true, Allow: []string{"*.example.org", "127.0.0.1"}, Deny: []string{"bad.example.org"},
			Ports: []int{6697}, AllowPrivateAddresses: yamlAllowPrivate,
		},
	}
	if err := c.Config.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

// What a user writes at login names a configured network, the configured network by its own
// address, or a server of their choice within the admin's rules.
func TestResolveNetwork(t *testing.T) {
	c := userNetConnector(t, false)
	for in, want := range map[string]string{
		"libera":                   "libera",
		"LIBERA":                   "libera",
		"irc.libera.chat":          "libera", // the configured network, not a second one
		"irc.libera.chat:7000":     "libera", // whatever the port
		"irc.example.org":          "irc.example.org",
		"ircs://Chat.Example.org/": "chat.example.org",
	} {
		n, err := c.resolveNetwork(in)
		if err != nil || n.ID != want {
			t.Errorf("resolveNetwork(%q) = %v, %v; want %s", in, n, err, want)
			continue
		}
		if n.UserAdded != (want != "libera") {
			t.Errorf("resolveNetwork(%q).UserAdded = %v", in, n.UserAdded)
		}
	}
	for in, want := range map[string]string{
		"oftc":                  "neither a network of this bridge",
		"bad.example.org":       "does not allow connections to bad.example.org",
		"irc.example.org:6667":  "port 6667 is not allowed",
		"irc://irc.example.org": "TLS only",
		"irc.other.net":         "does not allow",
	} {
		if _, err := c.resolveNetwork(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("resolveNetwork(%q) = %v, want %q", in, err, want)
		}
	}
	c.Config.UserNetworks.Enabled = false
	if _, err := c.resolveNetwork("irc.example.org"); err == nil || !strings.Contains(err.Error(), "only connects to the networks its admin configured") {
		t.Errorf("user networks off: %v", err)
	}

	// A login loaded later is checked against the rules as they are then.
	meta := &sbdb.UserLoginMetadata{Network: "irc.example.org", UserServer: &sbdb.UserServer{Port: 6697, TLS: true}}
	if _, err := c.loginNetwork(meta); err == nil || !strings.Contains(err.Error(), "can no longer be used") {
		t.Errorf("a user network after the admin turned them off: %v", err)
	}
	c.Config.UserNetworks.Enabled = true
	if n, err := c.loginNetwork(meta); err != nil || n.Address != "irc.example.org" || n.Port != 6697 || !n.UserAdded {
		t.Errorf("a user network loaded: %+v %v", n, err)
	}
	if _, err := c.loginNetwork(&sbdb.UserLoginMetadata{Network: "gone"}); err == nil {
		t.Error("a removed configured network loaded")
	}
}

// Unless the admin allows private addresses, a user network's connection is refused when the
// address actually dialled (after DNS) is loopback, private or otherwise not public.
func TestUserNetworkDialRefusesPrivateAddresses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	user := &config.Network{ID: "127.0.0.1", UserAdded: true}

	c := userNetConnector(t, false)
	dial := c.dialFor(user, "login")
	if dial == nil {
		t.Fatal("no guarded dialer for a user network")
	}
	for _, addr := range []string{ln.Addr().String(), "localhost:" + strings.Split(ln.Addr().String(), ":")[1]} {
		if conn, err := dial(ctx, "tcp", addr); !errors.Is(err, errPrivateAddress) {
			if conn != nil {
				conn.Close()
			}
			t.Errorf("dial %s: got %v, want the private address refusal", addr, err)
		}
	}
	if c.dialFor(&config.Network{ID: "libera"}, "login") != nil {
		t.Error("a configured network's connections are guarded too (the admin chose its address)")
	}
	if c := userNetConnector(t, true); c.dialFor(user, "login") != nil {
		t.Error("allow_private_addresses still guards the dialer")
	}

	for addr, want := range map[string]bool{
		"8.8.8.8": true, "2a00:1450:4001::1": true, "1.1.1.1": true,
		"127.0.0.1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false, "169.254.169.254": false,
		"100.64.0.1": false, "0.0.0.0": false, "::1": false, "fe80::1": false, "fd00::1": false, "::ffff:127.0.0.1": false,
		"::ffff:10.0.0.1": false, "224.0.0.1": false, "255.255.255.255": false, "198.18.0.1": false, "::": false,
		// NAT64 and 6to4 forms reach the IPv4 address inside them.
		"64:ff9b::7f00:1": false, "64:ff9b::a9fe:a9fe": false, "64:ff9b::c0a8:101": false, "64:ff9b::808:808": true,
		"64:ff9b:1::a00:1": false, "2002:7f00:1::1": false, "2002:a9fe:a9fe::1": false, "2002:0a00:0001::": false,
		"2002:0808:0808::1": true,
	} {
		if got := publicAddress(netip.MustParseAddr(addr)); got != want {
			t.Errorf("publicAddress(%s) = %v, want %v", addr, got, want)
		}
	}
}

// Login attempts at many hosts leave nothing behind: login locks live while held, and the
// connection pacers of user networks are bounded.
func TestLoginLocksAndPacersAreBounded(t *testing.T) {
	c := userNetConnector(t, false)
	for i := 0; i < 5000; i++ {
		unlock := c.lockLogin(networkid.UserLoginID(fmt.Sprintf("irc%d.example.org:@u:example.org", i)))
		unlock()
		c.pacerFor(&config.Network{ID: fmt.Sprintf("irc%d.example.org", i), UserAdded: true})
	}
	c.loginLocksMu.Lock()
	locks := len(c.loginLocks)
	c.loginLocksMu.Unlock()
	c.clientsLock.Lock()
	pacers := len(c.pacers)
	c.clientsLock.Unlock()
	if locks != 0 || pacers > maxUserNetworkPacers {
		t.Fatalf("%d login locks and %d pacers left after 5,000 hosts", locks, pacers)
	}
	// The lock still serialises: a second holder waits for the first.
	unlock := c.lockLogin("user-networks/@u:example.org")
	got := make(chan struct{})
	go func() {
		defer close(got)
		c.lockLogin("user-networks/@u:example.org")()
	}()
	select {
	case <-got:
		t.Fatal("two login flows of one user held the quota lock at once")
	case <-time.After(50 * time.Millisecond):
	}
	unlock()
	<-got
}
