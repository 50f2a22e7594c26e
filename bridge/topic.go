package bridge

import (
	"context"
	"time"
)

// Topics set from Matrix: kept until the server shows them back, sent again when it throttles
// them. IRC's own TOPIC lines are handled in handleirc.go.

// pendingTopic is a topic sent from Matrix that the server has not shown back yet.
type pendingTopic struct {
	text  string
	tries int
}

// topicRetries bounds how often a throttled topic change is sent again.
const topicRetries = 3

// retryTopic handles ERR_UNAVAILRESOURCE (437) "<channel> :Retry topic change later": servers
// throttle topic changes (InspIRCd refuses one within a second of the last), so the Matrix topic
// is sent again after a pause, a few times, before the user is told it did not take.
func (cl *IRCClient) retryTopic(channel, reason string) {
	folded := cl.fold(channel)
	cl.mu.Lock()
	p := cl.pendingTopics[folded]
	if p != nil && p.tries >= topicRetries {
		delete(cl.pendingTopics, folded)
	} else if p != nil {
		p.tries++
	}
	cl.mu.Unlock()
	if p == nil {
		return
	}
	if p.tries >= topicRetries {
		cl.notifyUser(cl.log.WithContext(context.Background()), "%s: %s: the topic from Matrix was not set: %s",
			cl.network.DisplayName(), channel, reason)
		cl.resyncChannel(channel)
		return
	}
	time.AfterFunc(time.Duration(p.tries)*2*time.Second, func() {
		cl.mu.Lock()
		still := cl.pendingTopics[folded] == p
		cl.mu.Unlock()
		if still {
			_ = cl.ircConn.Send("TOPIC", channel, p.text)
		}
	})
}

// topicShown forgets the pending Matrix topic of a channel once IRC shows a topic change by us.
func (cl *IRCClient) topicShown(channel string) {
	cl.mu.Lock()
	delete(cl.pendingTopics, cl.fold(channel))
	cl.mu.Unlock()
}
