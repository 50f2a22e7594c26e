package bridge

import (
	"context"
	"time"

	"github.com/sealbridge/sealbridge/sbdb"
)

// The login's metadata (sbdb.UserLoginMetadata: nick, account, sealed secrets, channels with
// their sealed keys) as the connection changes it, and its writes to the database.

// channelEntry returns the login's stored entry for a channel, adding it if missing. Call it with
// cl.mu held.
func (cl *IRCClient) channelEntry(folded, name string) *sbdb.Channel {
	if cl.meta.Channels == nil {
		cl.meta.Channels = make(map[string]*sbdb.Channel)
	}
	ch := cl.meta.Channels[folded]
	if ch == nil {
		ch = &sbdb.Channel{Name: name}
		cl.meta.Channels[folded] = ch
	}
	return ch
}

// loginSaveDelay gathers the metadata changes of a burst (the JOINs of many channels) into one
// write; each write stores the whole channel list, so one per JOIN would be quadratic.
const loginSaveDelay = 200 * time.Millisecond

// saveLogin writes the login's metadata soon, off the caller's goroutine (the reader must not wait
// for the database); changes made meanwhile go in the same write.
func (cl *IRCClient) saveLogin() {
	cl.saveMu.Lock()
	defer cl.saveMu.Unlock()
	if cl.saveTimer == nil && !cl.retired {
		cl.saveTimer = time.AfterFunc(loginSaveDelay, cl.saveLoginNow)
	}
}

// saveLoginNow writes the login's metadata at once.
func (cl *IRCClient) saveLoginNow() {
	cl.saveMu.Lock()
	if cl.saveTimer != nil {
		cl.saveTimer.Stop()
		cl.saveTimer = nil
	}
	cl.saveMu.Unlock()
	if cl.login == nil {
		return
	}
	ctx := cl.log.WithContext(context.Background())
	// Writes happen one at a time, each of a snapshot taken under cl.mu; the database write
	// itself runs without cl.mu, which the reader goroutine needs for every line.
	cl.saveWriteMu.Lock()
	defer cl.saveWriteMu.Unlock()
	cl.mu.Lock()
	row := *cl.login.UserLogin
	row.Metadata = cl.meta.Clone()
	cl.mu.Unlock()
	if err := cl.connector.db.saveLogin(ctx, &row); err != nil {
		cl.log.Err(err).Msg("Failed to save login")
	}
}

// rememberChannel stores a channel the user asked to join (with its sealed key, when setKey), so
// that its JOIN is taken as asked for and reconnects rejoin it. A JOIN the server refuses removes
// the entry again (handleChannelError).
func (cl *IRCClient) rememberChannel(channel, sealedKey string, setKey bool) {
	folded := cl.fold(channel)
	cl.mu.Lock()
	entry := cl.channelEntry(folded, channel)
	if setKey {
		entry.Key = sealedKey
	}
	cl.mu.Unlock()
	cl.saveLoginNow() // a command, not the reader: stored before the JOIN goes out
}
