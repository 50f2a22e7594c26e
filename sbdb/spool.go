package sbdb

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
	"time"

	"go.mau.fi/util/dbutil"
)

// Spool is the table of what the bridge has taken responsibility for but not yet delivered, in
// both directions, so that a kill -9 loses none of it:
//
//   - SpoolMatrix: Matrix events the homeserver handed over in an appservice transaction. A row is
//     written before the transaction is acknowledged and deleted once the event's lines are on
//     the IRC socket (or it failed with an error its sender saw).
//   - SpoolIRC: IRC messages read from a login's connection. A row is written before the message
//     goes to bridgev2 and deleted once bridgev2 has handled it.
//
// What is left at the next start is handled again; both directions drop what was already
// delivered by its ID.
type Spool struct {
	db *dbutil.Database
}

// The kinds of spooled items.
const (
	SpoolMatrix = "matrix" // Owner: room ID; ID: event ID; Data: the event's JSON
	SpoolIRC    = "irc"    // Owner: login ID; ID: message ID; Data: the bridge's JSON of the message
	// SpoolRequest is a private message from someone the user has no chat with, held until the
	// user opens one (a message request); same Owner, ID and Data as SpoolIRC.
	SpoolRequest = "request"
)

// SpoolItem is one undelivered item.
type SpoolItem struct {
	Kind     string
	Owner    string
	ID       string
	Seq      int64 // arrival order, see SpoolSeq
	Data     []byte
	Attempts int // how many starts have handled it again
}

var spoolUpgrades = dbutil.BuildUpgradeTable().
	WithRaw(0, 1, 0, "Spool of undelivered Matrix events and IRC messages", dbutil.TxnModeOn, func(ctx context.Context, db *dbutil.Database) error {
		if _, err := db.Exec(ctx, `CREATE TABLE sealbridge_spool (
			kind     TEXT NOT NULL,
			owner    TEXT NOT NULL,
			item_id  TEXT NOT NULL,
			seq      BIGINT NOT NULL,
			data     TEXT NOT NULL,
			attempts INTEGER NOT NULL DEFAULT 0,
			PRIMARY KEY (kind, item_id)
		)`); err != nil {
			return err
		}
		_, err := db.Exec(ctx, `CREATE INDEX sealbridge_spool_owner_idx ON sealbridge_spool (kind, owner, seq)`)
		return err
	}).
	WithRaw(1, 2, 1, "Index bridgev2's logins by user", dbutil.TxnModeOn, func(ctx context.Context, db *dbutil.Database) error {
		// bridgev2 reads each user's logins at start (user_login by bridge_id and user_mxid), and
		// its schema has no index for that: a full scan of the table per user, so a start costs
		// the square of the users (35 s of CPU for 10,000). The index is ours to add and harmless
		// if bridgev2 adds its own.
		if exists, err := db.TableExists(ctx, "user_login"); err != nil || !exists {
			return err // no bridgev2 tables (the spool's own tests)
		}
		_, err := db.Exec(ctx, `CREATE INDEX IF NOT EXISTS sealbridge_user_login_user_idx ON user_login (bridge_id, user_mxid)`)
		return err
	}).Finish()

// NewSpool uses db (bridgev2's database) with its own version table, so its migrations never mix
// with bridgev2's.
func NewSpool(db *dbutil.Database) *Spool {
	return &Spool{db: db.Child("sealbridge_version", spoolUpgrades, nil)}
}

// Upgrade creates or migrates the spool table.
func (sp *Spool) Upgrade(ctx context.Context) error {
	if err := sp.db.Upgrade(ctx); err != nil {
		return fmt.Errorf("failed to upgrade the sealbridge tables: %w", err)
	}
	return nil
}

// Put stores items in one statement per spoolRows items. An item already stored (the homeserver
// resending a transaction the bridge stored but did not acknowledge before a crash) is left as it
// was. No items, no transaction: every appservice transaction comes here, most of them with only
// the bridge's own events, and an empty write transaction still takes the write lock and commits.
func (sp *Spool) Put(ctx context.Context, items []SpoolItem) error {
	if len(items) == 0 {
		return nil
	}
	return sp.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		for len(items) > 0 {
			n := min(len(items), spoolRows)
			var q strings.Builder
			q.WriteString("INSERT INTO sealbridge_spool (kind, owner, item_id, seq, data) VALUES ")
			args := make([]any, 0, 5*n)
			for i, e := range items[:n] {
				if i > 0 {
					q.WriteByte(',')
				}
				b := 5 * i
				fmt.Fprintf(&q, "($%d, $%d, $%d, $%d, $%d)", b+1, b+2, b+3, b+4, b+5)
				args = append(args, e.Kind, e.Owner, e.ID, e.Seq, string(e.Data))
			}
			q.WriteString(" ON CONFLICT (kind, item_id) DO NOTHING")
			if _, err := sp.db.Exec(ctx, q.String(), args...); err != nil {
				return err
			}
			items = items[n:]
		}
		return nil
	})
}

