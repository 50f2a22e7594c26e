//go:build e2e

package faults

import "testing"

// TestCountsSplitHomeserverDuplicates: IRC copies of a message the homeserver stored twice are not
// the bridge's duplicates; a third copy is.
func TestCountsSplitHomeserverDuplicates(t *testing.T) {
	sent := []int{0, 1, 2, 3}
	onIRC := []int{0, 1, 1, 2, 2, 2, 3}
	onHS := []int{0, 1, 1, 2, 3}
	c := tally(sent, onIRC)
	if c.Duplicated != 3 || c.Lost != 0 || c.Delivered != 4 {
		t.Fatalf("tally: %+v", c)
	}
	c.splitHomeserverDuplicates(onIRC, onHS)
	if c.Duplicated != 2 || c.HomeserverDuplicated != 1 {
		t.Errorf("after the split: duplicated %d (want 2: one copy of 1 is the homeserver's), homeserver %d (want 1)", c.Duplicated, c.HomeserverDuplicated)
	}
	if got := repeated(extraCopies(onIRC, onHS), 5); got != "2" {
		t.Errorf("the bridge's extra copies: %q, want \"2\"", got)
	}
}
