package bridge

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"

	"maunium.net/go/mautrix/id"

	"github.com/sealbridge/sealbridge/bridge/irc"
	"github.com/sealbridge/sealbridge/config"
)

// How a network sees each login (config.Identity): its username and real name from the network's
// templates, its own source address from the network's bind prefix, its own pseudonymous host
// through WEBIRC, and the network's cap on connections. Every per-login value derives from a
// keyed hash of the login ID, so it is stable across restarts and says nothing about the Matrix
// user unless the admin's templates put the Matrix ID in.

// loginHash is the login's stable keyed hash (the key derives from the credentials key).
func (c *IRCConnector) loginHash(loginID string) []byte {
	mac := hmac.New(sha256.New, c.idKey)
	mac.Write([]byte("sealbridge login identity\x00" + loginID))
	return mac.Sum(nil)
}

// pseudonym is the {id} of the identity templates: 8 hex digits.
func (c *IRCConnector) pseudonym(loginID string) string {
	return hex.EncodeToString(c.loginHash(loginID)[:4])
}

// expandIdentity fills an identity template for a login.
func (c *IRCConnector) expandIdentity(tmpl, loginID, nick string) string {
	_, mxid, _ := strings.Cut(loginID, ":") // login IDs are network:@user:server
	localpart, _, _ := id.UserID(mxid).Parse()
	return strings.NewReplacer("{nick}", nick, "{id}", c.pseudonym(loginID), "{localpart}", localpart, "{mxid}", mxid).Replace(tmpl)
}

// identUsername keeps the characters an IRC username may have, at most 10 (longer ones are cut by
// most servers anyway); the nick's when nothing is left.
func identUsername(s, nick string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.", r)) && b.Len() < 10 {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 && s != nick {
		return identUsername(nick, nick)
	}
	return b.String()
}

// addrInPrefix is the login's address in prefix: the prefix's bits, then the login's hash in the
// host bits (a single address stays itself).
func (c *IRCConnector) addrInPrefix(prefix netip.Prefix, loginID string) netip.Addr {
	a := prefix.Addr()
	if prefix.Bits() >= a.BitLen() {
		return a
	}
	h := c.loginHash(loginID)
	raw := a.AsSlice()
	for i := range raw {
		bitStart := i * 8
		if bitStart+8 <= prefix.Bits() {
			continue // all network bits
		}
		hostMask := byte(0xff)
		if bitStart < prefix.Bits() {
			hostMask = 0xff >> (prefix.Bits() - bitStart)
		}
		raw[i] = raw[i]&^hostMask | h[i%len(h)]&hostMask
	}
	out, _ := netip.AddrFromSlice(raw)
	// Not the prefix's network or broadcast address, where those exist (IPv4).
	if out.Is4() {
		last := out.As4()
		v := binary.BigEndian.Uint32(last[:])
		mask := uint32(1)<<(32-prefix.Bits()) - 1
		if v&mask == 0 || v&mask == mask {
			v ^= 1
			binary.BigEndian.PutUint32(last[:], v)
			out = netip.AddrFrom4(last)
		}
	}
	return out
}

// irc identity settings of a login on network, for its engine config.
func (c *IRCConnector) applyIdentity(cfg *irc.Config, network *config.Network, loginID, nick string) {
	cfg.Username = identUsername(c.expandIdentity(network.Username, loginID, nick), nick)
	cfg.RealName = c.expandIdentity(network.RealName, loginID, nick)
	if w := network.WebIRC; w.Password != "" {
		prefix, _ := netip.ParsePrefix(w.IPPrefix)
		cfg.WebIRC = &irc.WebIRC{
			Password: w.Password, Gateway: w.Gateway,
			Hostname: c.expandIdentity(w.Hostname, loginID, nick),
			IP:       c.addrInPrefix(prefix.Masked(), loginID).String(),
		}
	}
}

// dialFor is how a login's connections to network are dialled: from the login's address in the
// network's bind_address, where set; and for user networks, unless the admin allows private
// addresses, only to public addresses, checked on the address actually connected to (after DNS),
// so a name that resolves to the bridge's own network is refused.
func (c *IRCConnector) dialFor(network *config.Network, loginID string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	guard := network.UserAdded && !c.Config.UserNetworks.AllowPrivateAddresses
	if !guard && network.BindAddress == "" {
		return nil
	}
	d := &net.Dialer{}
	if network.BindAddress != "" {
		prefix, err := config.BindPrefix(network.BindAddress)
		if err == nil {
			d.LocalAddr = &net.TCPAddr{IP: net.IP(c.addrInPrefix(prefix, loginID).AsSlice())}
		}
	}
	d.Control = func(_, address string, rc syscall.RawConn) error {
		if guard {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !publicAddress(ap.Addr()) {
				return fmt.Errorf("%w (%s)", errPrivateAddress, address)
			}
		}
		if d.LocalAddr != nil {
			return freeBind(rc) // the login's address may be in a routed prefix, not on an interface
		}
		return nil
	}
	return d.DialContext
}

// networkFull tells whether network has its max_connections logins connected (or connecting)
// already.
func (c *IRCConnector) networkFull(network *config.Network) bool {
	if network.MaxConnections <= 0 {
		return false
	}
	n := 0
	for _, cl := range c.snapshot() {
		if cl.network.ID == network.ID && cl.state() != "disconnected" {
			n++
		}
	}
	return n >= network.MaxConnections
}
