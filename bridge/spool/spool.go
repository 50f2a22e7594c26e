package spool

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"

	"github.com/sealbridge/sealbridge/bridge/metrics"
	"github.com/sealbridge/sealbridge/sbdb"
)

// Spool keeps what the bridge took responsibility for until it is delivered, in both directions
// (sbdb.Spool): Matrix events from acknowledgement to the IRC socket (Inbox), IRC messages from
// the socket to bridgev2's send to the homeserver (Queue). Deliveries are marked in batches by one
// goroutine, so a busy portal costs one DELETE transaction per batch, not per line. Every method
// accepts a nil *Spool (a bridge without a database) and does nothing.
type Spool struct {
	store *sbdb.Spool
	// sealer seals what the spool stores (message bodies wait there until delivered) under the
	// same key as IRC credentials, bound to the item's kind and ID. Set by the connector's Start.
	sealer *sbdb.Sealer
	log    zerolog.Logger
	ready  chan struct{} // closed once the table exists
	doneC  chan spoolKey
	// stopped is closed when doneLoop has ended (the bridge is stopping).
	stopped chan struct{}
	// Unopenable counts the items found that this credentials_key cannot open; set it before
	// Start to count them in a registered metric.
	Unopenable prometheus.Counter
	// writer stores what the logins' queues push (writer.go).
	writer *writer
	// Tell, when set before Start, is told of the items given up (opened), before they are
	// deleted; items that arrived before cutoff expired, the others failed at several starts.
	Tell func(kind string, items []sbdb.SpoolItem, cutoff time.Time)
}

type spoolKey struct{ kind, id string }

const (
	// MaxAttempts bounds how often an item is handled again across restarts (an event that
	// bridgev2 never hands to the connector, e.g. from a user without a login, would stay forever).
	MaxAttempts = 3
	// MaxAge drops items this old: the conversation has moved on.
	MaxAge = 24 * time.Hour
	// spoolBatch is the most deliveries marked in one statement, and spoolGather how long the
	// first one waits for others.
	spoolBatch  = 200
	spoolGather = 10 * time.Millisecond
)

// New is a spool in db; Start creates its table.
func New(db *dbutil.Database, log zerolog.Logger) *Spool {
	sp := &Spool{
		store:      sbdb.NewSpool(db),
		log:        log,
		ready:      make(chan struct{}),
		doneC:      make(chan spoolKey, 4*spoolBatch),
		stopped:    make(chan struct{}),
		Unopenable: metrics.NewSpoolUnopenable(),
	}
	sp.writer = newWriter(sp)
	return sp
}

// Start creates the table, drops what is too old or was tried too often, and runs the spool's
// goroutines until ctx ends (then Wait waits for their last writes). Secrets are sealed by sealer.
func (sp *Spool) Start(ctx context.Context, sealer *sbdb.Sealer) error {
	if sp == nil {
		return nil
	}
	sp.sealer = sealer
	if err := sp.store.Upgrade(ctx); err != nil {
		return err
	}
	// Before the logins hand their items over again: what failed at several starts is given up.
	sp.giveUp(ctx, MaxAttempts)
	close(sp.ready)
	go sp.doneLoop(ctx)
	go sp.writer.run(ctx)
	return nil
}

// giveUpPage bounds the items given up in one pass (the rest wait for the next).
const giveUpPage = 10000

// giveUp deletes what the spool will not deliver any more: items that arrived more than
// MaxAge ago, or were handed over again at maxAttempts starts already. Nothing goes silently:
// each is counted (sealbridge_undelivered_messages_total) and told to whom it concerns (Tell). An
// item this credentials_key cannot open is kept; message requests wait for the user and are
// never given up here.
func (sp *Spool) giveUp(ctx context.Context, maxAttempts int) {
	cutoff := time.Now().Add(-MaxAge)
	for _, kind := range []string{sbdb.SpoolIRC, sbdb.SpoolMatrix} {
		items, err := sp.store.Expired(ctx, kind, cutoff, maxAttempts, giveUpPage)
		if err != nil {
			sp.log.Err(err).Str("kind", kind).Msg("Failed to read undeliverable items")
			continue
		}
		opened := sp.open(items)
		if len(opened) == 0 {
			continue
		}
		ids := make([]string, len(opened))
		for i, it := range opened {
			ids[i] = it.ID
		}
		sp.log.Warn().Str("kind", kind).Int("items", len(opened)).
			Msg("Giving up on undelivered messages that failed at several starts or for a day; telling whom they concern")
		if sp.Tell != nil {
			sp.Tell(kind, opened, cutoff)
		}
		if err := sp.store.Done(ctx, kind, ids...); err != nil {
			sp.log.Err(err).Msg("Failed to delete undeliverable items")
		}
	}
}

// Put seals and stores items (see sbdb.Spool.Put).
func (sp *Spool) Put(ctx context.Context, items []sbdb.SpoolItem) error {
	for i := range items {
		sealed, err := sp.sealer.Seal(string(items[i].Data), items[i].Kind+"/"+items[i].ID)
		if err != nil {
			return err
		}
		items[i].Data = []byte(sealed)
	}
	return sp.store.Put(ctx, items)
}

// Pending returns stored items, opened, and counts an attempt for each (see sbdb.Spool.Pending).
func (sp *Spool) Pending(ctx context.Context, kind, owner string) ([]sbdb.SpoolItem, error) {
	items, err := sp.store.Pending(ctx, kind, owner)
	if err != nil {
		return nil, err
	}
	return sp.open(items), nil
}

