package config

import (
	"errors"
	"fmt"
	"net"
	"path"
	"slices"
	"strconv"
	"strings"
)

// UserNetworks lets users log in to IRC servers the admin did not list, by host name
// (`login nick irc.example.org <nick>`), within the limits set here. Off by default.
type UserNetworks struct {
	Enabled bool `yaml:"enabled"`
	// Allow and Deny are host patterns (`*` matches any run of characters, dots included; matched
	// without regard to case). A host must match an Allow pattern and no Deny pattern.
	Allow []string `yaml:"allow"`
	Deny  []string `yaml:"deny"`
	// Ports users may connect to.
	Ports []int `yaml:"ports"`
	// AllowPlaintext permits irc:// (no TLS). TLS, with certificate verification, is the default
	// and cannot be turned off per user.
	AllowPlaintext bool `yaml:"allow_plaintext"`
	// AllowPrivateAddresses permits servers whose address is loopback, private, link-local or
	// otherwise not public. Off, the bridge checks the address it actually connects to, so that a
	// user cannot reach services on the bridge's own network.
	AllowPrivateAddresses bool `yaml:"allow_private_addresses"`
	// TLSCAFile is a PEM file of CA certificates trusted for user networks besides the system's.
	TLSCAFile string `yaml:"tls_ca_file"`
	// MaxPerUser bounds the user networks one Matrix user has logins on.
	MaxPerUser int `yaml:"max_per_user"`
}

// Defaults of the user networks section.
const (
	DefaultUserNetworkPort = DefaultTLSPort
	DefaultMaxUserNetworks = 3
	maxUserHostLen         = 63 // the host is the network ID, part of every room and user ID
)

func (u *UserNetworks) applyDefaults() {
	if len(u.Ports) == 0 {
		u.Ports = []int{DefaultUserNetworkPort}
	}
	if u.MaxPerUser == 0 {
		u.MaxPerUser = DefaultMaxUserNetworks
	}
}

func (u *UserNetworks) validate() error {
	for _, list := range []struct {
		key      string
		patterns []string
	}{{"allow", u.Allow}, {"deny", u.Deny}} {
		for _, p := range list.patterns {
			if _, err := path.Match(strings.ToLower(p), ""); err != nil || p == "" || strings.ContainsAny(p, "/: ") {
				return fmt.Errorf("network.user_networks.%s: %q is not a host pattern (e.g. `*.libera.chat`)", list.key, p)
			}
		}
	}
	for _, p := range u.Ports {
		if p < 1 || p > 65535 {
			return fmt.Errorf("network.user_networks.ports: %d is not a TCP port (1-65535)", p)
		}
	}
	if u.MaxPerUser < 0 {
		return fmt.Errorf("network.user_networks.max_per_user: must be positive (default %d)", DefaultMaxUserNetworks)
	}
	if u.Enabled && len(u.Allow) == 0 {
		return errors.New("network.user_networks.allow: user networks are enabled but no host is allowed; add patterns, e.g. `allow: ['*']`")
	}
	return nil
}

// UserServer is a server a user named at login.
type UserServer struct {
	Host string
	Port int
	TLS  bool
}

// String is how the user would write it again.
func (s UserServer) String() string {
	if s.TLS {
		return net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	}
	return "irc://" + net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
}

// ParseUserServer reads `host`, `host:port`, `ircs://host[:port]` (TLS, the default) or
// `irc://host[:port]` (plain text). The host must be a DNS name with a dot in it, or an IPv4
// address, so that it can never be mistaken for the ID of a configured network.
func ParseUserServer(s string) (UserServer, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	srv := UserServer{TLS: true}
	switch {
	case strings.HasPrefix(s, "ircs://"):
		s = s[len("ircs://"):]
	case strings.HasPrefix(s, "irc://"):
		s, srv.TLS = s[len("irc://"):], false
	}
	s = strings.TrimSuffix(s, "/")
	host, port := s, ""
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		host, port = s[:i], strings.TrimPrefix(s[i+1:], "+") // "+6697", TLS in some clients' notation
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return UserServer{}, fmt.Errorf("%q is not a TCP port", port)
		}
		srv.Port = n
	} else if srv.TLS {
		srv.Port = DefaultTLSPort
	} else {
		srv.Port = DefaultPlainPort
	}
	if !validHost(host) {
		return UserServer{}, fmt.Errorf("%q is not a server host name (write e.g. irc.example.org or irc.example.org:6697)", host)
	}
	srv.Host = host
	return srv, nil
}

// validHost accepts DNS names with at least one dot, and IPv4 addresses.
func validHost(h string) bool {
	if len(h) == 0 || len(h) > maxUserHostLen || !strings.Contains(h, ".") || strings.HasSuffix(h, ".") {
		return false
	}
	if ip := net.ParseIP(h); ip != nil {
		return ip.To4() != nil
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// Check tells whether a user may connect to srv, and if not, why, in words for the user.
func (u *UserNetworks) Check(srv UserServer) error {
	switch {
	case !u.Enabled:
		return errors.New("this bridge only connects to the networks its admin configured (see `networks`)")
	case matchAny(u.Deny, srv.Host) || !matchAny(u.Allow, srv.Host):
		return fmt.Errorf("the bridge admin does not allow connections to %s (allowed: %s)", srv.Host, strings.Join(u.Allow, ", "))
	case !srv.TLS && !u.AllowPlaintext:
		return errors.New("this bridge connects to other servers with TLS only; leave out irc://")
	case !slices.Contains(u.Ports, srv.Port):
		return fmt.Errorf("port %d is not allowed for other servers; allowed: %s", srv.Port, joinInts(u.Ports))
	}
	return nil
}

// Network is the network a user server stands for: its ID is the host, the rest the defaults.
func (u *UserNetworks) Network(srv UserServer) *Network {
	tls := srv.TLS
	n := &Network{ID: srv.Host, Name: srv.Host, Address: srv.Host, Port: srv.Port, TLS: &tls, TLSCAFile: u.TLSCAFile, UserAdded: true}
	n.applyDefaults(srv.Host)
	return n
}

func matchAny(patterns []string, host string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(strings.ToLower(p), host); ok {
			return true
		}
	}
	return false
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}
