package bridge

import (
	"strconv"
	"strings"
	"time"

	"github.com/ergochat/irc-go/ircmsg"

	"github.com/sealbridge/sealbridge/bridge/format"
	"github.com/sealbridge/sealbridge/bridge/irc"
	"github.com/sealbridge/sealbridge/bridge/metrics"
)

// draft/multiline (https://ircv3.net/specs/extensions/multiline): one message of several lines,
// sent as a batch. From IRC, the batch becomes one Matrix message, its lines joined with line
// breaks (or without, for lines tagged draft/multiline-concat). From Matrix, a message of several
// IRC lines goes out as one batch where the server offers the capability and the message fits
// its max-bytes and max-lines; elsewhere, as separate lines.

const (
	multilineCap    = "draft/multiline"
	multilineConcat = "draft/multiline-concat"
	// maxMultilineBytes bounds the text collected from one batch (limits.max_batch_lines bounds
	// its lines): beyond either, what was collected goes on as a message of its own, and the rest
	// of the batch makes the next one. A Matrix event holds at most 64 KiB.
	maxMultilineBytes = 32 * 1024
)

// multilineBatch is an open draft/multiline batch from the server.
type multilineBatch struct {
	open    *ircmsg.Message // BATCH +ref draft/multiline <target>, from the sender
	at      time.Time
	command string // PRIVMSG or NOTICE, from the first line
	text    strings.Builder
	lines   int
	tags    map[string]string // client tags of the first line (+draft/reply, ...)
	parts   int               // messages made of it so far (part)
}

