package config

import (
	"fmt"
	"time"
)

// Limits bound what one IRC server or IRC user can make the bridge hold or create for one login.
// Every peer is hostile input: a server a user named (user networks), or anyone on a network who
// sends private messages. What goes over a limit is refused or dropped, counted in the metric
// sealbridge_peer_limited_total{limit=...}, and the user is told where they would want to know.
type Limits struct {
	// MaxChannels is the most channels one login is in. A JOIN the user asks for beyond it is
	// refused; one the server forces on the connection is parted again.
	MaxChannels int `yaml:"max_channels"`
	// NewDMs bounds private chats opened by people the user has no room with yet: NewDMBurst at
	// once, then one more every NewDMInterval, and at most MaxDMs private chat rooms per login.
	// Messages from anyone beyond that wait in one "message requests" notice in the user's
	// management room (up to MaxDMRequests of them) until the user opens the chat with `pm`.
	NewDMBurst    int           `yaml:"new_dm_burst"`
	NewDMInterval time.Duration `yaml:"new_dm_interval"`
	MaxDMs        int           `yaml:"max_dms"`
	MaxDMRequests int           `yaml:"max_dm_requests"`
	// QueueInMemory is how many IRC events of one login wait in memory for the homeserver. Beyond
	// it, messages wait in the database only (they are spooled before anything else happens to
	// them) and are read back in order; other events (joins, parts, topics) are folded into one
	// resync of their room.
	QueueInMemory int `yaml:"queue_in_memory"`
	// MaxNicks bounds the nicks remembered per login (how each nick is spelt, for ghost names).
	MaxNicks int `yaml:"max_nicks"`
	// MaxBatchLines bounds the lines collected from one IRC batch (draft/multiline, a labeled
	// response); MaxOpenBatches the batches one connection may have open at once.
	MaxBatchLines  int `yaml:"max_batch_lines"`
	MaxOpenBatches int `yaml:"max_open_batches"`
}

// Defaults of the limits section.
const (
	DefaultMaxChannels    = 100
	DefaultNewDMBurst     = 5
	DefaultNewDMInterval  = 10 * time.Minute
	DefaultMaxDMs         = 200
	DefaultMaxDMRequests  = 100
	DefaultQueueInMemory  = 2000
	DefaultMaxNicks       = 10000
	DefaultMaxBatchLines  = 1000
	DefaultMaxOpenBatches = 16
)

// WithDefaults is l with every value left out set to its default.
func (l Limits) WithDefaults() Limits {
	l.applyDefaults()
	return l
}

func (l *Limits) applyDefaults() {
	for _, d := range []struct {
		v   *int
		def int
	}{
		{&l.MaxChannels, DefaultMaxChannels},
		{&l.NewDMBurst, DefaultNewDMBurst},
		{&l.MaxDMs, DefaultMaxDMs},
		{&l.MaxDMRequests, DefaultMaxDMRequests},
		{&l.QueueInMemory, DefaultQueueInMemory},
		{&l.MaxNicks, DefaultMaxNicks},
		{&l.MaxBatchLines, DefaultMaxBatchLines},
		{&l.MaxOpenBatches, DefaultMaxOpenBatches},
	} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if l.NewDMInterval == 0 {
		l.NewDMInterval = DefaultNewDMInterval
	}
}

func (l *Limits) validate() error {
	for _, v := range []struct {
		key string
		n   int
		min int
	}{
		{"max_channels", l.MaxChannels, 1},
		{"new_dm_burst", l.NewDMBurst, 1},
		{"max_dms", l.MaxDMs, 1},
		{"max_dm_requests", l.MaxDMRequests, 1},
		{"queue_in_memory", l.QueueInMemory, 10},
		{"max_nicks", l.MaxNicks, 100},
		{"max_batch_lines", l.MaxBatchLines, 10},
		{"max_open_batches", l.MaxOpenBatches, 1},
	} {
		if v.n < v.min {
			return fmt.Errorf("network.limits.%s: %d is too low; at least %d", v.key, v.n, v.min)
		}
	}
	if l.NewDMInterval < time.Second {
		return fmt.Errorf("network.limits.new_dm_interval: %s is too short; at least 1s (default %s)", l.NewDMInterval, DefaultNewDMInterval)
	}
	return nil
}
