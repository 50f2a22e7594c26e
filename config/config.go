package config

import (
	_ "embed"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	up "go.mau.fi/util/configupgrade"
	"go.mau.fi/util/random"
)

// ExampleYAML is the network section of the example config, as `sealbridge -e` writes it.
//
//go:embed example.yaml
var ExampleYAML string

// Config is the `network:` section of the config file.
type Config struct {
	// Networks the admin allows users to log in to, by ID. The ID is part of every portal, ghost and
	// login ID, so it must never change once users have logged in.
	Networks map[string]*Network `yaml:"networks"`
	// CredentialsKey is the base64 of 32 random bytes that seals IRC passwords at rest
	// (XChaCha20-Poly1305). It lives only in this file, never in the database.
	CredentialsKey string `yaml:"credentials_key"`
	// CTCPReplies makes the bridge answer CTCP VERSION, PING, TIME and CLIENTINFO. Off by default:
	// answering tells anyone on IRC what software a user runs.
	CTCPReplies bool `yaml:"ctcp_replies"`
	// PlaintextNotice is posted once in every new portal room.
	PlaintextNotice string `yaml:"plaintext_notice"`
	// EditStyle is how a Matrix edit reaches IRC, which has no edits: EditPrefix resends the new text
	// as "* new text", EditOff does not bridge edits (the sender sees them fail).
	EditStyle string `yaml:"edit_style"`
	// Metrics serves Prometheus metrics on their own listener.
	Metrics Metrics `yaml:"metrics"`
	// UserNetworks lets users connect to servers the admin did not list (usernetworks.go).
	UserNetworks UserNetworks `yaml:"user_networks"`
	// Limits bound what IRC peers can make the bridge hold or create per login (limits.go).
	Limits Limits `yaml:"limits"`
	// Identd answers IRC servers' ident queries (RFC 1413) with each login's username.
	Identd Identd `yaml:"identd"`
	// RelayActions are the moderation actions the relay's IRC connection takes on behalf of room
	// members without a login of their own (RelayAction*). Empty by default: such a member's kick,
	// ban, invite, power level or topic change is refused and undone, and only their messages are
	// relayed, since the relay's IRC user would otherwise act with its own channel privileges for
	// anyone in the room.
	RelayActions []string `yaml:"relay_actions"`
}

// The actions RelayActions may allow.
const (
	RelayActionInvite      = "invite"
	RelayActionKick        = "kick"
	RelayActionBan         = "ban"
	RelayActionPowerLevels = "power_levels"
	RelayActionTopic       = "topic"
)

// RelayAllows tells whether the relay acts on action for members without a login.
func (c *Config) RelayAllows(action string) bool {
	for _, a := range c.RelayActions {
		if a == action {
			return true
		}
	}
	return false
}

// The edit styles.
const (
	EditPrefix = "prefix"
	EditOff    = "off"
)

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	Enabled bool   `yaml:"enabled"`
	Listen  string `yaml:"listen"`
}

// Network describes one IRC network users may log in to.
type Network struct {
	// Name is shown to users (login prompts, room topics); defaults to the ID.
	Name    string `yaml:"name"`
	Address string `yaml:"address"`
	Port    int    `yaml:"port"`
	// TLS is on unless explicitly set to false; certificates are always verified unless
	// TLSInsecureSkipVerify is set.
	TLS                   *bool  `yaml:"tls"`
	TLSInsecureSkipVerify bool   `yaml:"tls_insecure_skip_verify"`
	TLSCAFile             string `yaml:"tls_ca_file"`
	// Password is the server password (PASS), shared by every user of this network.
	Password  string    `yaml:"password"`
	Flood     Flood     `yaml:"flood"`
	Reconnect Reconnect `yaml:"reconnect"`
	// Identity is how the network sees each login: username and real name, source address,
	// WEBIRC, connection cap (identity.go).
	Identity `yaml:",inline"`
	// ID is the key of this network in Networks, filled in by ApplyDefaults; for a user network,
	// its host.
	ID string `yaml:"-"`
	// UserAdded marks a network a user named at login (UserNetworks), not one of Networks.
	UserAdded bool `yaml:"-"`
}

// Flood is the token bucket that paces lines to the server.
type Flood struct {
	Burst          int     `yaml:"burst"`
	LinesPerSecond float64 `yaml:"lines_per_second"`
}

// Reconnect is the exponential backoff with full jitter used after a dropped connection, and the
// pace at which the bridge opens connections to the network across all its logins.
type Reconnect struct {
	MinDelay time.Duration `yaml:"min_delay"`
	MaxDelay time.Duration `yaml:"max_delay"`
	// ConnectsPerSecond and ConnectBurst bound new connections to this network across all logins,
	// so a bridge or server restart with many logins is not a connection flood.
	ConnectsPerSecond float64 `yaml:"connects_per_second"`
	ConnectBurst      int     `yaml:"connect_burst"`
}

