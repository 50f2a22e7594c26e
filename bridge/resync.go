package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"time"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/simplevent"

	"github.com/rs/zerolog"

	"github.com/sealbridge/sealbridge/sbdb"
)

// The resync after a channel's NAMES (every join, so every reconnect and every start) makes
// bridgev2 load the portal and compare its room with the channel: members, their power levels,
// name and topic. That comparison reads every login in the portal with its metadata from the
// database, and after a restart, for thousands of channels that are as they were, it is most of
// what a start waits for. So each portal remembers, per login, a digest of what that login last
// synced; a resync that finds the same digest hands bridgev2 no chat info (the portal is still
// loaded and live) unless the last full sync is older than fullResyncInterval. A new login, a new
// room or any change syncs in full; in a channel that several logins share, in full means the
// whole member list for the channel's lead only, and the login's own membership for the others.

// fullResyncInterval is how often a channel is synced in full even when nothing seems to change
// (a room changed on the Matrix side meanwhile is put right then).
const fullResyncInterval = 24 * time.Hour

// namesResync is the resync queued at the end of a channel's NAMES.
type namesResync struct {
	simplevent.ChatResync
	cl     *IRCClient
	digest string // of the chat info handed to bridgev2, recorded once it handled it
}

var (
	_ bridgev2.RemoteChatResyncWithInfo = (*namesResync)(nil)
	_ bridgev2.RemotePostHandler        = (*namesResync)(nil)
)

func (cl *IRCClient) newNamesResync(channel string) *namesResync {
	r := &namesResync{cl: cl}
	r.ChatResync = simplevent.ChatResync{
		EventMeta: simplevent.EventMeta{
			Type:         bridgev2.RemoteEventChatResync,
			PortalKey:    cl.channelKey(channel),
			CreatePortal: true,
			LogContext:   cl.logContext("names"),
		},
	}
	return r
}

// GetChatInfo is the channel's chat info, or nil when the room already shows it.
func (r *namesResync) GetChatInfo(ctx context.Context, portal *bridgev2.Portal) (*bridgev2.ChatInfo, error) {
	info, err := r.cl.GetChatInfo(ctx, portal)
	if err != nil || info == nil || info.Members == nil {
		return info, err
	}
	meta, ok := portal.Metadata.(*sbdb.PortalMetadata)
	if !ok || portal.MXID == "" || meta.Target == "" {
		r.digest = chatInfoDigest(info)
		return info, nil // a new room, created with this info (recorded once it exists)
	}
	if _, channel, _ := ParsePortalID(portal.ID); !r.cl.connector.shared.leads(r.cl, channel) {
		ownMembershipOnly(info)
	}
	r.digest = chatInfoDigest(info)
	last, ok := meta.Synced[string(r.cl.loginID)]
	if ok && last.Digest == r.digest && time.Since(time.Unix(last.At, 0)) < fullResyncInterval {
		r.digest = "" // nothing to record
		return nil, nil
	}
	return info, nil
}

// ownMembershipOnly narrows a channel's chat info to the login's own member entry. In a channel
// that several logins of the bridge share, the lead passes every member change on and syncs the
// whole member list; another login only makes sure of its own user's membership and power level.
// Otherwise every login would compare the room's members with the channel's after every
// reconnect, each loading all the other logins in the portal: at a restart, the same work once
// per login in the channel.
func ownMembershipOnly(info *bridgev2.ChatInfo) {
	for id, m := range info.Members.MemberMap {
		if !m.IsFromMe {
			delete(info.Members.MemberMap, id)
		}
	}
	info.Members.IsFull = false
	info.Members.CheckAllLogins = false
}

// PostHandle records what was synced, once bridgev2 has handled the resync (in the portal's
// event loop, which owns its metadata). Entries of logins that have not synced for two intervals
// are dropped, so the map holds the logins in the channel.
func (r *namesResync) PostHandle(ctx context.Context, portal *bridgev2.Portal) {
	meta, ok := portal.Metadata.(*sbdb.PortalMetadata)
	if r.digest == "" || portal.MXID == "" || !ok {
		return
	}
	now := time.Now()
	if meta.Synced == nil {
		meta.Synced = make(map[string]sbdb.SyncState)
	}
	for login, st := range meta.Synced {
		if now.Sub(time.Unix(st.At, 0)) > 2*fullResyncInterval {
			delete(meta.Synced, login)
		}
	}
	meta.Synced[string(r.cl.loginID)] = sbdb.SyncState{Digest: r.digest, At: now.Unix()}
	if err := portal.Save(ctx); err != nil {
		zerolog.Ctx(ctx).Err(err).Msg("Failed to save the portal's sync state")
	}
}

// chatInfoDigest is a digest of what a resync sets: the name, the topic, and every member with
// its power level (not who is "me": the digest is the login's own).
func chatInfoDigest(info *bridgev2.ChatInfo) string {
	h := sha256.New()
	write := func(s string) {
		h.Write([]byte(strconv.Itoa(len(s))))
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	if info.Name != nil {
		write(*info.Name)
	}
	write("\x00topic")
	if info.Topic != nil {
		write(*info.Topic)
	}
	ids := make([]string, 0, len(info.Members.MemberMap))
	for id := range info.Members.MemberMap {
		ids = append(ids, string(id))
	}
	slices.Sort(ids)
	for _, id := range ids {
		m := info.Members.MemberMap[networkid.UserID(id)]
		write(id)
		pl := 0
		if m.PowerLevel != nil {
			pl = *m.PowerLevel
		}
		write(strconv.Itoa(pl))
		write(string(m.Membership))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
