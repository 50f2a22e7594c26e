package bridge

import (
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/sealbridge/sealbridge/bridge/format"
)

// Reply quotes for servers without message-tags: there a Matrix reply cannot carry +draft/reply,
// so it goes out as `nick: "quoted line" <- reply`. The quote comes from the lines the bridge
// itself bridged into that same portal (keyed by portal and message ID, never by ID alone, so that
// no text crosses rooms), and only when the replying login's own connection was in the channel
// when the line was said (it saw the line on IRC, so the quote tells IRC nothing new).

const (
	// quoteCacheSize bounds the lines kept for quoting, across the whole bridge.
	quoteCacheSize = 2048
	// quoteMaxBytes bounds the quoted excerpt.
	quoteMaxBytes = 60
)

type quoteKey struct {
	portal networkid.PortalKey
	id     networkid.MessageID
}

type quoteEntry struct {
	nick, text string
	at         time.Time
}

// quoteCache is a fixed-size ring of recently bridged lines.
type quoteCache struct {
	mu      sync.Mutex
	entries map[quoteKey]quoteEntry
	ring    []quoteKey
	next    int
}

func (q *quoteCache) put(portal networkid.PortalKey, id networkid.MessageID, nick, text string, at time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.entries == nil {
		q.entries = make(map[quoteKey]quoteEntry, quoteCacheSize)
		q.ring = make([]quoteKey, quoteCacheSize)
	}
	k := quoteKey{portal, id}
	if _, ok := q.entries[k]; ok {
		return
	}
	delete(q.entries, q.ring[q.next])
	q.ring[q.next] = k
	q.next = (q.next + 1) % len(q.ring)
	q.entries[k] = quoteEntry{nick: nick, text: text, at: at}
}

func (q *quoteCache) get(portal networkid.PortalKey, id networkid.MessageID) (quoteEntry, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, ok := q.entries[quoteKey{portal, id}]
	return e, ok
}

// quoteFor is the excerpt of a bridged line that cl may quote in a reply in portal, or "".
func (cl *IRCClient) quoteFor(portal networkid.PortalKey, id networkid.MessageID) string {
	if cl.connector == nil {
		return ""
	}
	e, ok := cl.connector.quotes.get(portal, id)
	if !ok {
		return ""
	}
	_, target, _ := ParsePortalID(portal.ID)
	if cl.ircConn.IsChannel(target) {
		var joined time.Time
		if !cl.withChannel(target, func(ch *channelState) { joined = ch.Joined }) || joined.IsZero() || e.at.Before(joined) {
			return "" // said before this connection was in the channel: not seen by this user
		}
	}
	return excerpt(e.text)
}

// excerpt is text as one short plain line: formatting and control characters removed, cut on a
// word boundary within quoteMaxBytes.
func excerpt(text string) string {
	s := format.OneLine(format.StripCodes(text), 0)
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	if len(s) <= quoteMaxBytes {
		return s
	}
	cut := quoteMaxBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if sp := strings.LastIndexByte(s[:cut], ' '); sp > quoteMaxBytes/2 {
		cut = sp
	}
	return strings.TrimSpace(s[:cut]) + "…"
}
