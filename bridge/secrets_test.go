package bridge

import (
	"errors"
	"testing"

	"github.com/sealbridge/sealbridge/sbdb"
)

func testSealer(t *testing.T) *IRCConnector {
	t.Helper()
	c := NewConnector()
	var err error
	if c.sealer, err = sbdb.NewSealer(make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
	return c
}

// A stored password is bound to the server it authenticates to: editing the plaintext metadata in
// the database (another network, another port, TLS off) makes it fail to open, so it is never sent
// to the edited server.
func TestAttackEditedMetadataCannotRedirectSecrets(t *testing.T) {
	c := testSealer(t)
	const id = "irc.example.org:@alice:example.org"
	meta := func() *sbdb.UserLoginMetadata {
		return &sbdb.UserLoginMetadata{Network: "irc.example.org", UserServer: &sbdb.UserServer{Port: 6697, TLS: true}}
	}
	sealed, err := c.sealSecret("hunter2", id, meta())
	if err != nil {
		t.Fatal(err)
	}
	if got, legacy, err := c.openSecret(sealed, id, meta()); err != nil || legacy || got != "hunter2" {
		t.Fatalf("open: %q %v %v", got, legacy, err)
	}
	for name, edit := range map[string]func(*sbdb.UserLoginMetadata){
		"port":    func(m *sbdb.UserLoginMetadata) { m.UserServer.Port = 6667 },
		"tls off": func(m *sbdb.UserLoginMetadata) { m.UserServer.TLS = false },
		"network": func(m *sbdb.UserLoginMetadata) { m.Network = "evil.example.net" },
		"configured network": func(m *sbdb.UserLoginMetadata) {
			m.Network, m.UserServer = "libera", nil
		},
	} {
		m := meta()
		edit(m)
		if got, _, err := c.openSecret(sealed, id, m); !errors.Is(err, sbdb.ErrUnseal) {
			t.Errorf("%s edited: the password opened (%q, %v)", name, got, err)
		}
	}
	// A secret of an earlier version (bound to the login ID alone) opens while the metadata names
	// the login's own network, and is reported for sealing again; not once the network is edited.
	old, err := c.sealer.Seal("hunter2", id)
	if err != nil {
		t.Fatal(err)
	}
	if got, legacy, err := c.openSecret(old, id, meta()); err != nil || !legacy || got != "hunter2" {
		t.Fatalf("legacy secret: %q %v %v", got, legacy, err)
	}
	m := meta()
	m.Network = "evil.example.net"
	if _, _, err := c.openSecret(old, id, m); err == nil {
		t.Fatal("a legacy secret opened for another network")
	}
	// A relogin that changes the port carries channel keys over, sealed for the new server.
	m = meta()
	key, _ := c.sealSecret("chankey", id, m)
	m.Channels = map[string]*sbdb.Channel{"#c": {Name: "#c", Key: key}}
	moved := meta()
	moved.UserServer.Port = 7000
	moved.Channels = c.resealChannels(id, m, moved)
	if got, _, err := c.openSecret(moved.Channels["#c"].Key, id, moved); err != nil || got != "chankey" {
		t.Fatalf("channel key after relogin: %q %v", got, err)
	}
}
