package bridge

import (
	"context"
	"fmt"
	"strings"

	"maunium.net/go/mautrix/bridgev2"

	"github.com/sealbridge/sealbridge/sbdb"
)

// Every credential a login stores (SASL or NickServ password, client-certificate key, channel
// keys) is sealed with associated data that names what it authenticates to: the login, its
// network and, for a server the user named, the host, port and TLS choice. That metadata is
// plaintext in the database; editing it (to point a login at another server, or to turn TLS off)
// makes the secrets fail to open instead of sending them there.

// secretContext is the associated data of a login's sealed secrets.
func secretContext(loginID string, meta *sbdb.UserLoginMetadata) string {
	ad := "sealbridge/secret/v2|" + loginID + "|" + meta.Network
	if meta.UserServer != nil {
		ad += fmt.Sprintf("|%d|tls=%t", meta.UserServer.Port, meta.UserServer.TLS)
	}
	return ad
}

// sealSecret seals a credential of a login.
func (c *IRCConnector) sealSecret(secret, loginID string, meta *sbdb.UserLoginMetadata) (string, error) {
	return c.sealer.Seal(secret, secretContext(loginID, meta))
}

// openSecret opens a credential of a login. One sealed by an earlier version (bound to the login
// ID alone) opens too, if the metadata still names the login's own network, and legacy is set so
// that the caller seals it again.
func (c *IRCConnector) openSecret(sealed, loginID string, meta *sbdb.UserLoginMetadata) (secret string, legacy bool, err error) {
	secret, err = c.sealer.Open(sealed, secretContext(loginID, meta))
	if err == nil || sealed == "" {
		return secret, false, err
	}
	if network, _, ok := strings.Cut(loginID, ":"); !ok || network != meta.Network {
		return "", false, err
	}
	if secret, lerr := c.sealer.Open(sealed, loginID); lerr == nil {
		return secret, true, nil
	}
	return "", false, err
}

// migrateSecrets seals a login's secrets of an earlier version again under secretContext and
// saves the login, once, when it is loaded.
func (c *IRCConnector) migrateSecrets(ctx context.Context, login *bridgev2.UserLogin, meta *sbdb.UserLoginMetadata) error {
	id := string(login.ID)
	changed := false
	reseal := func(field *string) error {
		secret, legacy, err := c.openSecret(*field, id, meta)
		if err != nil || !legacy {
			return err
		}
		if *field, err = c.sealSecret(secret, id, meta); err == nil {
			changed = true
		}
		return err
	}
	if err := reseal(&meta.SASLPassword); err != nil {
		return err
	}
	if err := reseal(&meta.ClientKey); err != nil {
		return err
	}
	for _, ch := range meta.Channels {
		if err := reseal(&ch.Key); err != nil {
			ch.Key = "" // a channel key that cannot be opened is joined without
		}
	}
	if !changed {
		return nil
	}
	if err := login.Save(ctx); err != nil {
		return fmt.Errorf("failed to save the login's secrets sealed again: %w", err)
	}
	login.Log.Info().Msg("Sealed the login's stored secrets again, bound to its network and server")
	return nil
}

// resealChannels copies a login's channels from its old metadata to the new one of a relogin, their
// keys sealed for the new metadata (a user network's port or TLS choice may have changed).
func (c *IRCConnector) resealChannels(loginID string, old, meta *sbdb.UserLoginMetadata) map[string]*sbdb.Channel {
	out := make(map[string]*sbdb.Channel, len(old.Channels))
	for folded, ch := range old.Channels {
		moved := &sbdb.Channel{Name: ch.Name}
		if key, _, err := c.openSecret(ch.Key, loginID, old); err == nil && key != "" {
			moved.Key, _ = c.sealSecret(key, loginID, meta)
		}
		out[folded] = moved
	}
	return out
}