// Defaults used where the config leaves a value out.
const (
	DefaultTLSPort        = 6697
	DefaultPlainPort      = 6667
	DefaultBurst          = 5
	DefaultLinesPerSecond = 1.0
	DefaultMinDelay       = 2 * time.Second
	DefaultMaxDelay       = 5 * time.Minute
	DefaultConnectsPerSec = 5.0
	DefaultConnectBurst   = 10
)

var networkIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// UseTLS tells whether connections to this network use TLS (the default).
func (n *Network) UseTLS() bool { return n.TLS == nil || *n.TLS }

// HostPort is the address to dial.
func (n *Network) HostPort() string {
	return net.JoinHostPort(n.Address, fmt.Sprint(n.Port))
}

// DisplayName is the name shown to users.
func (n *Network) DisplayName() string {
	if n.Name != "" {
		return n.Name
	}
	return n.ID
}

// ApplyDefaults fills in every value the admin left out. Validate calls it.
func (c *Config) ApplyDefaults() {
	if c.EditStyle == "" {
		c.EditStyle = EditPrefix
	}
	for id, n := range c.Networks {
		if n != nil {
			n.applyDefaults(id)
		}
	}
	c.UserNetworks.applyDefaults()
	c.Limits.applyDefaults()
	if c.Identd.Listen == "" {
		c.Identd.Listen = DefaultIdentdListen
	}
}

func (n *Network) applyDefaults(id string) {
	n.ID = id
	if n.Port == 0 {
		n.Port = DefaultPlainPort
		if n.UseTLS() {
			n.Port = DefaultTLSPort
		}
	}
	if n.Flood.Burst == 0 {
		n.Flood.Burst = DefaultBurst
	}
	if n.Flood.LinesPerSecond == 0 {
		n.Flood.LinesPerSecond = DefaultLinesPerSecond
	}
	if n.Reconnect.MinDelay == 0 {
		n.Reconnect.MinDelay = DefaultMinDelay
	}
	if n.Reconnect.MaxDelay == 0 {
		n.Reconnect.MaxDelay = DefaultMaxDelay
	}
	if n.Reconnect.ConnectsPerSecond == 0 {
		n.Reconnect.ConnectsPerSecond = DefaultConnectsPerSec
	}
	if n.Reconnect.ConnectBurst == 0 {
		n.Reconnect.ConnectBurst = DefaultConnectBurst
	}
	n.Identity.applyDefaults()
}

// Validate applies defaults and reports the first problem, naming the key and what to write instead.
func (c *Config) Validate() error {
	c.ApplyDefaults()
	if len(c.Networks) == 0 && !c.UserNetworks.Enabled {
		return fmt.Errorf("network.networks: no IRC network is configured; add at least one, e.g. `libera: {address: irc.libera.chat}`")
	}
	if err := c.UserNetworks.validate(); err != nil {
		return err
	}
	if err := c.Limits.validate(); err != nil {
		return err
	}
	for _, id := range c.NetworkIDs() {
		n := c.Networks[id]
		key := "network.networks." + id
		switch {
		case !networkIDPattern.MatchString(id):
			return fmt.Errorf("%s: network IDs must be 1-32 lowercase letters, digits or dashes (they become part of room and user IDs)", key)
		case n == nil:
			return fmt.Errorf("%s: empty network; set at least `address`", key)
		case n.Address == "":
			return fmt.Errorf("%s.address: missing; write the IRC server's host name, e.g. irc.libera.chat", key)
		case strings.ContainsAny(n.Address, " /:\r\n") && net.ParseIP(n.Address) == nil:
			return fmt.Errorf("%s.address: %q is not a host name; write the host alone and the port under `port`", key, n.Address)
		case n.Port < 1 || n.Port > 65535:
			return fmt.Errorf("%s.port: %d is not a TCP port (1-65535)", key, n.Port)
		case strings.ContainsAny(n.Password, "\r\n\x00"):
			return fmt.Errorf("%s.password: contains a line break or NUL, which IRC cannot carry", key)
		case n.Flood.Burst < 1:
			return fmt.Errorf("%s.flood.burst: must be at least 1 (default %d)", key, DefaultBurst)
		case n.Flood.LinesPerSecond <= 0:
			return fmt.Errorf("%s.flood.lines_per_second: must be above 0 (default %g)", key, DefaultLinesPerSecond)
		case n.Reconnect.MinDelay <= 0 || n.Reconnect.MaxDelay < n.Reconnect.MinDelay:
			return fmt.Errorf("%s.reconnect: need 0 < min_delay <= max_delay (defaults %s and %s)", key, DefaultMinDelay, DefaultMaxDelay)
		case n.Reconnect.ConnectsPerSecond < 0 || n.Reconnect.ConnectBurst < 0:
			return fmt.Errorf("%s.reconnect: connects_per_second and connect_burst must be positive (defaults %g and %d)", key, DefaultConnectsPerSec, DefaultConnectBurst)
		}
		if err := n.Identity.validate(key); err != nil {
			return err
		}
	}
	for _, a := range c.RelayActions {
		switch a {
		case RelayActionInvite, RelayActionKick, RelayActionBan, RelayActionPowerLevels, RelayActionTopic:
		default:
			return fmt.Errorf("network.relay_actions: %q is not one of invite, kick, ban, power_levels, topic", a)
		}
	}
	if c.EditStyle != EditPrefix && c.EditStyle != EditOff {
		return fmt.Errorf("network.edit_style: %q is not %q or %q", c.EditStyle, EditPrefix, EditOff)
	}
	if _, err := c.SealingKey(); err != nil {
		return err
	}
	if c.Identd.Enabled {
		if _, _, err := net.SplitHostPort(c.Identd.Listen); err != nil {
			return fmt.Errorf("network.identd.listen: %q is not host:port (e.g. 0.0.0.0:113)", c.Identd.Listen)
		}
	}
	if c.Metrics.Enabled {
		if _, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			return fmt.Errorf("network.metrics.listen: %q is not host:port (e.g. 127.0.0.1:8001)", c.Metrics.Listen)
		}
	}
	return nil
}

