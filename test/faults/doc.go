// Package faults is sealbridge's fault suite: on the real stack (Dendrite, InspIRCd with Anope, soju
// in front of it for CHATHISTORY, the bridge binary, the matrix-js-sdk E2EE client) it streams
// numbered messages both ways through an encrypted channel portal while it kills the bridge with
// SIGKILL, stops the homeserver for 60 s and restarts the IRC server, and counts per scenario and
// direction what was sent, delivered, lost, duplicated and reordered. For IRC->Matrix it also
// counts what the homeserver stored (on_hs, from Dendrite's database), so that a line the bridge
// never sent can be told from one the Matrix client did not collect, and what only sync delivered
// (sync_only: Dendrite's /messages can skip an event at a page boundary). For Matrix->IRC it counts
// the Matrix client's own messages the homeserver stored twice (hs_dup: a send retried across a
// Dendrite restart, whose transaction IDs live in memory); their IRC copies are not the bridge's
// duplicates. It reports; it fails only
// when the harness itself breaks. A second test checks flood control: a burst of lines from Matrix
// reaches IRC in order, on InspIRCd's default connect-class limits, without a flood disconnect. A
// third, the reconnect storm, drops SEALBRIDGE_STORM_LOGINS logins (50; 200 in `make faults`) at
// once by restarting InspIRCd and checks that they come back paced, unrefused and within bounded
// memory, and that a login whose SASL password changed meanwhile stops and tells its user. A fourth,
// the burst, has an IRC user say SEALBRIDGE_BURST_LINES lines (1,000; 5,000 in `make faults`) at
// wire speed on a server that throttles nobody while the bridge's connection has a 64 KiB send
// queue: all must reach Matrix, in order, with no disconnect. A fifth gives the bridge a second
// network whose server is hostile (stack.EvilIRC) and streams junk for SEALBRIDGE_HOSTILE_S
// seconds (20; 60 in `make faults`): the other login keeps bridging, the homeserver sees only the
// rooms the limits allow, and the bridge's memory grows by at most 64 MiB.
//
// Three stacks: the bridge straight on InspIRCd (every scenario, both directions); behind soju
// (scenario names "soju_", IRC->Matrix); and straight on InspIRCd with the channel's history kept
// by InspIRCd itself ("chanhistory_": its chanhistory module, channel mode +H 500:1d, replayed on
// every JOIN as a chathistory batch with the original msgids; the bridge kill only, since InspIRCd
// keeps that history in memory). Plain InspIRCd keeps no history, so what it carried while the
// bridge was down is lost there by design; the other two stacks show it coming back.
//
// The tests are behind the build tag e2e. `make test` (via `make e2e`) runs short versions:
// SEALBRIDGE_FAULTS_N messages each way (default 100, IRC->Matrix at SEALBRIDGE_FAULTS_RATE = 10
// lines/s), of the soju scenarios only the bridge kill, and SEALBRIDGE_FLOOD_LINES flood lines
// (default 60). `make faults` runs 10,000 messages each way and 1,000 flood lines and writes
// test/faults/results.json (SEALBRIDGE_FAULTS_OUT). On a busy shared machine the whole path runs
// at about one message a second; SEALBRIDGE_FAULTS_BUDGET_M bounds the suite.
package faults