// Items returns the stored items of a kind and owner, opened, without counting an attempt.
func (sp *Spool) Items(ctx context.Context, kind, owner string) ([]sbdb.SpoolItem, error) {
	if sp == nil {
		return nil, nil
	}
	items, err := sp.store.Items(ctx, kind, owner)
	if err != nil {
		return nil, err
	}
	return sp.open(items), nil
}

// After returns at most n stored items of a kind and owner after seq, opened, and the order of the
// last row read (0 when none was).
func (sp *Spool) After(ctx context.Context, kind, owner string, seq int64, n int) ([]sbdb.SpoolItem, int64, error) {
	items, err := sp.store.After(ctx, kind, owner, seq, n)
	if err != nil || len(items) == 0 {
		return nil, 0, err
	}
	through := items[len(items)-1].Seq
	return sp.open(items), through, nil
}

// open unseals items. One that cannot be opened (sealed under another credentials_key) is left in
// the database, never deleted: the right key may come back. It is skipped and counted.
func (sp *Spool) open(items []sbdb.SpoolItem) []sbdb.SpoolItem {
	out := items[:0]
	for _, it := range items {
		data, err := sp.sealer.Open(string(it.Data), it.Kind+"/"+it.ID)
		if err != nil {
			sp.Unopenable.Inc()
			sp.log.Warn().Str("kind", it.Kind).Str("id", it.ID).
				Msg("An undelivered item cannot be opened with this credentials_key; it is kept in the database")
			continue
		}
		it.Data = []byte(data)
		out = append(out, it)
	}
	return out
}

// DoneNow deletes items at once (not batched): requests the user opened or cleared.
func (sp *Spool) DoneNow(ctx context.Context, kind string, ids ...string) {
	if sp == nil || len(ids) == 0 {
		return
	}
	if err := sp.store.Done(ctx, kind, ids...); err != nil {
		sp.log.Err(err).Str("kind", kind).Msg("Failed to delete spooled items")
	}
}

// Done marks an item as delivered (asynchronously; safe from any goroutine).
func (sp *Spool) Done(kind, id string) {
	if sp == nil || id == "" {
		return
	}
	select {
	case sp.doneC <- spoolKey{kind, id}:
	case <-sp.stopped:
	}
}

// doneLoop deletes delivered items in batches, and once an hour gives up on items older than a day.
func (sp *Spool) doneLoop(ctx context.Context) {
	defer close(sp.stopped)
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	byKind := map[string][]string{}
	n := 0
	flush := func() {
		for kind, ids := range byKind {
			if err := sp.store.Done(context.WithoutCancel(ctx), kind, ids...); err != nil {
				sp.log.Err(err).Str("kind", kind).Int("items", len(ids)).Msg("Failed to mark deliveries")
			}
			delete(byKind, kind)
		}
		n = 0
	}
	for {
		select {
		case k := <-sp.doneC:
			byKind[k.kind] = append(byKind[k.kind], k.id)
			n++
			// Gather what arrives within spoolGather, up to a batch, then write once: one DELETE
			// per batch instead of a transaction per message. (A crash within that window sends
			// those items again: the at-least-once window.)
			gather := time.NewTimer(spoolGather)
			for more := true; more && n < spoolBatch; {
				select {
				case k = <-sp.doneC:
					byKind[k.kind] = append(byKind[k.kind], k.id)
					n++
				case <-gather.C:
					more = false
				}
			}
			gather.Stop()
			flush()
		case <-prune.C:
			sp.giveUp(ctx, math.MaxInt32)
		case <-ctx.Done():
			// The bridge is stopping: take what is still queued too, so that a clean restart
			// does not deliver it again.
			for more := true; more; {
				select {
				case k := <-sp.doneC:
					byKind[k.kind] = append(byKind[k.kind], k.id)
				default:
					more = false
				}
			}
			flush()
			return
		}
	}
}

// stopWait bounds how long a stopping bridge waits for the spool's last writes.
const stopWait = 10 * time.Second

// Wait blocks until the spool's goroutines have made their last writes (the bridge's background
// context ended), or stopWait has passed, so that the database is not closed under them.
func (sp *Spool) Wait() {
	if sp == nil {
		return
	}
	select {
	case <-sp.ready:
	default:
		return // never started
	}
	timeout := time.After(stopWait)
	for _, ch := range []chan struct{}{sp.stopped, sp.writer.stopped} {
		select {
		case <-ch:
		case <-timeout:
			sp.log.Warn().Msg("The spool's last writes did not finish in time; some deliveries may be repeated after the restart")
			return
		}
	}
}

// readyWait is how long a caller waits at startup for Start to have made the spool's table.
const readyWait = 30 * time.Second

// waitReady waits until Start has made the table, ctx ends or readyWait passes.
func (sp *Spool) waitReady(ctx context.Context) error {
	select {
	case <-sp.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(readyWait):
		return errors.New("the spool's table is not ready")
	}
}

// undelivered returns the order of the newest stored item of a kind and owner and how many there
// are, and counts an attempt for each (a start handing them over again).
func (sp *Spool) undelivered(ctx context.Context, kind, owner string) (seq int64, n int, err error) {
	if err = sp.waitReady(ctx); err != nil {
		return 0, 0, err
	}
	seq, n, err = sp.store.Last(ctx, kind, owner)
	if err == nil && n > 0 {
		err = sp.store.CountAttempt(ctx, kind, owner)
	}
	return seq, n, err
}
