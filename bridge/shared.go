package bridge

import (
	"sync"

	"maunium.net/go/mautrix/bridgev2/networkid"
)

// Logins of one bridge often share a network and its channels: on a busy network a hundred of them
// may sit in one channel, and each reads its own copy of every line said there. sharing answers
// what each copy needs to know in constant time, whatever the number of logins: whether a nick is
// another login's connection, which login bridges a channel's lines that carry no msgid, and
// whether another login has already taken a line that carries one (so that only the first copy is
// spooled and handed to bridgev2). It holds connected logins only, and its lock is taken last:
// never call out of it.
type sharing struct {
	mu       sync.Mutex
	nicks    map[sharedName]*IRCClient
	nickOf   map[*IRCClient]sharedName
	channels map[sharedName]*sharedChannel
	joined   map[*IRCClient]map[sharedName]struct{}
	taken    takenLines
}

// sharedName is a nick or channel on a network, folded by the network's casemapping.
type sharedName struct{ network, name string }

type sharedChannel struct {
	members map[*IRCClient]struct{}
	lead    *IRCClient // the member with the lowest login ID
}

// takenLinesKept is how many recent lines with a msgid the bridge remembers having taken. A copy
// that comes later than that (a history fetch hours later) is still kept once by bridgev2, which
// looks the message ID up in its database.
const takenLinesKept = 8192

// takenLines is a bounded set of recent (portal, message ID) pairs, oldest forgotten first.
type takenLines struct {
	set  map[string]struct{}
	ring []string
	next int
}

// lock takes the lock, making the maps on first use.
func (s *sharing) lock() {
	s.mu.Lock()
	if s.nicks == nil {
		s.initLocked()
	}
}

func (s *sharing) initLocked() {
	s.nicks = make(map[sharedName]*IRCClient)
	s.nickOf = make(map[*IRCClient]sharedName)
	s.channels = make(map[sharedName]*sharedChannel)
	s.joined = make(map[*IRCClient]map[sharedName]struct{})
	s.taken = takenLines{set: make(map[string]struct{}, takenLinesKept), ring: make([]string, takenLinesKept)}
}

// connected records a login's connection under its nick (folded); disconnected forgets the
// connection, its nick and its channels.
func (s *sharing) connected(cl *IRCClient, foldedNick string) {
	s.lock()
	defer s.mu.Unlock()
	s.setNickLocked(cl, foldedNick)
}

func (s *sharing) disconnected(cl *IRCClient) []leadChange {
	s.lock()
	defer s.mu.Unlock()
	if n, ok := s.nickOf[cl]; ok {
		if s.nicks[n] == cl {
			delete(s.nicks, n)
		}
		delete(s.nickOf, cl)
	}
	return s.leaveAllLocked(cl)
}

// renamed follows the login's own nick change, if the login is connected.
func (s *sharing) renamed(cl *IRCClient, foldedNick string) {
	s.lock()
	defer s.mu.Unlock()
	if _, ok := s.nickOf[cl]; ok {
		s.setNickLocked(cl, foldedNick)
	}
}

func (s *sharing) setNickLocked(cl *IRCClient, foldedNick string) {
	if old, ok := s.nickOf[cl]; ok && s.nicks[old] == cl {
		delete(s.nicks, old)
	}
	n := sharedName{string(cl.network.ID), foldedNick}
	s.nicks[n] = cl
	s.nickOf[cl] = n
}

// isOtherLogin tells whether the folded nick is another connected login's on cl's network.
func (s *sharing) isOtherLogin(cl *IRCClient, foldedNick string) bool {
	s.lock()
	defer s.mu.Unlock()
	other := s.nicks[sharedName{string(cl.network.ID), foldedNick}]
	return other != nil && other != cl
}

// leadChange names a login whose lead of a channel (folded) may have changed: the caller tells it
// (IRCClient.leadChanged) once no lock is held, since its state has a lock of its own.
type leadChange struct {
	cl      *IRCClient
	channel string
}

// join and leave follow the login's own membership of a channel (folded); leaveAll forgets every
// channel of the login (a new connection rejoins them). Each returns the other logins whose lead
// changed; join also whether cl now leads the channel.
func (s *sharing) join(cl *IRCClient, foldedChannel string) (leads bool, changed []leadChange) {
	n := sharedName{string(cl.network.ID), foldedChannel}
	s.lock()
	defer s.mu.Unlock()
	ch := s.channels[n]
	if ch == nil {
		ch = &sharedChannel{members: make(map[*IRCClient]struct{})}
		s.channels[n] = ch
	}
	ch.members[cl] = struct{}{}
	if ch.lead == nil || cl.loginID < ch.lead.loginID {
		if ch.lead != nil && ch.lead != cl {
			changed = append(changed, leadChange{ch.lead, foldedChannel})
		}
		ch.lead = cl
	}
	if s.joined[cl] == nil {
		s.joined[cl] = make(map[sharedName]struct{})
	}
	s.joined[cl][n] = struct{}{}
	return ch.lead == cl, changed
}

