package bridge

import (
	"maunium.net/go/mautrix/id"

	"github.com/sealbridge/sealbridge/bridge/format"
	"github.com/sealbridge/sealbridge/bridge/irc"
)

// Lines from Matrix that a connection ended before writing (still in its flood-control queue, or
// their write failed) come back from the engine as unsent (irc.SendOptions.Unsent), and go out on
// the next connection, after its rejoins, in the order they were sent. The event they belong to
// stays in the crash inbox until its last line is written, so a restart meanwhile sends it again
// too. At most maxUnsent units wait per login; more wait for the next start in the inbox.

// maxUnsent bounds the units (lines, or multiline batches) a login keeps for its next connection.
const maxUnsent = 10000

// sendUnit is what goes out at once: one line, or one draft/multiline batch (chunks set).
type sendUnit struct {
	command, target string
	line            string // one line, its text
	spoof           string // RELAYMSG nick, or ""
	chunks          []format.Chunk
	tags            map[string]string // of a batch
	opts            irc.SendOptions   // Tags (of a line), Written, Reply
	echoOf          id.EventID        // the event whose echo saves the message, for its first line
}

// sendUnit sends u; if the connection ends before it is written it is kept for the next one.
func (cl *IRCClient) sendUnit(u sendUnit) error {
	keep := func() { cl.keepUnsent(u) }
	if u.chunks != nil {
		joined := multilineText(u.chunks)
		cl.rememberEcho(u.target, joined, u.echoOf)
		opts := u.opts
		opts.Unsent = keep // on the batch's last line: an unfinished batch never reached anyone
		if err := cl.sendMultiline(u.command, u.target, u.chunks, u.tags, opts); err != nil {
			cl.forgetEcho(u.target, joined)
			return err
		}
		return nil
	}
	cl.rememberEcho(u.target, u.line, u.echoOf)
	params := []string{u.target, u.line}
	if u.spoof != "" {
		params = []string{u.target, u.spoof, u.line}
	}
	opts := u.opts
	opts.Unsent = keep
	if err := cl.ircConn.SendWith(opts, u.command, params...); err != nil {
		cl.forgetEcho(u.target, u.line)
		return err
	}
	return nil
}

// keepUnsent keeps a unit the connection did not write, for the next connection.
func (cl *IRCClient) keepUnsent(u sendUnit) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if len(cl.unsent) >= maxUnsent {
		cl.log.Warn().Msg("Too many lines from Matrix wait for the IRC connection; the rest wait in the inbox for the next start")
		return
	}
	cl.unsent = append(cl.unsent, u)
}

// resendUnsent sends what earlier connections did not write, in order, once this one has queued
// its rejoins.
func (cl *IRCClient) resendUnsent() {
	cl.mu.Lock()
	units := cl.unsent
	cl.unsent = nil
	cl.mu.Unlock()
	if len(units) > 0 {
		cl.log.Info().Int("units", len(units)).Msg("Sending lines from Matrix again that the last connection did not write")
	}
	for i, u := range units {
		if err := cl.sendUnit(u); err != nil {
			// Gone again already: keep the rest, in order, for the next connection.
			for _, rest := range units[i:] {
				cl.keepUnsent(rest)
			}
			return
		}
	}
}
