package sbdb

import (
	"maunium.net/go/mautrix/bridgev2/database"
)

// UserLoginMetadata is stored as JSON on bridgev2's user_login row.
type UserLoginMetadata struct {
	// Network is the network's ID: a configured network's key, or for a server the user named at
	// login (a user network) its host.
	Network string `json:"network"`
	Nick    string `json:"nick"`
	// UserServer is set for a user network: how to reach its host.
	UserServer *UserServer `json:"user_server,omitempty"`
	// SASLAccount is the account name for SASL PLAIN; empty for a login without SASL.
	SASLAccount string `json:"sasl_account,omitempty"`
	// SASLPassword is sealed (see Sealer) with the login ID as context; never the plaintext. With
	// NickServ set it is the password for NickServ IDENTIFY instead (servers without SASL).
	SASLPassword string `json:"sasl_password_sealed,omitempty"`
	NickServ     bool   `json:"nickserv,omitempty"`
	// ClientCert is the base64 DER of the login's TLS client certificate (CertFP), for SASL
	// EXTERNAL; not secret. ClientKey is its private key (PKCS #8), sealed like the password.
	ClientCert string `json:"client_cert,omitempty"`
	ClientKey  string `json:"client_key_sealed,omitempty"`
	// Channels the login is in, by casefolded name, rejoined after every reconnect.
	Channels map[string]*Channel `json:"channels,omitempty"`
	// Ignored are the nicks whose lines are not bridged (`ignore`), casefolded -> as written.
	Ignored map[string]string `json:"ignored,omitempty"`
	// Away is the user's away message (`away`), set again after every reconnect; "" when present.
	Away string `json:"away,omitempty"`
}

// Clone is a deep copy of m (the bridge writes a copy, taken under its lock, to the database).
func (m *UserLoginMetadata) Clone() *UserLoginMetadata {
	c := *m
	if m.UserServer != nil {
		us := *m.UserServer
		c.UserServer = &us
	}
	if m.Channels != nil {
		c.Channels = make(map[string]*Channel, len(m.Channels))
		for k, ch := range m.Channels {
			chc := *ch
			c.Channels[k] = &chc
		}
	}
	if m.Ignored != nil {
		c.Ignored = make(map[string]string, len(m.Ignored))
		for k, v := range m.Ignored {
			c.Ignored[k] = v
		}
	}
	return &c
}

// UserServer is the port and TLS choice of a user network.
type UserServer struct {
	Port int  `json:"port"`
	TLS  bool `json:"tls"`
}

// Channel is one channel a login has joined.
type Channel struct {
	Name string `json:"name"`
	// Key is the channel key (+k), sealed like the password.
	Key string `json:"key_sealed,omitempty"`
}

// PortalMetadata is stored on bridgev2's portal row.
type PortalMetadata struct {
	// Target is the channel name or nick as IRC spells it, for sending.
	Target string `json:"target,omitempty"`
	// NoticeSent records that the room got its one notice that IRC is plaintext.
	NoticeSent bool `json:"notice_sent,omitempty"`
	// MediaLinks is set by a room admin (`media-links on`): files from Matrix go to IRC as public
	// media links, which expose the decrypted file to whoever holds them.
	MediaLinks bool `json:"media_links,omitempty"`
	// Synced is, per login, what the channel looked like (name, topic, members and their levels)
	// when that login last synced the room: a reconnect that finds the channel the same skips the
	// sync (see bridge/resync.go).
	Synced map[string]SyncState `json:"synced,omitempty"`
}

// SyncState is a digest of a channel as synced into its room, and when (Unix seconds).
type SyncState struct {
	Digest string `json:"digest"`
	At     int64  `json:"at"`
}

// GhostMetadata is stored on bridgev2's ghost row.
type GhostMetadata struct {
	Nick string `json:"nick,omitempty"`
}

// MetaTypes tells bridgev2 how to decode the metadata above.
func MetaTypes() database.MetaTypes {
	return database.MetaTypes{
		Portal:    func() any { return &PortalMetadata{} },
		Ghost:     func() any { return &GhostMetadata{} },
		Message:   nil,
		Reaction:  nil,
		UserLogin: func() any { return &UserLoginMetadata{} },
	}
}
