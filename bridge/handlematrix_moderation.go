package bridge

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/simplevent"
	"maunium.net/go/mautrix/event"

	"github.com/sealbridge/sealbridge/bridge/format"
	"github.com/sealbridge/sealbridge/bridge/irc"
	"github.com/sealbridge/sealbridge/config"
)

var (
	_ bridgev2.MembershipHandlingNetworkAPI = (*IRCClient)(nil)
	_ bridgev2.PowerLevelHandlingNetworkAPI = (*IRCClient)(nil)
	_ bridgev2.RoomTopicHandlingNetworkAPI  = (*IRCClient)(nil)
)

// maxReasonBytes keeps a kick reason well inside one line (KICKLEN is usually 255 or more).
const maxReasonBytes = 255

// HandleMatrixMembership carries a Matrix moderation action to IRC over the acting user's own
// connection, so the IRC server checks that user's own channel privileges:
//
//   - kick of a ghost (or of another user's nick)   -> KICK #chan nick :reason
//   - ban                                            -> MODE #chan +b nick!*@*, then KICK if on the channel
//   - unban                                          -> MODE #chan -b nick!*@*
//   - invite of a ghost                              -> INVITE nick #chan
//   - the user leaving the room (bridge_matrix_leave) -> PART #chan
//
// When the server refuses (not an op, say), the user is told why and the portal is resynced from
// IRC, which undoes the Matrix side.
func (cl *IRCClient) HandleMatrixMembership(ctx context.Context, msg *bridgev2.MatrixMembershipChange) (*bridgev2.MatrixMembershipResult, error) {
	if msg.Target == nil {
		return nil, nil // a Matrix user with no IRC nick: nothing to do on IRC
	}
	if msg.OrigSender != nil {
		if msg.Type.IsSelf {
			return nil, nil // a relayed member's own leave: nothing to do on IRC
		}
		if err := cl.relayMay(ctx, msg.Portal, msg.OrigSender, membershipAction(msg.Content.Membership)); err != nil {
			return nil, err
		}
	}
	channel, err := cl.channelTarget(msg.Portal)
	if errors.Is(err, errChannelOnly) && (msg.Type.IsSelf || msg.Type == bridgev2.Leave) {
		return nil, nil // joining or leaving a private chat (the user's own): nothing to do on IRC
	} else if err != nil {
		return nil, err
	}
	if !cl.ircConn.Connected() {
		return nil, errNotConnected
	}
	nick, err := cl.targetNick(msg.Target)
	if err != nil {
		return nil, err
	}
	reason := format.OneLine(msg.Content.Reason, min(maxReasonBytes, cl.ircConn.MaxTextBytes("KICK", channel+" "+nick)))
	mask := nick + "!*@*"
	_, onChannel := cl.memberOf(channel, nick)
	// The change is told by the new membership and what IRC knows, not by the previous membership:
	// some homeservers (Dendrite) leave unsigned.prev_content out of appservice transactions.
	switch to := msg.Content.Membership; {
	case to == event.MembershipLeave && msg.Type.IsSelf:
		if cl.isMe(nick) {
			err = cl.ircConn.Send("PART", channel, reason)
		}
	case to == event.MembershipLeave && onChannel:
		err = cl.ircConn.Send("KICK", channel, nick, reason)
	case to == event.MembershipLeave && msg.Type.From != event.MembershipInvite:
		// an unban (or a leave of someone not on the channel, for which -b changes nothing)
		err = cl.ircConn.Send("MODE", channel, "-b", mask)
	case to == event.MembershipBan:
		if err = cl.ircConn.Send("MODE", channel, "+b", mask); err == nil && onChannel {
			err = cl.ircConn.Send("KICK", channel, nick, reason)
		}
	case to == event.MembershipInvite:
		err = cl.ircConn.Send("INVITE", nick, channel)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to send to IRC: %w", err)
	}
	return nil, nil
}

