package bridge

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/sealbridge/sealbridge/sbdb"
)

// noBridgeDB is the bridge database of the unit tests that need none: nothing was bridged before,
// every message counts as sent to Matrix, nothing is saved when its echo comes back.
type noBridgeDB struct{}

var _ bridgeDB = noBridgeDB{}

var errNoBridgeDB = errors.New("this test has no bridge database")

func (noBridgeDB) lastMessage(context.Context, networkid.PortalKey) (*database.Message, error) {
	return nil, errNoBridgeDB
}

func (noBridgeDB) sentMessage(context.Context, networkid.UserLoginID, networkid.MessageID) (bool, error) {
	return true, nil
}

func (noBridgeDB) loginPortals(context.Context, *database.UserLogin) ([]*database.UserPortal, error) {
	return nil, nil
}

func (noBridgeDB) portalLogins(context.Context, networkid.PortalKey) ([]*database.UserPortal, error) {
	return nil, nil
}

func (noBridgeDB) saveLogin(context.Context, *database.UserLogin) error { return nil }

func (noBridgeDB) deleteExpiredMedia(context.Context, time.Time) (int64, error) { return 0, nil }

func (noBridgeDB) savesPending() bool { return false }

// withBridgeDB gives c bridgev2's database on a fresh SQLite file, as Init does.
func withBridgeDB(t *testing.T, c *IRCConnector) *database.Database {
	t.Helper()
	raw, err := dbutil.NewWithDialect("file:"+filepath.Join(t.TempDir(), "bridge.db")+"?_txlock=immediate", "sqlite3-fk-wal")
	must(t, err)
	t.Cleanup(func() { _ = raw.Close() })
	db := database.New("sealbridge", sbdb.MetaTypes(), raw)
	must(t, db.Upgrade(context.Background()))
	if c.Bridge == nil {
		c.Bridge = &bridgev2.Bridge{}
	}
	c.Bridge.ID, c.Bridge.DB = "sealbridge", db
	c.db = bridgeTables{db: db, bridgeID: "sealbridge"}
	return db
}