// Done deletes delivered items, in one statement per spoolRows of them.
func (sp *Spool) Done(ctx context.Context, kind string, ids ...string) error {
	for len(ids) > 0 {
		n := min(len(ids), spoolRows)
		var q strings.Builder
		q.WriteString("DELETE FROM sealbridge_spool WHERE kind=$1 AND item_id IN (")
		args := make([]any, 0, n+1)
		args = append(args, kind)
		for i, id := range ids[:n] {
			if i > 0 {
				q.WriteByte(',')
			}
			fmt.Fprintf(&q, "$%d", i+2)
			args = append(args, id)
		}
		q.WriteByte(')')
		if _, err := sp.db.Exec(ctx, q.String(), args...); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

// spoolRows bounds the rows of one statement (5 parameters each, well under SQLite's limit).
const spoolRows = 200

// Pending returns the stored items of a kind (and of one owner, unless owner is empty) in arrival
// order, and counts this as one more attempt for each, so that an item that keeps failing is
// given up after a few starts (Prune).
func (sp *Spool) Pending(ctx context.Context, kind, owner string) ([]SpoolItem, error) {
	var out []SpoolItem
	err := sp.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		rows, err := sp.db.Query(ctx, `SELECT owner, item_id, seq, data, attempts FROM sealbridge_spool
			WHERE kind=$1 AND ($2='' OR owner=$2) ORDER BY seq`, kind, owner)
		if out, err = scanItems(kind, rows, err); err != nil {
			return err
		}
		_, err = sp.db.Exec(ctx, `UPDATE sealbridge_spool SET attempts=attempts+1 WHERE kind=$1 AND ($2='' OR owner=$2)`, kind, owner)
		return err
	})
	return out, err
}

// Items returns the stored items of a kind and owner in arrival order, without counting an
// attempt.
func (sp *Spool) Items(ctx context.Context, kind, owner string) ([]SpoolItem, error) {
	return sp.After(ctx, kind, owner, math.MinInt64, math.MaxInt32)
}

// After returns at most limit stored items of a kind and owner that arrived after seq, in
// arrival order, without counting an attempt.
func (sp *Spool) After(ctx context.Context, kind, owner string, seq int64, limit int) ([]SpoolItem, error) {
	rows, err := sp.db.Query(ctx, `SELECT owner, item_id, seq, data, attempts FROM sealbridge_spool
		WHERE kind=$1 AND owner=$2 AND seq>$3 ORDER BY seq LIMIT $4`, kind, owner, seq, limit)
	return scanItems(kind, rows, err)
}

// Last returns the newest arrival order and the number of stored items of a kind and owner (0, 0
// when there are none).
func (sp *Spool) Last(ctx context.Context, kind, owner string) (seq int64, n int, err error) {
	var max sql.NullInt64
	err = sp.db.QueryRow(ctx, `SELECT MAX(seq), COUNT(*) FROM sealbridge_spool WHERE kind=$1 AND owner=$2`, kind, owner).Scan(&max, &n)
	return max.Int64, n, err
}

// CountAttempt counts one more attempt for every stored item of a kind and owner (a start that
// hands them over again), so that an item that keeps failing is given up after a few starts.
func (sp *Spool) CountAttempt(ctx context.Context, kind, owner string) error {
	_, err := sp.db.Exec(ctx, `UPDATE sealbridge_spool SET attempts=attempts+1 WHERE kind=$1 AND owner=$2`, kind, owner)
	return err
}

// Expired returns, at most limit at a time, the items of a kind that arrived before cutoff or were
// handled again maxAttempts times already: the ones to give up on (the caller tells whom they
// concern, then deletes them with Done).
func (sp *Spool) Expired(ctx context.Context, kind string, cutoff time.Time, maxAttempts, limit int) ([]SpoolItem, error) {
	rows, err := sp.db.Query(ctx, `SELECT owner, item_id, seq, data, attempts FROM sealbridge_spool
		WHERE kind=$1 AND (seq < $2 OR attempts >= $3) ORDER BY seq LIMIT $4`, kind, SpoolSeq(cutoff, 0), maxAttempts, limit)
	return scanItems(kind, rows, err)
}

// scanItems reads the rows of a SELECT owner, item_id, seq, data, attempts of one kind.
func scanItems(kind string, rows dbutil.Rows, err error) ([]SpoolItem, error) {
	if err != nil {
		return nil, err
	}
	var out []SpoolItem
	for rows.Next() {
		e := SpoolItem{Kind: kind}
		var data string
		if err = rows.Scan(&e.Owner, &e.ID, &e.Seq, &data, &e.Attempts); err != nil {
			_ = rows.Close()
			return nil, err
		}
		e.Data = []byte(data)
		out = append(out, e)
	}
	if err = rows.Close(); err != nil {
		return nil, err
	}
	return out, rows.Err()
}

// spoolSeqScale leaves room in Seq for the items of one batch received in the same microsecond.
const spoolSeqScale = 1000

// SpoolSeq is the arrival order of the index-th item of a batch received at t.
func SpoolSeq(t time.Time, index int) int64 {
	return t.UnixMicro()*spoolSeqScale + int64(index%spoolSeqScale)
}

// SpoolSeqTime is the arrival time a SpoolSeq stands for.
func SpoolSeqTime(seq int64) time.Time {
	return time.UnixMicro(seq / spoolSeqScale)
}
