package bridge

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ergochat/irc-go/ircmsg"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/event"

	"github.com/sealbridge/sealbridge/config"
)

// FuzzMatrixTagsAndEdits covers the Matrix->IRC paths that carry Matrix strings in tags or after a
// prefix: a reaction key (+draft/react on a TAGMSG), a redaction reason (REDACT), and an edit (the
// new text as a "* correction" line). The socket invariant is checked on every line written, and
// each line goes to the portal's channel with the expected command.
func FuzzMatrixTagsAndEdits(f *testing.F) {
	f.Add("👍", "spam", "msgid1", "fixed text", "")
	f.Add("a\r\nQUIT :x", "r\rREDACT #chan other", "id\r\nQUIT", "x\r\nQUIT :y", "<b>x</b>\r\nQUIT")
	f.Add(strings.Repeat("😀", 40), strings.Repeat("ü", 300), "a b", strings.Repeat("é", 400), "")
	f.Add("\x00", "\x00", "\x00", "\x01DCC SEND x 1 2 3\x01", "<mx-reply>q\rQUIT</mx-reply>a")
	f.Add("", "", ":x", "", "")
	cl, w := newWireClient(f, wireOpts{caps: []string{"message-tags", "draft/message-redaction"}})
	cl.connector.Config.EditStyle = config.EditPrefix
	joinedChannel(cl, "#chan")
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, key, reason, msgid, body, formatted string) {
		resetFuzzClient(cl, w, t)
		key, reason, msgid, body, formatted = clip(key), clip(reason), clip(msgid), clip(body), clip(formatted)
		portal := portalFor(cl.channelKey("#chan"))
		target := &database.Message{ID: MakeMessageID(nil, "net", "", "", msgid, testTime, "x"), Room: portal.PortalKey}

		// Reaction.
		rmsg := &bridgev2.MatrixReaction{TargetMessage: target}
		rmsg.Portal, rmsg.Content = portal, &event.ReactionEventContent{RelatesTo: event.RelatesTo{Type: event.RelAnnotation, Key: key}}
		if pre, err := cl.PreHandleMatrixReaction(ctx, rmsg); err == nil {
			rmsg.PreHandleResp = &pre
			_, err = cl.HandleMatrixReaction(ctx, rmsg)
			checkLines(t, w, err, "TAGMSG")
		}

		// Redaction with a reason.
		dmsg := &bridgev2.MatrixMessageRemove{TargetMessage: target}
		dmsg.Portal, dmsg.Content = portal, &event.RedactionEventContent{Reason: reason}
		err := cl.HandleMatrixMessageRemove(ctx, dmsg)
		for _, msg := range checkLines(t, w, err, "REDACT") {
			if len(msg.Params) < 2 || msg.Params[1] != msgid {
				t.Fatalf("REDACT of %q: %q", msgid, msg.Params)
			}
		}

		// Edit.
		emsg := &bridgev2.MatrixEdit{EditTarget: target}
		content := &event.MessageEventContent{MsgType: event.MsgText, Body: body}
		if formatted != "" {
			content.Format, content.FormattedBody = event.FormatHTML, formatted
		}
		emsg.Portal, emsg.Content = portal, content
		err = cl.HandleMatrixEdit(ctx, emsg)
		for _, msg := range checkLines(t, w, err, "PRIVMSG") {
			if strings.IndexByte(msg.Params[1], '\x01') >= 0 {
				t.Fatalf("CTCP delimiter from a Matrix edit: %q", msg.Params)
			}
		}
		if err != nil && !strings.Contains(err.Error(), "empty on IRC") {
			t.Fatalf("edit %q %q refused: %v", body, formatted, err)
		}
	})
}

// checkLines reads what one call wrote: nothing when it failed, otherwise lines of the given
// command to #chan, each within the socket invariant.
func checkLines(t *testing.T, w *wire, err error, command string) []ircmsg.Message {
	t.Helper()
	got := w.barrier()
	if err != nil && len(got) > 0 {
		t.Fatalf("%s failed (%v) after writing %q", command, err, got)
	}
	var out []ircmsg.Message
	for _, raw := range got {
		msg := checkWireLine(t, raw)
		if msg.Command != command || len(msg.Params) == 0 || msg.Params[0] != "#chan" {
			t.Fatalf("%s: wrote %q", command, raw)
		}
		for k, v := range msg.AllTags() {
			if !utf8.ValidString(v) || strings.ContainsAny(v, "\x00") {
				t.Fatalf("tag %s=%q in %q", k, v, raw)
			}
		}
		out = append(out, msg)
	}
	return out
}