func (s *sharing) leave(cl *IRCClient, foldedChannel string) []leadChange {
	s.lock()
	defer s.mu.Unlock()
	return s.leaveLocked(cl, sharedName{string(cl.network.ID), foldedChannel}, nil)
}

func (s *sharing) leaveAll(cl *IRCClient) []leadChange {
	s.lock()
	defer s.mu.Unlock()
	return s.leaveAllLocked(cl)
}

func (s *sharing) leaveAllLocked(cl *IRCClient) []leadChange {
	var changed []leadChange
	for n := range s.joined[cl] {
		changed = s.leaveLocked(cl, n, changed)
	}
	delete(s.joined, cl)
	return changed
}

func (s *sharing) leaveLocked(cl *IRCClient, n sharedName, changed []leadChange) []leadChange {
	if j := s.joined[cl]; j != nil {
		delete(j, n)
	}
	ch := s.channels[n]
	if ch == nil {
		return changed
	}
	delete(ch.members, cl)
	if len(ch.members) == 0 {
		delete(s.channels, n)
		return changed
	}
	if ch.lead == cl {
		ch.lead = nil
		for m := range ch.members {
			if ch.lead == nil || m.loginID < ch.lead.loginID {
				ch.lead = m
			}
		}
		changed = append(changed, leadChange{ch.lead, n.name})
	}
	return changed
}

// leadOf is the login that leads a channel cl is in (folded), if it is another one.
func (s *sharing) leadOf(cl *IRCClient, foldedChannel string) *IRCClient {
	s.lock()
	defer s.mu.Unlock()
	ch := s.channels[sharedName{string(cl.network.ID), foldedChannel}]
	if ch == nil || ch.lead == cl {
		return nil
	}
	if _, in := ch.members[cl]; !in {
		return nil
	}
	return ch.lead
}

// leads tells whether cl bridges the lines of a channel (folded) that carry no msgid: with a msgid
// copies are told apart, without one each login would make its own message ID, so one login does
// it, the connected member with the lowest login ID. A login the index does not hold in the
// channel bridges (it would be the only one that knows the line).
func (s *sharing) leads(cl *IRCClient, foldedChannel string) bool {
	s.lock()
	defer s.mu.Unlock()
	ch := s.channels[sharedName{string(cl.network.ID), foldedChannel}]
	if ch == nil {
		return true
	}
	if _, in := ch.members[cl]; !in {
		return true
	}
	return ch.lead == cl
}

// bridgesChannelChange tells whether this login passes on a change in a channel: a member's join,
// part, quit, nick or modes, the topic, typing, a reaction or a removal. Every login in a shared
// channel sees the same change, so only the channel's lead queues it (as with lines without a
// msgid); a change one of the actors made as this login's own nick is always this login's.
func (cl *IRCClient) bridgesChannelChange(channel string, actors ...string) bool {
	for _, a := range actors {
		if a != "" && cl.isMe(a) {
			return true
		}
	}
	return cl.connector.shared.leads(cl, cl.fold(channel))
}

// bridgesMembershipOf tells whether this login queues nick's joining or leaving a channel (actors
// made the change, e.g. a kicker): never for another login of the bridge, whose Matrix user's
// membership is that login's own business (its NAMES resync makes it a member, its own PART, KICK
// or QUIT ends it; the nick as a ghost would only join and be removed again), otherwise as
// bridgesChannelChange.
func (cl *IRCClient) bridgesMembershipOf(channel, nick string, actors ...string) bool {
	if !cl.isMe(nick) && cl.connector.isOtherLoginsNick(cl, nick) {
		return false
	}
	return cl.bridgesChannelChange(channel, append([]string{nick}, actors...)...)
}

// take tells whether this is the first copy of a line (by its message ID in its portal) that a
// login of the bridge has taken lately; later copies are dropped before anything costly.
func (s *sharing) take(portal networkid.PortalID, id networkid.MessageID) bool {
	key := string(portal) + "\x00" + string(id)
	s.lock()
	defer s.mu.Unlock()
	t := &s.taken
	if _, seen := t.set[key]; seen {
		return false
	}
	if old := t.ring[t.next]; old != "" {
		delete(t.set, old)
	}
	t.ring[t.next] = key
	t.next = (t.next + 1) % len(t.ring)
	t.set[key] = struct{}{}
	return true
}
