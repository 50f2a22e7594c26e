package bridge

import (
	"context"
	"time"

	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"
)

// bridgeDB is what the connector itself reads and writes in bridgev2's database, beside what
// bridgev2 does for it: one method per need. Init sets bridgev2's (bridgeTables); the unit tests
// give theirs.
type bridgeDB interface {
	// lastMessage is the newest message bridged into a portal, nil when there is none (history).
	lastMessage(ctx context.Context, key networkid.PortalKey) (*database.Message, error)
	// sentMessage tells whether bridgev2 stored a message as sent to Matrix (the outbox).
	sentMessage(ctx context.Context, receiver networkid.UserLoginID, id networkid.MessageID) (bool, error)
	// loginPortals are the portals an event of the login was queued to (its private chats).
	loginPortals(ctx context.Context, login *database.UserLogin) ([]*database.UserPortal, error)
	// portalLogins are the logins whose events were queued to a portal, without the logins' rows
	// (bridgev2 keeps every login loaded).
	portalLogins(ctx context.Context, key networkid.PortalKey) ([]*database.UserPortal, error)
	// saveLogin writes a login's row.
	saveLogin(ctx context.Context, row *database.UserLogin) error
	// deleteExpiredMedia deletes the public-media rows of this bridge that expired before now.
	deleteExpiredMedia(ctx context.Context, now time.Time) (int64, error)
	// savesPending tells whether a message sent with echo-message can be saved when its echo
	// comes back, under the echo's msgid (bridgev2 saves it in its message table).
	savesPending() bool
}

// bridgeTables is bridgev2's database.
type bridgeTables struct {
	db       *database.Database
	bridgeID networkid.BridgeID
}

var _ bridgeDB = bridgeTables{}

func (t bridgeTables) lastMessage(ctx context.Context, key networkid.PortalKey) (*database.Message, error) {
	return t.db.Message.GetLastPartAtOrBeforeTime(ctx, key, time.Now().Add(time.Hour))
}

func (t bridgeTables) sentMessage(ctx context.Context, receiver networkid.UserLoginID, id networkid.MessageID) (bool, error) {
	msg, err := t.db.Message.GetFirstPartByID(ctx, receiver, id)
	return msg != nil, err
}

func (t bridgeTables) loginPortals(ctx context.Context, login *database.UserLogin) ([]*database.UserPortal, error) {
	return t.db.UserPortal.GetAllForLogin(ctx, login)
}

func (t bridgeTables) portalLogins(ctx context.Context, key networkid.PortalKey) ([]*database.UserPortal, error) {
	return t.db.UserPortal.GetAllInPortal(ctx, key)
}

func (t bridgeTables) saveLogin(ctx context.Context, row *database.UserLogin) error {
	return t.db.UserLogin.Update(ctx, row)
}

func (t bridgeTables) deleteExpiredMedia(ctx context.Context, now time.Time) (int64, error) {
	res, err := t.db.Exec(ctx, `DELETE FROM public_media WHERE bridge_id=$1 AND expiry IS NOT NULL AND expiry<$2`,
		t.bridgeID, now.UnixNano())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (bridgeTables) savesPending() bool { return true }