// HandleMatrixPowerLevels turns power level changes of ghosts and logged-in users into IRC prefix
// modes: 50 and up is op (+o), 25 halfop (+h, where the server has it), 10 voice (+v). Owner and
// admin modes are never granted from Matrix. Modes are packed MODES to a line.
func (cl *IRCClient) HandleMatrixPowerLevels(ctx context.Context, msg *bridgev2.MatrixPowerLevelChange) (bool, error) {
	channel, err := cl.channelTarget(msg.Portal)
	if err != nil {
		return false, err
	}
	if msg.OrigSender != nil {
		if err = cl.relayMay(ctx, msg.Portal, msg.OrigSender, config.RelayActionPowerLevels); err != nil {
			return false, err
		}
	}
	if !cl.ircConn.Connected() {
		return false, errNotConnected
	}
	is := cl.ircConn.ISupport()
	var changes []modeChange
	for _, change := range msg.Users {
		if change.Target == nil {
			continue // a Matrix user without an IRC nick here
		}
		nick, err := cl.targetNick(change.Target)
		if err != nil {
			continue
		}
		current, _ := cl.memberOf(channel, nick)
		changes = append(changes, modesFor(nick, current.Modes, change.NewLevel, is.PrefixModes)...)
	}
	for _, line := range packModes(changes, modesPerLine(is)) {
		if err = cl.ircConn.Send("MODE", append([]string{channel}, line...)...); err != nil {
			return false, fmt.Errorf("failed to send to IRC: %w", err)
		}
	}
	return true, nil
}

// HandleMatrixRoomTopic sets the channel topic on IRC, as one line within TOPICLEN.
func (cl *IRCClient) HandleMatrixRoomTopic(ctx context.Context, msg *bridgev2.MatrixRoomTopic) (bool, error) {
	channel, err := cl.channelTarget(msg.Portal)
	if err != nil {
		return false, err
	}
	if msg.OrigSender != nil && !cl.connector.Config.RelayAllows(config.RelayActionTopic) {
		// The room shows the refused topic now; bridgev2 must know, or the resync that follows
		// would see IRC's topic as unchanged and leave the room as it is.
		msg.Portal.Topic, msg.Portal.TopicSet = msg.Content.Topic, true
		return false, cl.relayMay(ctx, msg.Portal, msg.OrigSender, config.RelayActionTopic)
	}
	if !cl.ircConn.Connected() {
		return false, errNotConnected
	}
	// Cut to TOPICLEN, and never past what fits in the line when the server does not say.
	limit := cl.ircConn.MaxTextBytes("TOPIC", channel)
	topicLen, _ := cl.ircConn.ISupportValue("TOPICLEN")
	if n, _ := strconv.Atoi(topicLen); n > 0 && n < limit {
		limit = n
	}
	topic := format.OneLine(msg.Content.Topic, limit)
	cl.mu.Lock()
	if cl.pendingTopics == nil {
		cl.pendingTopics = make(map[string]*pendingTopic)
	}
	cl.pendingTopics[cl.fold(channel)] = &pendingTopic{text: topic}
	cl.mu.Unlock()
	if err = cl.ircConn.Send("TOPIC", channel, topic); err != nil {
		return false, fmt.Errorf("failed to send to IRC: %w", err)
	}
	zerolog.Ctx(ctx).Debug().Str("channel", channel).Msg("Sent the Matrix topic to IRC")
	msg.Portal.Topic, msg.Portal.TopicSet = topic, true
	return true, nil
}

// membershipAction names a membership change for network.relay_actions.
func membershipAction(to event.Membership) string {
	switch to {
	case event.MembershipInvite:
		return config.RelayActionInvite
	case event.MembershipBan:
		return config.RelayActionBan
	}
	return config.RelayActionKick // a leave of someone else: a kick, or an unban
}

// relayMay refuses an action of a room member without a login (relayed through this login's
// connection) unless the admin allowed the relay to take it (network.relay_actions): the relay's
// IRC user would act with its own channel privileges for anyone in the room. The room is told
// why, and put back as IRC has it.
func (cl *IRCClient) relayMay(ctx context.Context, portal *bridgev2.Portal, o *bridgev2.OrigSender, action string) error {
	if cl.connector.Config.RelayAllows(action) {
		return nil
	}
	err := failure(fmt.Sprintf("%s has no IRC login of their own here, and the relay does not %s for others (only messages are relayed)", relayName(o), relayVerb[action]))
	if portal != nil && portal.MXID != "" {
		content := &event.MessageEventContent{MsgType: event.MsgNotice, Body: "\u26a0\ufe0f Not done on IRC: " + err.Error()}
		if _, sendErr := cl.connector.Bridge.Bot.SendMessage(ctx, portal.MXID, event.EventMessage, &event.Content{Parsed: content}, nil); sendErr != nil {
			zerolog.Ctx(ctx).Err(sendErr).Msg("Failed to post a relay refusal")
		}
	}
	if channel, cerr := cl.channelTarget(portal); cerr == nil {
		cl.resyncChannel(channel)
	}
	return err
}

