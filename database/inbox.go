package database

import (
	"context"
	"fmt"
	"time"

	"go.mau.fi/util/dbutil"
)

// InboxEvent is one Matrix event the homeserver handed to the bridge that has not been carried to
// IRC yet: its raw JSON as it came in the appservice transaction, so it can be handled again after
// a crash exactly as the first time.
type InboxEvent struct {
	EventID  string
	RoomID   string
	Seq      int64 // arrival order (Unix microseconds, plus the event's index in its transaction)
	Raw      []byte
	Attempts int
}

// Inbox is the table of Matrix events the bridge has acknowledged to the homeserver but not yet
// finished. A row is written before the transaction is acknowledged and deleted once the event's
// lines are on the IRC socket (or the event failed with an error its sender saw), so a kill -9 in
// between loses nothing: the rows left are handled again at the next start.
type Inbox struct {
	db *dbutil.Database
}

var inboxUpgrades = dbutil.BuildUpgradeTable().
	WithRaw(0, 1, 0, "Inbox of Matrix events not yet carried to IRC", dbutil.TxnModeOn, func(ctx context.Context, db *dbutil.Database) error {
		if _, err := db.Exec(ctx, `CREATE TABLE sealbridge_inbox (
			event_id TEXT PRIMARY KEY,
			room_id  TEXT NOT NULL,
			seq      BIGINT NOT NULL,
			event    TEXT NOT NULL,
			attempts INTEGER NOT NULL DEFAULT 0
		)`); err != nil {
			return err
		}
		_, err := db.Exec(ctx, `CREATE INDEX sealbridge_inbox_seq_idx ON sealbridge_inbox (seq)`)
		return err
	}).Finish()

// NewInbox uses db (bridgev2's database) with its own version table, so its migrations never mix
// with bridgev2's.
func NewInbox(db *dbutil.Database) *Inbox {
	return &Inbox{db: db.Child("sealbridge_version", inboxUpgrades, nil)}
}

// Upgrade creates or migrates the inbox table.
func (in *Inbox) Upgrade(ctx context.Context) error {
	if err := in.db.Upgrade(ctx); err != nil {
		return fmt.Errorf("failed to upgrade the sealbridge tables: %w", err)
	}
	return nil
}

// Put stores events in one transaction. An event already stored (the homeserver resending a
// transaction the bridge stored but did not acknowledge before a crash) is left as it was.
func (in *Inbox) Put(ctx context.Context, events []InboxEvent) error {
	if len(events) == 0 {
		return nil
	}
	return in.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		for _, e := range events {
			if _, err := in.db.Exec(ctx, `INSERT INTO sealbridge_inbox (event_id, room_id, seq, event) VALUES ($1, $2, $3, $4)
				ON CONFLICT (event_id) DO NOTHING`, e.EventID, e.RoomID, e.Seq, string(e.Raw)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Done deletes a finished event.
func (in *Inbox) Done(ctx context.Context, eventID string) error {
	_, err := in.db.Exec(ctx, `DELETE FROM sealbridge_inbox WHERE event_id=$1`, eventID)
	return err
}

// Pending returns every stored event in arrival order and counts this as one more attempt for
// each, so that an event that keeps failing to finish is given up after a few starts.
func (in *Inbox) Pending(ctx context.Context) ([]InboxEvent, error) {
	var out []InboxEvent
	err := in.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		rows, err := in.db.Query(ctx, `SELECT event_id, room_id, seq, event, attempts FROM sealbridge_inbox ORDER BY seq`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var e InboxEvent
			var raw string
			if err = rows.Scan(&e.EventID, &e.RoomID, &e.Seq, &raw, &e.Attempts); err != nil {
				_ = rows.Close()
				return err
			}
			e.Raw = []byte(raw)
			out = append(out, e)
		}
		if err = rows.Close(); err != nil {
			return err
		}
		if err = rows.Err(); err != nil {
			return err
		}
		_, err = in.db.Exec(ctx, `UPDATE sealbridge_inbox SET attempts=attempts+1`)
		return err
	})
	return out, err
}

// Prune deletes events that arrived before cutoff or were tried maxAttempts times already, and
// returns how many it deleted.
func (in *Inbox) Prune(ctx context.Context, cutoff time.Time, maxAttempts int) (int64, error) {
	res, err := in.db.Exec(ctx, `DELETE FROM sealbridge_inbox WHERE seq < $1 OR attempts >= $2`, cutoff.UnixMicro()*inboxSeqScale, maxAttempts)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// inboxSeqScale leaves room in Seq for the events of one transaction received in the same
// microsecond: Seq = UnixMicro*inboxSeqScale + index.
const inboxSeqScale = 1000

// InboxSeq is the arrival order of the index-th event of a transaction received at t.
func InboxSeq(t time.Time, index int) int64 {
	return t.UnixMicro()*inboxSeqScale + int64(index%inboxSeqScale)
}
