package bridge

import (
	"context"
	"fmt"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2"
)

// ResolveIdentifier turns a nick into its ghost and, when asked, the login's private chat with it.
// This backs bridgev2's `start-chat` / `pm` command and the provisioning API.
func (cl *IRCClient) ResolveIdentifier(ctx context.Context, identifier string, createChat bool) (*bridgev2.ResolveIdentifierResponse, error) {
	nick, err := validateNick(identifier)
	if err != nil {
		return nil, bridgev2.WrapRespErr(err, mautrix.MInvalidParam)
	}
	if cl.ircConn.IsChannel(nick) {
		return nil, bridgev2.WrapRespErr(fmt.Errorf("%s is a channel; use `join %s`", nick, nick), mautrix.MInvalidParam)
	}
	folded := cl.fold(nick)
	cl.mu.Lock()
	if cl.nicks[folded] == "" {
		cl.rememberNick(folded, nick)
	}
	cl.mu.Unlock()
	userID := MakeUserID(cl.network.ID, folded)
	ghost, err := cl.connector.Bridge.GetGhostByID(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("failed to get ghost: %w", err)
	}
	resp := &bridgev2.ResolveIdentifierResponse{
		Ghost:    ghost,
		UserID:   userID,
		UserInfo: &bridgev2.UserInfo{Name: &nick},
	}
	if createChat {
		resp.Chat = &bridgev2.CreateChatResponse{
			PortalKey:  cl.dmKey(nick),
			PortalInfo: cl.dmChatInfo(folded),
		}
		cl.openedDM(folded)
	}
	return resp, nil
}

// CreateChatWithGhost opens the login's private chat with a ghost (e.g. from a Matrix client's
// "start DM" with a ghost user).
func (cl *IRCClient) CreateChatWithGhost(ctx context.Context, ghost *bridgev2.Ghost) (*bridgev2.CreateChatResponse, error) {
	network, folded, ok := ParseUserID(ghost.ID)
	if !ok || network != cl.network.ID {
		return nil, fmt.Errorf("%s is not a user on %s", ghost.ID, cl.network.DisplayName())
	}
	cl.openedDM(folded)
	return &bridgev2.CreateChatResponse{
		PortalKey:  MakeDMPortalKey(cl.network.ID, folded, cl.loginID),
		PortalInfo: cl.dmChatInfo(folded),
	}, nil
}