var relayVerb = map[string]string{
	config.RelayActionInvite:      "invite",
	config.RelayActionKick:        "kick or unban",
	config.RelayActionBan:         "ban",
	config.RelayActionPowerLevels: "change power levels",
	config.RelayActionTopic:       "change the topic",
}

// channelTarget is the channel of a channel portal, as the server spells it.
func (cl *IRCClient) channelTarget(portal *bridgev2.Portal) (string, error) {
	target, err := cl.portalTarget(portal)
	if err != nil {
		return "", err
	}
	if !cl.ircConn.IsChannel(target) {
		return "", errChannelOnly
	}
	return target, nil
}

// targetNick is the IRC nick of a ghost on this network, or the current nick of a login.
func (cl *IRCClient) targetNick(target bridgev2.GhostOrUserLogin) (string, error) {
	switch t := target.(type) {
	case *bridgev2.Ghost:
		network, folded, ok := ParseUserID(t.ID)
		if !ok || network != cl.network.ID {
			return "", fmt.Errorf("%s is not on %s", t.ID, cl.network.DisplayName())
		}
		cl.mu.Lock()
		defer cl.mu.Unlock()
		if nick := cl.nicks[folded]; nick != "" {
			return nick, nil
		}
		return folded, nil
	case *bridgev2.UserLogin:
		other, ok := t.Client.(*IRCClient)
		if !ok || other.network.ID != cl.network.ID {
			return "", fmt.Errorf("that user is not on %s", cl.network.DisplayName())
		}
		return other.ircConn.Nick(), nil
	}
	return "", errors.New("that user is not on IRC")
}

// resyncChannel rebuilds a channel portal from what IRC says (members, power levels, topic): after
// the server refused a change made in Matrix, this puts the room back as IRC has it.
func (cl *IRCClient) resyncChannel(channel string) {
	cl.queue(&simplevent.ChatResync{
		EventMeta: simplevent.EventMeta{
			Type:       bridgev2.RemoteEventChatResync,
			PortalKey:  cl.channelKey(channel),
			LogContext: cl.logContext("resync"),
		},
		GetChatInfoFunc: cl.GetChatInfo,
	})
}

// modeChange is one prefix mode to send: "+o" and a nick.
type modeChange struct{ mode, nick string }

// modesFor returns the prefix mode changes that bring nick from its current modes to a Matrix power
// level: 50 and up is op, 25 halfop (voice where the server has no halfop), 10 voice. Lower modes
// the nick already has are kept when it goes up, higher ones removed when it goes down. Owner and
// admin modes are never touched.
func modesFor(nick, current string, level int, prefixModes string) []modeChange {
	has := func(m byte) bool { return strings.IndexByte(current, m) >= 0 }
	supported := func(m byte) bool { return strings.IndexByte(prefixModes, m) >= 0 }
	rank := map[byte]int{'v': 1, 'h': 2, 'o': 3}
	var target byte
	switch {
	case level >= 50:
		target = 'o'
	case level >= 25 && supported('h'):
		target = 'h'
	case level >= 10:
		target = 'v'
	}
	var out []modeChange
	for _, m := range []byte{'o', 'h', 'v'} {
		if !supported(m) {
			continue
		}
		want := m == target || (has(m) && rank[m] < rank[target])
		switch {
		case want && !has(m):
			out = append(out, modeChange{"+" + string(m), nick})
		case !want && has(m):
			out = append(out, modeChange{"-" + string(m), nick})
		}
	}
	return out
}

// modesPerLine is ISUPPORT MODES (3 when absent or unparsable, the RFC 1459 figure).
func modesPerLine(is irc.ISupport) int {
	if n, err := strconv.Atoi(is.Raw["MODES"]); err == nil && n > 0 {
		return n
	}
	return 3
}

// packModes groups mode changes into MODE parameters, at most n changes per line:
// ["+o-v", "alice", "bob"].
func packModes(changes []modeChange, n int) [][]string {
	var out [][]string
	for len(changes) > 0 {
		k := min(n, len(changes))
		var modes strings.Builder
		params := []string{""}
		sign := byte(0)
		for _, c := range changes[:k] {
			if c.mode[0] != sign {
				sign = c.mode[0]
				modes.WriteByte(sign)
			}
			modes.WriteString(c.mode[1:])
			params = append(params, c.nick)
		}
		params[0] = modes.String()
		out = append(out, params)
		changes = changes[k:]
	}
	return out
}
