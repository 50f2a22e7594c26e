package bridge

import (
	"context"
	"fmt"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/sealbridge/sealbridge/config"
	"github.com/sealbridge/sealbridge/sbdb"
)

// opLevel is the Matrix power level of IRC channel operators (+o).
var opLevel = 50

// GetChatInfo describes a portal: a channel (name, topic, members with power levels from their
// prefix modes) or a private chat with one nick.
func (cl *IRCClient) GetChatInfo(ctx context.Context, portal *bridgev2.Portal) (*bridgev2.ChatInfo, error) {
	network, target, ok := ParsePortalID(portal.ID)
	if !ok || network != cl.network.ID {
		return nil, fmt.Errorf("portal %s does not belong to network %s", portal.ID, cl.network.ID)
	}
	if !cl.ircConn.IsChannel(target) {
		return cl.dmChatInfo(target), nil
	}
	info := &bridgev2.ChatInfo{
		Members: &bridgev2.ChatMemberList{
			IsFull: true,
			// Other logins' nicks in a shared channel are their Matrix users, not ghosts.
			CheckAllLogins: true,
			// IRC ops give and take op and voice, so Matrix ops (50) may change power levels; they
			// cannot raise anyone above themselves or touch the encryption event (100). Inviting
			// takes ops too: a +i or +k channel's room must not let any member bring people in.
			PowerLevels: &bridgev2.PowerLevelOverrides{Events: map[event.Type]int{event.StatePowerLevels: 50}, Invite: &opLevel},
			MemberMap:   bridgev2.ChatMemberMap{},
		},
		ExtraUpdates: cl.portalUpdater(target),
	}
	var members []member
	found := cl.withChannel(target, func(ch *channelState) {
		name, topic := ch.Name, ch.Topic
		info.Name, info.Topic = &name, &topic
		for _, m := range ch.Members {
			members = append(members, *m)
		}
		if !ch.others || !ch.complete {
			// Not the whole list (another login leads the channel, or its NAMES is still to
			// come): bridgev2 adds these members and removes nobody.
			info.Members.IsFull, info.Members.CheckAllLogins = false, false
		}
	})
	// cl.sender takes cl.mu, so the members are built outside withChannel.
	for _, m := range members {
		nick, pl := m.Nick, powerLevel(m.Modes)
		info.Members.MemberMap.Set(bridgev2.ChatMember{
			EventSender: cl.sender(nick),
			Membership:  event.MembershipJoin,
			UserInfo:    &bridgev2.UserInfo{Name: &nick},
			PowerLevel:  &pl,
		})
	}
	if !found {
		// Not in the channel on this connection (yet): name it, keep the members bridgev2 has.
		info.Name = &target
		info.Members = nil
	} else if info.Members.IsFull && portal.MXID != "" {
		rows, err := cl.connector.db.portalLogins(ctx, portal.PortalKey)
		if err != nil {
			return nil, fmt.Errorf("listing the logins in the portal: %w", err)
		}
		logins := make([]*bridgev2.UserLogin, 0, len(rows))
		for _, row := range rows {
			if login := cl.connector.Bridge.GetCachedUserLoginByID(row.LoginID); login != nil {
				logins = append(logins, login)
			}
		}
		keepAbsentLogins(info.Members, cl.loginID, logins)
	}
	return info, nil
}

// keepAbsentLogins adds to a channel's full member list every other login of the bridge in the
// portal that the list does not name: one whose connection is not in the channel right now (after
// a restart, not back yet). Its Matrix user's membership is that login's own business (its own
// resync makes it a member, its own PART, KICK or QUIT ends it), but a full list removes everyone
// it does not name: the first login back in a channel would kick every other login's user, and
// those users' own resyncs, finding their channel as they left it, would not bring them back.
// An entry is the login's nick as a member, so that bridgev2 maps it to the login's user and its
// nick's ghost as it does for a listed login (CheckAllLogins), and it expects them joined
// (PrevMembership): bridgev2 changes a membership only from the one an entry expects, and removes
// nobody an entry names, so an entry changes nothing.
func keepAbsentLogins(members *bridgev2.ChatMemberList, self networkid.UserLoginID, logins []*bridgev2.UserLogin) {
	named := make(map[id.UserID]bool, len(logins))
	var absent []*bridgev2.UserLogin
	for _, login := range logins {
		other, isIRC := login.Client.(*IRCClient)
		listed := login.ID == self // as the list's own entry (IsFromMe)
		if !listed && isIRC {
			_, listed = members.MemberMap[other.ownUserID()]
		}
		if listed {
			named[login.UserMXID] = true
		} else {
			absent = append(absent, login)
		}
	}
	for _, login := range absent {
		if named[login.UserMXID] {
			continue // one user with two logins: the listed one decides
		}
		named[login.UserMXID] = true
		entry := bridgev2.ChatMember{
			EventSender:    bridgev2.EventSender{SenderLogin: login.ID},
			Membership:     event.MembershipJoin,
			PrevMembership: event.MembershipJoin,
		}
		key := networkid.UserID("login:" + string(login.ID)) // apart from nicks' IDs ("network/nick")
		if other, ok := login.Client.(*IRCClient); ok {
			entry.Sender = other.ownUserID()
			key = entry.Sender
		}
		members.MemberMap[key] = entry
	}
}

