package bridge

import (
	"context"
	"sync"
	"time"

	"maunium.net/go/mautrix/bridgev2"

	"github.com/sealbridge/sealbridge/bridge/metrics"
	"github.com/sealbridge/sealbridge/config"
)

// Admission: which portals an IRC event may reach. bridgev2 makes a portal (a database row, a
// cached struct and an event-loop goroutine, all kept until the bridge stops) for every portal key
// an event is queued to, even when no Matrix room is ever created. So an IRC server that sent lines
// for 100,000 channels, or private messages from 100,000 nicks, would grow the bridge without a
// bound. Every event passes queue's gate first:
//
//   - a channel's events only while this login is in it (its JOIN was seen and admitted: the
//     channels the user asked for, and at most limits.max_channels in all, see handleJoin);
//   - a private chat's events only with a nick the login already has a chat with (dmPeers), or a
//     new one admitted by the policy below; anything else is dropped and counted.
//
// New private chats: one the user opens (`pm`, or a message of theirs from another client) counts
// against limits.max_dms only; one opened by someone else also takes a token from a bucket of
// limits.new_dm_burst, refilled every limits.new_dm_interval. A message from anyone beyond that
// is held as a message request (requests.go) instead of making a room.

// queue hands an event to bridgev2 without ever blocking the IRC reader, if admit lets it through.
func (cl *IRCClient) queue(evt bridgev2.RemoteEvent) {
	if !cl.admit(evt) {
		return
	}
	cl.remote.Push(evt)
}

// admit tells whether evt may reach its portal; see the top of this file.
func (cl *IRCClient) admit(evt bridgev2.RemoteEvent) bool {
	key := evt.GetPortalKey()
	network, target, ok := ParsePortalID(key.ID)
	if !ok || network != cl.network.ID {
		return false
	}
	if key.Receiver == "" {
		cl.mu.Lock()
		_, in := cl.channels[target]
		cl.mu.Unlock()
		if !in {
			cl.limited(metrics.LimitChannels)
		}
		return in
	}
	if key.Receiver != cl.loginID {
		return false
	}
	m, isMessage := evt.(*outboxMessage)
	switch cl.dmPeers.admit(target, isMessage, isMessage && m.spooled.Data.Nick != "" && cl.isMe(m.spooled.Data.Nick), cl.connector.limits()) {
	case dmKnown, dmNew:
		return true
	case dmHeld:
		cl.holdRequest(m.spooled)
		return false
	default:
		cl.limited(metrics.LimitNewDMs)
		return false
	}
}

// dmPeers are the nicks (casefolded) a login has a private chat with, and the bucket of new chats
// others may open.
type dmPeers struct {
	mu     sync.Mutex
	known  map[string]bool
	bucket tokenBucket
}

// The outcomes of dmPeers.admit.
const (
	dmKnown   = iota // a chat that exists
	dmNew            // a new chat, admitted
	dmHeld           // a message that waits as a request
	dmDropped        // not a message, to a chat that does not exist
)

// admit applies the policy to an event for the chat with folded. fromMe is a message the user
// sent (from another client): it needs no token.
func (p *dmPeers) admit(folded string, isMessage, fromMe bool, lim config.Limits) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.known[folded] {
		return dmKnown
	}
	if !isMessage {
		return dmDropped
	}
	if len(p.known) >= lim.MaxDMs {
		return dmHeld
	}
	if !fromMe && !p.bucket.takeToken(lim) {
		return dmHeld
	}
	p.addLocked(folded)
	return dmNew
}

// has tells whether the login has a private chat with folded.
func (p *dmPeers) has(folded string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.known[folded]
}

// add records a chat the user opened, whatever the bucket says.
func (p *dmPeers) add(folded string) {
	p.mu.Lock()
	p.addLocked(folded)
	p.mu.Unlock()
}

func (p *dmPeers) addLocked(folded string) {
	if p.known == nil {
		p.known = map[string]bool{}
	}
	p.known[folded] = true
}

// loadDMPeers reads the login's private chats from bridgev2's user_portal table (every portal an
// event of this login was queued to), so that the chats of an earlier run stay open.
func (cl *IRCClient) loadDMPeers(ctx context.Context) {
	if cl.login == nil {
		return
	}
	ups, err := cl.connector.db.loginPortals(ctx, cl.login.UserLogin)
	if err != nil {
		cl.log.Err(err).Msg("Failed to list the login's private chats")
		return
	}
	for _, up := range ups {
		if up.Portal.Receiver != cl.loginID {
			continue
		}
		if network, nick, ok := ParsePortalID(up.Portal.ID); ok && network == cl.network.ID {
			cl.dmPeers.add(nick)
		}
	}
}

// openedDM records a private chat the user opened (`pm`, a Matrix DM with a ghost) and hands over
// the messages that waited for it as requests.
func (cl *IRCClient) openedDM(folded string) {
	cl.dmPeers.add(folded)
	cl.releaseRequests(folded)
}

// admitChannel decides a JOIN of our own to a channel we are not in on this connection. The
// channels the user asked for (`join`, and those rejoined after a reconnect) are in the login's
// metadata; a JOIN the server (or the user's other client behind a bouncer) made without that is
// bridged only while the forced-join bucket (the DM policy's burst and interval) allows it. And
// never more than limits.max_channels channels: a JOIN beyond that is parted again. The user is
// told, once per connection, about each.
func (cl *IRCClient) admitChannel(channel, folded string) bool {
	lim := cl.connector.limits()
	cl.mu.Lock()
	_, already := cl.channels[folded]
	_, asked := cl.meta.Channels[folded]
	count := len(cl.channels)
	cl.mu.Unlock()
	switch {
	case already:
		return true
	case count >= lim.MaxChannels:
		cl.limited(metrics.LimitChannels)
		if err := cl.ircConn.Send("PART", channel, "sealbridge: channel limit reached"); err != nil {
			cl.log.Debug().Err(err).Msg("Failed to part a channel beyond the limit")
		}
		cl.noticeOnce(metrics.LimitChannels, "%s put your connection in more than %d channels, the most this bridge allows; it left %s (and any further ones) again.",
			cl.network.DisplayName(), lim.MaxChannels, channel)
		return false
	case !asked && !cl.forcedJoins.takeToken(lim):
		cl.limited(metrics.LimitChannels)
		cl.noticeOnce("forced_join", "%s joined your connection to %s (and maybe more channels) without your asking, faster than this bridge opens rooms for that; they are not bridged. Use `join %s` to bridge one.",
			cl.network.DisplayName(), channel, channel)
		return false
	}
	return true
}

// tokenBucket allows a burst, then one more every interval (limits.new_dm_burst and
// new_dm_interval).
type tokenBucket struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func (b *tokenBucket) takeToken(lim config.Limits) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if b.last.IsZero() {
		b.tokens = float64(lim.NewDMBurst)
	} else {
		b.tokens = min(b.tokens+float64(now.Sub(b.last))/float64(lim.NewDMInterval), float64(lim.NewDMBurst))
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
