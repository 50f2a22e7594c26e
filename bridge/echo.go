package bridge

import (
	"context"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"maunium.net/go/mautrix/id"
)

// Echo tracking. With echo-message the server sends every line we write back to us; those echoes
// are how a Matrix message learns its IRC msgid and how lines from the user's other clients are
// told apart from the bridge's own, so each line the bridge writes is remembered here until its
// echo arrives (or the connection ends: client.go clears them).

// rememberEcho notes a line we sent so that its echo (echo-message) is not bridged back. eventID,
// for the first line of a Matrix message, is the event whose IRC msgid the echo will tell.
func (cl *IRCClient) rememberEcho(target, line string, eventID id.EventID) {
	if !cl.ircConn.HasCap("echo-message") {
		return
	}
	folded := cl.fold(target)
	cl.mu.Lock()
	cl.echoes[folded] = append(cl.echoes[folded], line)
	if cl.echoEvents == nil {
		cl.echoEvents = make(map[string][]id.EventID)
	}
	key := folded + "\x00" + line
	cl.echoEvents[key] = append(cl.echoEvents[key], eventID)
	cl.mu.Unlock()
}

func (cl *IRCClient) forgetEcho(target, line string) {
	folded := cl.fold(target)
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.popEchoEvent(folded, line, true)
	q := cl.echoes[folded]
	for i := len(q) - 1; i >= 0; i-- {
		if q[i] == line {
			cl.echoes[folded] = append(q[:i:i], q[i+1:]...)
			return
		}
	}
}

// takeEcho reports whether msg is the echo of a line we sent from Matrix, consuming it, and the
// Matrix event it started, if any.
func (cl *IRCClient) takeEcho(target string, msg *ircmsg.Message) (bool, id.EventID) {
	folded := cl.fold(target)
	line := msg.Params[1]
	cl.mu.Lock()
	defer cl.mu.Unlock()
	q := cl.echoes[folded]
	for i, sent := range q {
		if sent == line {
			cl.echoes[folded] = append(q[:i:i], q[i+1:]...)
			return true, cl.popEchoEvent(folded, line, false)
		}
	}
	return false, ""
}

// popEchoEvent takes the oldest (or, for a send that failed, newest) event ID noted for a line.
// Call it with cl.mu held.
func (cl *IRCClient) popEchoEvent(folded, line string, newest bool) id.EventID {
	key := folded + "\x00" + line
	q := cl.echoEvents[key]
	if len(q) == 0 {
		return ""
	}
	var evt id.EventID
	if newest {
		evt, q = q[len(q)-1], q[:len(q)-1]
	} else {
		evt, q = q[0], q[1:]
	}
	if len(q) == 0 {
		delete(cl.echoEvents, key)
	} else {
		cl.echoEvents[key] = q
	}
	return evt
}

// queueEchoOf hands bridgev2 the echo of the first line of a message sent from Matrix, as the
// remote echo of its pending message (sendToIRC): bridgev2 then saves the message under the echo's
// msgid, in the portal's event order, so that replies, reactions and redactions that follow can
// name it on IRC. The echo is never bridged as a message of its own.
func (cl *IRCClient) queueEchoOf(eventID id.EventID, key networkid.PortalKey, msg *ircmsg.Message, at time.Time) {
	_, msgid := msg.GetTag("msgid")
	nick, text := msg.Nick(), msg.Params[1]
	cl.queue(&simplevent.Message[*ircMessage]{
		EventMeta: simplevent.EventMeta{
			Type:       bridgev2.RemoteEventMessage,
			PortalKey:  key,
			Sender:     cl.sender(nick),
			Timestamp:  at,
			LogContext: cl.logContext("echo"),
		},
		ID:            MakeMessageID(cl.connector.idKey, cl.network.ID, string(key.ID), cl.fold(nick), msgid, at, text),
		TransactionID: networkid.TransactionID(eventID),
		ConvertMessageFunc: func(context.Context, *bridgev2.Portal, bridgev2.MatrixAPI, *ircMessage) (*bridgev2.ConvertedMessage, error) {
			return nil, bridgev2.ErrIgnoringRemoteEvent // not pending (any more): it is ours, drop it
		},
	})
}
