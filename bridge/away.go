package bridge

import (
	"github.com/ergochat/irc-go/ircmsg"
	"maunium.net/go/mautrix/event"

	"github.com/sealbridge/sealbridge/bridge/format"
)

// Other users' away status, where it helps: when the user writes to someone who is away, the
// server answers RPL_AWAY (301), and a notice in that private chat says so, once per away message
// (servers answer every line). With away-notify, someone coming back is forgotten, so their next
// absence shows again. Away lines never make a room: only an existing private chat gets a notice.

// maxAwayShown bounds the away messages remembered per login; beyond it they are all forgotten
// (at worst a notice shows twice).
const maxAwayShown = 1000

// handleAwayReply handles RPL_AWAY: me nick :message (reader goroutine).
func (cl *IRCClient) handleAwayReply(msg *ircmsg.Message) {
	if len(msg.Params) < 3 {
		return
	}
	nick, text := msg.Params[1], msg.Params[2]
	folded := cl.fold(nick)
	cl.mu.Lock()
	if cl.awayShown[folded] == text {
		cl.mu.Unlock()
		return
	}
	if cl.awayShown == nil || len(cl.awayShown) >= maxAwayShown {
		cl.awayShown = make(map[string]string)
	}
	cl.awayShown[folded] = text
	cl.mu.Unlock()
	if !cl.dmPeers.has(folded) {
		return // no private chat with them
	}
	key := cl.dmKey(nick)
	body := nick + " is away: " + format.StripControls(format.StripCodes(text))
	go func() { // the portal lookup is a database query: never on the reader
		ctx := cl.connector.Bridge.BackgroundCtx
		portal, err := cl.connector.Bridge.GetExistingPortalByKey(ctx, key)
		if err != nil || portal == nil || portal.MXID == "" {
			return
		}
		content := &event.MessageEventContent{MsgType: event.MsgNotice, Body: body}
		if _, err = cl.connector.Bridge.Bot.SendMessage(ctx, portal.MXID, event.EventMessage, &event.Content{Parsed: content}, nil); err != nil {
			cl.log.Err(err).Msg("Failed to post an away notice")
		}
	}()
}

// handleAwayNotify handles away-notify's AWAY [:message] from another user.
func (cl *IRCClient) handleAwayNotify(msg *ircmsg.Message) {
	if len(msg.Params) > 0 && msg.Params[0] != "" {
		return // away (again): the notice shows when the user writes to them
	}
	cl.mu.Lock()
	delete(cl.awayShown, cl.fold(msg.Nick()))
	cl.mu.Unlock()
}
