//go:build e2e

package faults

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// counts is one direction of one scenario. Sent is what the sending side had accepted (the
// homeserver answered with an event ID; the IRC server echoed the line back), delivered the
// distinct sequence numbers that reached the other side, lost the sent ones that never did,
// duplicated the extra copies, reordered the first copies that arrived after a later number.
type counts struct {
	Sent       int `json:"sent"`
	Delivered  int `json:"delivered"`
	Lost       int `json:"lost"`
	Duplicated int `json:"duplicated"`
	Reordered  int `json:"reordered"`
	// Not in results.json: delivered numbers the sender never saw accepted (e.g. an IRC echo cut
	// off by the restart), and events the Matrix client could not decrypt.
	Unconfirmed   int `json:"-"`
	Undecryptable int `json:"-"`
	// OnHomeserver (IRC->Matrix only; -1 when not counted) is how many events from the IRC peer's
	// ghost the homeserver stored during the scenario: more than delivered means the Matrix
	// client, not the bridge, missed the difference.
	OnHomeserver int `json:"-"`
	// SyncOnly (IRC->Matrix) is how many of the delivered numbers the Matrix client saw only in its
	// sync stream, not when it paged the room's history back with /messages (see addSyncOnly).
	SyncOnly int `json:"-"`
	// HomeserverDuplicated (Matrix->IRC only) is how many of the Matrix client's messages the
	// homeserver stored more than once; their IRC copies are not counted in Duplicated.
	HomeserverDuplicated int `json:"-"`
}

// splitHomeserverDuplicates recounts Duplicated (Matrix->IRC) as the IRC copies beyond the number
// of events the homeserver holds with that number, and counts those extra events.
func (c *counts) splitHomeserverDuplicates(got, onHomeserver []int) {
	c.Duplicated = len(extraCopies(got, onHomeserver))
	c.HomeserverDuplicated = len(onHomeserver) - len(distinct(onHomeserver))
}

// extraCopies lists the numbers in got once for each copy beyond what events allows (at least one).
func extraCopies(got, events []int) []int {
	allowed, seen := map[int]int{}, map[int]int{}
	for _, e := range events {
		allowed[e]++
	}
	var extra []int
	for _, g := range got {
		seen[g]++
		if seen[g] > max(1, allowed[g]) {
			extra = append(extra, g)
		}
	}
	return extra
}

// repeated lists (up to max) the numbers that occur more than once in xs, for the log.
func repeated(xs []int, max int) string {
	count := map[int]int{}
	var out []string
	for _, x := range xs {
		count[x]++
		if count[x] == 2 && len(out) < max {
			out = append(out, strconv.Itoa(x))
		}
	}
	return strings.Join(out, " ")
}

// addSyncOnly counts as delivered the numbers the Matrix client got through sync but not through
// /messages: the homeserver handed them to the client, so the bridge delivered them. (Collecting
// from /messages alone came up short by about 1 in 1,000 on Dendrite, while its own database held
// every event: its /messages steps back a whole depth at a page boundary and skips another event
// of the same depth, and its pages hold at most 100 events. Collecting from sync alone skipped
// events across a homeserver restart.)
func (c *counts) addSyncOnly(sent, collected, synced []int) {
	have, inSent := distinct(collected), distinct(sent)
	for s := range distinct(synced) {
		if have[s] {
			continue
		}
		c.SyncOnly++
		c.Delivered++
		if inSent[s] {
			c.Lost--
		} else {
			c.Unconfirmed++
		}
	}
}

func tally(sent, got []int) counts {
	c := counts{Sent: len(distinct(sent))}
	inSent := map[int]bool{}
	for _, s := range sent {
		inSent[s] = true
	}
	seen := map[int]bool{}
	maxSoFar := -1
	for _, g := range got {
		if seen[g] {
			c.Duplicated++
			continue
		}
		seen[g] = true
		c.Delivered++
		if !inSent[g] {
			c.Unconfirmed++
		}
		if g < maxSoFar {
			c.Reordered++
		}
		if g > maxSoFar {
			maxSoFar = g
		}
	}
	for s := range inSent {
		if !seen[s] {
			c.Lost++
		}
	}
	return c
}

func distinct(xs []int) map[int]bool {
	m := map[int]bool{}
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// missing lists (up to max) the sent numbers never delivered, as ranges, for the log.
func missing(sent, got []int, max int) string {
	have := distinct(got)
	var lost []int
	for s := range distinct(sent) {
		if !have[s] {
			lost = append(lost, s)
		}
	}
	sort.Ints(lost)
	var parts []string
	for i := 0; i < len(lost) && len(parts) < max; {
		j := i
		for j+1 < len(lost) && lost[j+1] == lost[j]+1 {
			j++
		}
		if i == j {
			parts = append(parts, fmt.Sprint(lost[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", lost[i], lost[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, " ")
}

type results map[string]map[string]counts

func (r results) table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-24s %-14s %7s %9s %6s %10s %9s %11s %5s %7s %9s %6s\n", "scenario", "direction", "sent", "delivered", "lost", "duplicated", "reordered", "unconfirmed", "utd", "on_hs", "sync_only", "hs_dup")
	var names []string
	for n := range r {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, d := range []string{"matrix_to_irc", "irc_to_matrix"} {
			c, ok := r[n][d]
			if !ok {
				continue
			}
			onHS, syncOnly, hsDup := "-", "-", "-"
			if d == "irc_to_matrix" {
				syncOnly = strconv.Itoa(c.SyncOnly)
				if c.OnHomeserver >= 0 {
					onHS = strconv.Itoa(c.OnHomeserver)
				}
			} else {
				hsDup = strconv.Itoa(c.HomeserverDuplicated)
			}
			fmt.Fprintf(&b, "%-24s %-14s %7d %9d %6d %10d %9d %11d %5d %7s %9s %6s\n", n, d, c.Sent, c.Delivered, c.Lost, c.Duplicated, c.Reordered, c.Unconfirmed, c.Undecryptable, onHS, syncOnly, hsDup)
		}
	}
	return b.String()
}

func (r results) write(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
