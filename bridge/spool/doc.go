// Package spool keeps what the bridge took responsibility for until it is delivered, so that a
// crash (kill -9) loses nothing that was acknowledged or read:
//
//   - Spool is the table (sbdb.Spool) and its bookkeeping: items sealed under the credentials key,
//     deliveries marked in batches, items given up after a day or a few starts (and told).
//   - Inbox stands in front of mautrix's appservice transaction handler: Matrix events that can
//     become IRC lines are stored before the transaction is acknowledged, and replayed at the next
//     start until their lines are on the IRC socket.
//   - Queue is a login's queue from its IRC reader to bridgev2: the reader never waits, messages
//     are stored (in batches across logins, by one writer) before bridgev2 sees them, and past a
//     bound they wait in the database only.
//
// Nothing here knows IRC or a login's connection: the bridge package hands in what it spools as a
// Message and decodes it back.
package spool
