package bridge

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"maunium.net/go/mautrix/bridgev2"

	"github.com/sealbridge/sealbridge/config"
	"github.com/sealbridge/sealbridge/sbdb"
)

// User networks: servers a user names at login (`login nick irc.example.org <nick>`) where the
// admin allows it (network.user_networks). The host is the network's ID, so everyone who names the
// same host shares its channel portals, as on a configured network. The login keeps the port and
// TLS choice in its metadata; the admin's rules are checked again whenever the login is loaded.

// resolveNetwork turns what a user wrote at login into a network: a configured network's ID, or a
// server of the user's choice (which is the configured network when its host is one's, whatever
// the port: one IRC network, one set of portals).
func (c *IRCConnector) resolveNetwork(input string) (*config.Network, error) {
	input = strings.TrimSpace(input)
	if n := c.Config.Networks[strings.ToLower(input)]; n != nil {
		return n, nil
	}
	srv, err := config.ParseUserServer(input)
	if err != nil {
		if !c.Config.UserNetworks.Enabled {
			return nil, fmt.Errorf("unknown network %q; choose one of: %s", input, strings.Join(c.Config.NetworkIDs(), ", "))
		}
		return nil, fmt.Errorf("%q is neither a network of this bridge (%s) nor a server: %v", input, strings.Join(c.Config.NetworkIDs(), ", "), err)
	}
	for _, id := range c.Config.NetworkIDs() {
		if n := c.Config.Networks[id]; strings.EqualFold(n.Address, srv.Host) {
			return n, nil
		}
	}
	if err := c.Config.UserNetworks.Check(srv); err != nil {
		return nil, err
	}
	return c.Config.UserNetworks.Network(srv), nil
}

// loginNetwork is the network of a login loaded from the database.
func (c *IRCConnector) loginNetwork(meta *sbdb.UserLoginMetadata) (*config.Network, error) {
	if n := c.Config.Networks[meta.Network]; n != nil {
		return n, nil
	}
	if meta.UserServer == nil {
		return nil, fmt.Errorf("the IRC network %q is no longer in the bridge's config", meta.Network)
	}
	srv := config.UserServer{Host: meta.Network, Port: meta.UserServer.Port, TLS: meta.UserServer.TLS}
	if err := c.Config.UserNetworks.Check(srv); err != nil {
		return nil, fmt.Errorf("%s can no longer be used: %v", srv.Host, err)
	}
	return c.Config.UserNetworks.Network(srv), nil
}

// checkUserNetworkQuota refuses a login on one more user network than network.user_networks
// allows a Matrix user (a relogin of the same login is not one more).
func (c *IRCConnector) checkUserNetworkQuota(user *bridgev2.User, network *config.Network) error {
	if !network.UserAdded {
		return nil
	}
	n := 0
	for _, ul := range user.GetUserLogins() {
		if meta, ok := ul.Metadata.(*sbdb.UserLoginMetadata); ok && meta.UserServer != nil && meta.Network != network.ID {
			n++
		}
	}
	if max := c.Config.UserNetworks.MaxPerUser; n >= max {
		return fmt.Errorf("you already have logins on %d servers of your own choice, the most this bridge allows; log out of one first", n)
	}
	return nil
}

// knownNetwork tells whether id is a configured network or one some login is on.
func (c *IRCConnector) knownNetwork(id string) bool {
	if c.Config.Networks[id] != nil {
		return true
	}
	c.clientsLock.Lock()
	defer c.clientsLock.Unlock()
	for _, cl := range c.all {
		if cl.network.ID == id {
			return true
		}
	}
	return false
}

// errPrivateAddress is a user network whose address is not public.
var errPrivateAddress = errors.New("the server's address is not a public internet address, and the bridge admin does not allow user networks on private addresses")

// nonPublic are the special-purpose ranges (RFC 6890 and kin) the net/netip predicates miss.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("100::/64"),
}

// IPv6 forms that carry an IPv4 address inside: the well-known NAT64 prefix (RFC 6052, the IPv4
// address in the last 32 bits) and 6to4 (RFC 3056, in bits 16-47). Through a NAT64 gateway or a
// 6to4 relay they reach that IPv4 address, so it is what must be public.
var (
	nat64WellKnown = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour      = netip.MustParsePrefix("2002::/16")
)

// publicAddress tells whether a is a public unicast address.
func publicAddress(a netip.Addr) bool {
	a = a.Unmap()
	if a.Is6() {
		b := a.As16()
		switch {
		case nat64WellKnown.Contains(a):
			return publicAddress(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
		case sixToFour.Contains(a):
			return publicAddress(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}))
		}
	}
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// userNetworksHelp is the `networks` command's paragraph on servers of the user's choice.
func (c *IRCConnector) userNetworksHelp() string {
	u := c.Config.UserNetworks
	if !u.Enabled {
		return ""
	}
	var ports []string
	for _, p := range u.Ports {
		ports = append(ports, fmt.Sprint(p))
	}
	tls := "TLS only"
	if u.AllowPlaintext {
		tls = "TLS, or plain text with irc://host"
	}
	return fmt.Sprintf("\nYou can also connect to a server of your choice by its host name, e.g. `$cmdprefix login nick irc.example.org:6697 <nick>` (allowed hosts: %s; ports %s; %s; at most %d such servers).\n",
		strings.Join(u.Allow, ", "), strings.Join(ports, ", "), tls, u.MaxPerUser)
}
