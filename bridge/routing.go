package bridge

import (
	"github.com/ergochat/irc-go/ircmsg"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
)

// Where an IRC line goes: its portal, its sender and the channel state it touches. Every handler
// on the IRC side uses these; events then pass admission (admit.go) on their way to bridgev2.

// param is msg's i-th parameter, or "" when it has fewer.
func param(msg *ircmsg.Message, i int) string {
	if i < len(msg.Params) {
		return msg.Params[i]
	}
	return ""
}

// fold casefolds s by the server's CASEMAPPING.
func (cl *IRCClient) fold(s string) string { return cl.ircConn.Casefold(s) }

// isMe tells whether nick is the login's own current nick.
func (cl *IRCClient) isMe(nick string) bool { return cl.fold(nick) == cl.fold(cl.ircConn.Nick()) }

// sender is the bridgev2 sender for an IRC nick; our own nick is IsFromMe.
func (cl *IRCClient) sender(nick string) bridgev2.EventSender {
	folded := cl.fold(nick)
	cl.mu.Lock()
	cl.rememberNick(folded, nick)
	cl.mu.Unlock()
	s := bridgev2.EventSender{Sender: MakeUserID(cl.network.ID, folded)}
	if cl.isMe(nick) {
		s.IsFromMe = true
		s.SenderLogin = cl.loginID
	}
	return s
}

// channelKey is a channel's portal, shared by every login in it.
func (cl *IRCClient) channelKey(channel string) networkid.PortalKey {
	return MakeChannelPortalKey(cl.network.ID, cl.fold(channel))
}

// dmKey is the portal of this login's private chat with nick.
func (cl *IRCClient) dmKey(nick string) networkid.PortalKey {
	return MakeDMPortalKey(cl.network.ID, cl.fold(nick), cl.loginID)
}

// withChannel runs fn on the state of a channel the login is in, with cl.mu held, and tells
// whether it is in it.
func (cl *IRCClient) withChannel(name string, fn func(ch *channelState)) bool {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	ch := cl.channels[cl.fold(name)]
	if ch != nil {
		fn(ch)
	}
	return ch != nil
}

// logContext tags bridgev2's log lines for an event with the IRC event kind.
func (cl *IRCClient) logContext(kind string) func(c zerolog.Context) zerolog.Context {
	return func(c zerolog.Context) zerolog.Context { return c.Str("irc_event", kind) }
}