// openMultiline starts collecting a multiline batch; it reports whether msg opened one.
func (cl *IRCClient) openMultiline(msg *ircmsg.Message, at time.Time) bool {
	if len(msg.Params) < 3 || !strings.HasPrefix(msg.Params[0], "+") || msg.Params[1] != multilineCap {
		return false
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.multiline == nil {
		cl.multiline = make(map[string]*multilineBatch)
	}
	if len(cl.multiline) >= cl.connector.limits().MaxOpenBatches {
		// Too many open at once: this batch's lines go on one by one, as on a server without
		// multiline.
		cl.limited(metrics.LimitBatch)
		return false
	}
	cl.multiline[msg.Params[0][1:]] = &multilineBatch{open: msg, at: at}
	return true
}

// addMultiline takes a line that belongs to an open multiline batch; false for any other line.
func (cl *IRCClient) addMultiline(msg *ircmsg.Message) bool {
	ok, ref := msg.GetTag("batch")
	if !ok {
		return false
	}
	cl.mu.Lock()
	b := cl.multiline[ref]
	if b == nil {
		cl.mu.Unlock()
		return false
	}
	if (msg.Command != "PRIVMSG" && msg.Command != "NOTICE") || len(msg.Params) < 2 {
		cl.mu.Unlock()
		return true // not part of the message; dropped like other stray lines in the batch
	}
	var full *ircmsg.Message
	if b.lines > 0 && (b.lines >= cl.connector.limits().MaxBatchLines || b.text.Len()+1+len(msg.Params[1]) > maxMultilineBytes) {
		full = b.part()
		cl.limited(metrics.LimitBatch)
	}
	defer func() {
		cl.mu.Unlock()
		if full != nil {
			cl.handleMessage(full, b.at)
		}
	}()
	if b.lines == 0 {
		b.command = msg.Command
		b.tags = map[string]string{}
		for k, v := range msg.AllTags() {
			if strings.HasPrefix(k, "+") {
				b.tags[k] = v
			}
		}
	} else if concat, _ := msg.GetTag(multilineConcat); !concat {
		b.text.WriteByte('\n')
	}
	b.text.WriteString(msg.Params[1])
	b.lines++
	return true
}

// closeMultiline ends a batch: its message goes on as one line would, under the batch's msgid,
// time and sender. It reports whether ref was a multiline batch.
func (cl *IRCClient) closeMultiline(ref string) bool {
	cl.mu.Lock()
	b := cl.multiline[ref]
	delete(cl.multiline, ref)
	cl.mu.Unlock()
	if b == nil {
		return false
	}
	if b.lines == 0 {
		return true
	}
	cl.handleMessage(b.part(), b.at)
	return true
}

// part is the message collected so far, and starts the next part of the batch: the first part
// has the batch's msgid, later ones the msgid with "/2", "/3", ... (a batch past the bounds).
func (b *multilineBatch) part() *ircmsg.Message {
	tags := b.open.AllTags()
	for k, v := range b.tags {
		if _, set := tags[k]; !set {
			tags[k] = v
		}
	}
	b.parts++
	if msgid, ok := tags["msgid"]; ok && b.parts > 1 {
		tags["msgid"] = msgid + "/" + strconv.Itoa(b.parts)
	}
	joined := ircmsg.MakeMessage(tags, b.open.Source, b.command, b.open.Params[2], b.text.String())
	b.text.Reset()
	b.lines = 0
	return &joined
}

// multilineLimits are the server's max-bytes and max-lines for one batch, when it offers
// draft/multiline (and batch, which it needs).
func (cl *IRCClient) multilineLimits() (maxBytes, maxLines int, ok bool) {
	value, offered := cl.ircConn.CapValue(multilineCap)
	if !offered || !cl.ircConn.HasCap(multilineCap) || !cl.ircConn.HasCap("batch") {
		return 0, 0, false
	}
	for _, kv := range strings.Split(value, ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, _ := strconv.Atoi(v)
		switch k {
		case "max-bytes":
			maxBytes = n
		case "max-lines":
			maxLines = n
		}
	}
	return maxBytes, maxLines, maxBytes > 0
}

// fitsMultiline reports whether chunks can go as one multiline batch: the spec counts the bytes
// of the message text (line breaks included) against max-bytes.
func fitsMultiline(chunks []format.Chunk, maxBytes, maxLines int) bool {
	if len(chunks) < 2 || (maxLines > 0 && len(chunks) > maxLines) {
		return false
	}
	total := 0
	for i, c := range chunks {
		total += len(c.Text)
		if i > 0 && !c.Continues {
			total++
		}
	}
	return total <= maxBytes
}

// multilineText is the message the receivers of a batch of chunks put together (and our echo).
func multilineText(chunks []format.Chunk) string {
	var b strings.Builder
	for i, c := range chunks {
		if i > 0 && !c.Continues {
			b.WriteByte('\n')
		}
		b.WriteString(c.Text)
	}
	return b.String()
}

// sendMultiline sends chunks as one draft/multiline batch: BATCH +ref (with the message's tags
// and opts' Reply), the lines, BATCH -ref (with opts' Written and Unsent: a batch whose end was
// not written never reached anyone).
func (cl *IRCClient) sendMultiline(command, target string, chunks []format.Chunk, tags map[string]string, opts irc.SendOptions) error {
	cl.mu.Lock()
	cl.batchSeq++
	ref := "sbml" + strconv.Itoa(cl.batchSeq)
	cl.mu.Unlock()
	written, unsent := opts.Written, opts.Unsent
	opts.Written, opts.Tags = nil, tags
	if unsent != nil {
		// Not written means the end was not either (the queue keeps order): the end's Unsent
		// keeps the batch; this one only keeps its label from being reported unconfirmed.
		opts.Unsent = func() {}
	}
	if err := cl.ircConn.SendWith(opts, "BATCH", "+"+ref, multilineCap, target); err != nil {
		return err
	}
	for _, c := range chunks {
		lineTags := map[string]string{"batch": ref}
		if c.Continues {
			lineTags[multilineConcat] = ""
		}
		if err := cl.ircConn.SendTagged(lineTags, command, target, c.Text); err != nil {
			return err
		}
	}
	return cl.ircConn.SendWith(irc.SendOptions{Written: written, Unsent: unsent}, "BATCH", "-"+ref)
}
