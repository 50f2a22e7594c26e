package bridge

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"

	"github.com/sealbridge/sealbridge/sbdb"
)

// A burst of metadata changes (the JOINs of many channels) is one pending write, not one each;
// a retired client writes nothing more.
func TestSaveLoginCoalesces(t *testing.T) {
	cl := &IRCClient{}
	for i := 0; i < 100; i++ {
		cl.saveLogin()
	}
	cl.saveMu.Lock()
	first := cl.saveTimer
	cl.saveMu.Unlock()
	if first == nil {
		t.Fatal("no write scheduled")
	}
	cl.saveLogin()
	cl.saveMu.Lock()
	same := cl.saveTimer == first
	cl.saveMu.Unlock()
	if !same {
		t.Error("a second write was scheduled while one is pending")
	}
	time.Sleep(loginSaveDelay + 100*time.Millisecond)
	cl.saveMu.Lock()
	done := cl.saveTimer == nil
	cl.saveMu.Unlock()
	if !done {
		t.Error("the pending write did not run")
	}
	cl.saveLogin()
	cl.connector = NewConnector()
	cl.retire()
	cl.saveLogin()
	cl.saveMu.Lock()
	defer cl.saveMu.Unlock()
	if cl.saveTimer != nil {
		t.Error("a retired client still writes its metadata")
	}
}

// Writing the login's metadata never holds the lock the IRC reader needs for every line: with the
// database stuck (another writer holding SQLite's lock), lines are still handled.
func TestSavingTheLoginDoesNotStallTheReader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bridge.db")
	raw, err := dbutil.NewWithDialect("file:"+path+"?_txlock=immediate", "sqlite3-fk-wal")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	cl, _ := newWireClient(t, wireOpts{})
	cl.connector.Bridge.DB = database.New("sealbridge", sbdb.MetaTypes(), raw)
	cl.connector.db = bridgeTables{db: cl.connector.Bridge.DB, bridgeID: "sealbridge"}
	ctx := context.Background()
	must(t, cl.connector.Bridge.DB.Upgrade(ctx))
	must(t, cl.connector.Bridge.DB.User.Insert(ctx, &database.User{BridgeID: "sealbridge", MXID: "@me:example.org"}))
	row := &database.UserLogin{BridgeID: "sealbridge", UserMXID: "@me:example.org", ID: cl.loginID, RemoteName: "me", Metadata: cl.meta}
	must(t, cl.connector.Bridge.DB.UserLogin.Insert(ctx, row))
	cl.login = &bridgev2.UserLogin{UserLogin: row}
	joinedChannel(cl, "#chan", "me", "bob")

	// Another connection takes the database's write lock and keeps it.
	other, err := dbutil.NewWithDialect("file:"+path+"?_txlock=immediate", "sqlite3-fk-wal")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.RawDB.BeginTx(ctx, nil)
	must(t, err)
	_, err = tx.Exec(`UPDATE user_login SET remote_name='held'`)
	must(t, err)
	saved := make(chan struct{})
	go func() { cl.saveLoginNow(); close(saved) }()
	time.Sleep(50 * time.Millisecond) // the save is now waiting for the database
	handled := make(chan struct{})
	go func() {
		incoming(t, cl, ":bob!b@h PRIVMSG #chan :still reading")
		close(handled)
	}()
	select {
	case <-handled:
	case <-time.After(2 * time.Second):
		t.Fatal("a line waited for the login's database write")
	}
	must(t, tx.Rollback())
	<-saved
}