// SealingKey decodes CredentialsKey.
func (c *Config) SealingKey() ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(c.CredentialsKey)
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("network.credentials_key: must be the base64 of 32 random bytes (write `generate` and the bridge fills it in on its next start)")
	}
	return key, nil
}

// NetworkIDs lists the configured networks in a stable order.
func (c *Config) NetworkIDs() []string {
	ids := make([]string, 0, len(c.Networks))
	for id := range c.Networks {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Upgrade copies the admin's values onto the current example (mautrix's config upgrader) and fills in
// a fresh credentials key where the config says `generate`.
func Upgrade(helper up.Helper) { UpgradeGenerating(helper) }

// UpgradeGenerating is Upgrade, and returns the credentials key it generated, if it did: the
// connector checks that the key reached the config file (CheckGeneratedKey).
func UpgradeGenerating(helper up.Helper) (generated string) {
	helper.Copy(up.Map, "networks")
	if key, ok := helper.Get(up.Str, "credentials_key"); !ok || key == "generate" {
		generated = base64.StdEncoding.EncodeToString(random.Bytes(32))
		helper.Set(up.Str, generated, "credentials_key")
	} else {
		helper.Copy(up.Str, "credentials_key")
	}
	helper.Copy(up.Bool, "ctcp_replies")
	helper.Copy(up.Str, "plaintext_notice")
	helper.Copy(up.Str, "edit_style")
	helper.Copy(up.List, "relay_actions")
	helper.Copy(up.Bool, "identd", "enabled")
	helper.Copy(up.Str, "identd", "listen")
	helper.Copy(up.Bool, "metrics", "enabled")
	helper.Copy(up.Str, "metrics", "listen")
	helper.Copy(up.Bool, "user_networks", "enabled")
	helper.Copy(up.List, "user_networks", "allow")
	helper.Copy(up.List, "user_networks", "deny")
	helper.Copy(up.List, "user_networks", "ports")
	helper.Copy(up.Bool, "user_networks", "allow_plaintext")
	helper.Copy(up.Bool, "user_networks", "allow_private_addresses")
	helper.Copy(up.Str, "user_networks", "tls_ca_file")
	helper.Copy(up.Int, "user_networks", "max_per_user")
	for _, key := range []string{"max_channels", "new_dm_burst", "max_dms", "max_dm_requests", "queue_in_memory", "max_nicks", "max_batch_lines", "max_open_batches"} {
		helper.Copy(up.Int, "limits", key)
	}
	helper.Copy(up.Str, "limits", "new_dm_interval")
	return generated
}

// CheckGeneratedKey refuses to go on with a credentials key generated on this start that the
// config file at path does not hold (a read-only file, or mautrix's -n): every start would make
// another key, stored passwords would stop opening, and undelivered messages with them.
func CheckGeneratedKey(generated, path string) error {
	if generated == "" {
		return nil
	}
	data, err := os.ReadFile(path)
	if err == nil && strings.Contains(string(data), generated) {
		return nil
	}
	return fmt.Errorf("network.credentials_key: the config says `generate`, but the bridge could not write the key it generated into %s (a read-only file, or started with -n); "+
		"every start would make another key and stored passwords would no longer open. Write a key yourself, e.g. `credentials_key: %s` "+
		"(the output of `openssl rand -base64 32` works too), and keep it", path, base64.StdEncoding.EncodeToString(random.Bytes(32)))
}