func (cl *IRCClient) dmChatInfo(foldedNick string) *bridgev2.ChatInfo {
	cl.mu.Lock()
	nick := cl.nicks[foldedNick]
	cl.mu.Unlock()
	if nick == "" {
		nick = foldedNick
	}
	me := cl.ircConn.Nick()
	other := MakeUserID(cl.network.ID, foldedNick)
	dm := database.RoomTypeDM
	return &bridgev2.ChatInfo{
		Type: &dm,
		Members: &bridgev2.ChatMemberList{
			IsFull:      true,
			OtherUserID: other,
			MemberMap: bridgev2.ChatMemberMap{}.
				Set(bridgev2.ChatMember{EventSender: cl.sender(me), Membership: event.MembershipJoin, UserInfo: &bridgev2.UserInfo{Name: &me}}).
				Set(bridgev2.ChatMember{EventSender: bridgev2.EventSender{Sender: other}, Membership: event.MembershipJoin, UserInfo: &bridgev2.UserInfo{Name: &nick}}),
		},
		ExtraUpdates: cl.portalUpdater(nick),
	}
}

// GetUserInfo names a ghost after its nick as last seen (ghost IDs hold the casefolded nick).
func (cl *IRCClient) GetUserInfo(ctx context.Context, ghost *bridgev2.Ghost) (*bridgev2.UserInfo, error) {
	network, folded, ok := ParseUserID(ghost.ID)
	if !ok || network != cl.network.ID {
		return nil, fmt.Errorf("ghost %s does not belong to network %s", ghost.ID, cl.network.ID)
	}
	cl.mu.Lock()
	nick := cl.nicks[folded]
	cl.mu.Unlock()
	if nick == "" {
		nick = folded
	}
	isBot := false
	return &bridgev2.UserInfo{Name: &nick, IsBot: &isBot, Identifiers: []string{"irc:" + nick}}, nil
}

// GetCapabilities tells Matrix clients what an IRC room supports: text, notices and emotes with
// formatting, replies, typing; reactions where the server carries client tags, deletion where it
// offers message-redaction, edits as "* corrections" unless edit_style is off; files as links.
func (cl *IRCClient) GetCapabilities(ctx context.Context, portal *bridgev2.Portal) *event.RoomFeatures {
	level := func(ok bool) event.CapabilitySupportLevel {
		if ok {
			return event.CapLevelPartialSupport
		}
		return event.CapLevelRejected
	}
	tags := cl.ircConn.HasCap("message-tags")
	return &event.RoomFeatures{
		ID: fmt.Sprintf("net.sealbridge.irc.capabilities.2026_11_23c.t%v.r%v.e%s",
			tags, cl.ircConn.HasCap("draft/message-redaction"), cl.connector.Config.EditStyle),
		Reaction:            level(tags),
		Delete:              level(cl.ircConn.HasCap("draft/message-redaction")),
		Edit:                level(cl.connector.Config.EditStyle != config.EditOff),
		TypingNotifications: tags,
		Formatting: event.FormattingFeatureMap{
			event.FmtBold:          event.CapLevelFullySupported,
			event.FmtItalic:        event.CapLevelFullySupported,
			event.FmtUnderline:     event.CapLevelFullySupported,
			event.FmtStrikethrough: event.CapLevelFullySupported,
			event.FmtInlineCode:    event.CapLevelFullySupported,
			event.FmtUserLink:      event.CapLevelFullySupported,
		},
		MaxTextLength: 16 * 1024,
		Reply:         event.CapLevelFullySupported,
		// Files pass to the handler, which sends a link where the room allows it (media.go) and
		// otherwise tells the sender why not.
		File: mediaFeatures(),
		// relayed messages are formatted the IRC way by sendToIRC (relay.go), not by bridgev2
		PerMessageProfileRelay: true,
	}
}

// portalUpdater is the ChatInfo.ExtraUpdates of every portal: it remembers how IRC spells the
// portal's target, and for a portal whose room is being created it posts the plaintext notice once
// the room exists.
func (cl *IRCClient) portalUpdater(target string) bridgev2.ExtraUpdater[*bridgev2.Portal] {
	return func(ctx context.Context, p *bridgev2.Portal) bool {
		meta, ok := p.Metadata.(*sbdb.PortalMetadata)
		if !ok {
			return false
		}
		changed := meta.Target != target
		meta.Target = target
		if p.MXID == "" && !meta.NoticeSent && cl.connector.Config.PlaintextNotice != "" && cl.login != nil {
			meta.NoticeSent = true
			changed = true
			go cl.connector.postPlaintextNotice(p, cl.login.UserMXID)
		}
		return changed
	}
}

// mediaFeatures: any file, image, video or voice message, with a caption, as a link.
func mediaFeatures() event.FileFeatureMap {
	link := &event.FileFeatures{
		MimeTypes: map[string]event.CapabilitySupportLevel{"*/*": event.CapLevelPartialSupport},
		Caption:   event.CapLevelPartialSupport,
	}
	features := event.FileFeatureMap{event.CapMsgVoice: link}
	for _, t := range []event.MessageType{event.MsgImage, event.MsgVideo, event.MsgAudio, event.MsgFile} {
		features[event.CapabilityMsgType(t)] = link
	}
	return features
}
