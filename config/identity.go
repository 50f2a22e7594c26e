package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// How a network sees the bridge's users. On a public network every login comes from the bridge's
// one host: a per-IP connection limit stops the Nth user, and one ban hits everyone. So each
// network can give logins their own username and real name (templates), their own source address
// (BindAddress, a prefix from which each login gets a stable address of its own), their own host
// through the server's WEBIRC gateway, and a cap on how many connect at all.

// Identd is the built-in ident server: off by default. Port 113 needs CAP_NET_BIND_SERVICE (or a
// port forward to the listen address).
type Identd struct {
	Enabled bool   `yaml:"enabled"`
	Listen  string `yaml:"listen"`
}

// DefaultIdentdListen is where the identd listens unless the admin says otherwise.
const DefaultIdentdListen = "0.0.0.0:113"

// Identity is the per-network part of a Network that shapes each login's IRC identity.
type Identity struct {
	// Username and RealName are templates for the IRC username (ident) and real name of each
	// login: {nick} is the login's nick, {id} a stable pseudonym of the login (8 hex digits, keyed
	// with the bridge's secret), {localpart} and {mxid} the user's Matrix ID (shown only if the
	// admin puts them here).
	Username string `yaml:"username"`
	RealName string `yaml:"realname"`
	// BindAddress is the local address connections to this network come from: one address, or a
	// CIDR prefix (IPv6 above all) from which each login gets its own stable address (the prefix
	// and a hash of the login ID). The host must accept traffic for the prefix (e.g. `ip route add
	// local 2001:db8:1::/64 dev lo`); the bridge binds with IP_FREEBIND. Empty: the system's choice.
	BindAddress string `yaml:"bind_address"`
	// MaxConnections caps the logins connected to this network (0: no cap); a login beyond it is
	// refused with a message saying so.
	MaxConnections int `yaml:"max_connections"`
	// WebIRC, where the IRC server's operators have given the bridge a gateway password, makes
	// every connection start with WEBIRC so that the server shows each user's own host.
	WebIRC WebIRC `yaml:"webirc"`
}

// WebIRC configures the WEBIRC command (https://ircv3.net/specs/extensions/webirc).
type WebIRC struct {
	Password string `yaml:"password"`
	Gateway  string `yaml:"gateway"`
	// Hostname is a template ({id}, {localpart}, {nick}) for the host the server shows; it must
	// look like a host name. Default {id}.users.sealbridge.invalid: a pseudonym, never the Matrix ID.
	Hostname string `yaml:"hostname"`
	// IPPrefix is the prefix each login's pseudonymous IP is taken from (hash of the login ID).
	// Default fd00:5ea1:b41d::/48 (unique local addresses: they reach no one).
	IPPrefix string `yaml:"ip_prefix"`
}

// Defaults of Identity.
const (
	DefaultUsername       = "{nick}"
	DefaultRealName       = "Matrix user via sealbridge"
	DefaultWebIRCHostname = "{id}.users.sealbridge.invalid"
	DefaultWebIRCIPPrefix = "fd00:5ea1:b41d::/48"
)

func (id *Identity) applyDefaults() {
	if id.Username == "" {
		id.Username = DefaultUsername
	}
	if id.RealName == "" {
		id.RealName = DefaultRealName
	}
	if id.WebIRC.Password != "" {
		if id.WebIRC.Gateway == "" {
			id.WebIRC.Gateway = "sealbridge"
		}
		if id.WebIRC.Hostname == "" {
			id.WebIRC.Hostname = DefaultWebIRCHostname
		}
		if id.WebIRC.IPPrefix == "" {
			id.WebIRC.IPPrefix = DefaultWebIRCIPPrefix
		}
	}
}

// templateFields are the placeholders the identity templates may use.
var templateFields = []string{"{nick}", "{id}", "{localpart}", "{mxid}"}

func (id *Identity) validate(key string) error {
	for field, tmpl := range map[string]string{"username": id.Username, "realname": id.RealName, "webirc.hostname": id.WebIRC.Hostname} {
		rest := tmpl
		for _, f := range templateFields {
			rest = strings.ReplaceAll(rest, f, "")
		}
		if strings.ContainsAny(rest, "{}\r\n\x00") {
			return fmt.Errorf("%s.%s: %q uses a placeholder other than %s, or a line break", key, field, tmpl, strings.Join(templateFields, " "))
		}
		if field != "realname" && strings.ContainsAny(rest, " @") {
			return fmt.Errorf("%s.%s: %q would have a space or @ in it", key, field, tmpl)
		}
	}
	if id.BindAddress != "" {
		if _, err := BindPrefix(id.BindAddress); err != nil {
			return fmt.Errorf("%s.bind_address: %q is not an IP address or CIDR prefix", key, id.BindAddress)
		}
	}
	if id.MaxConnections < 0 {
		return fmt.Errorf("%s.max_connections: must be 0 (no cap) or more", key)
	}
	if w := id.WebIRC; w.Password != "" {
		if strings.ContainsAny(w.Password+w.Gateway, " \r\n\x00") {
			return fmt.Errorf("%s.webirc: the password and gateway must be single words", key)
		}
		if p, err := netip.ParsePrefix(w.IPPrefix); err != nil || !p.Addr().Is6() {
			return fmt.Errorf("%s.webirc.ip_prefix: %q is not an IPv6 CIDR prefix", key, w.IPPrefix)
		}
	}
	return nil
}

// BindPrefix reads bind_address: one address (a /32 or /128 prefix) or a CIDR prefix.
func BindPrefix(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	return p.Masked(), err
}
