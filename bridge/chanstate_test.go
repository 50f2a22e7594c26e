package bridge

import "testing"

func TestParseNamesEntry(t *testing.T) {
	for _, tc := range []struct{ entry, nick, modes string }{
		{"alice", "alice", ""},
		{"@bob", "bob", "o"},
		{"@+carol", "carol", "ov"},
		{"+dave!d@host.example", "dave", "v"},
		{"~&@%+eve", "eve", "qaohv"},
		{"[weird]|nick", "[weird]|nick", ""},
	} {
		nick, modes := parseNamesEntry(tc.entry, "qaohv", "~&@%+")
		if nick != tc.nick || modes != tc.modes {
			t.Errorf("%q -> %q %q, want %q %q", tc.entry, nick, modes, tc.nick, tc.modes)
		}
	}
	// A server whose PREFIX lacks a symbol must not strip it.
	if nick, modes := parseNamesEntry("%x", "ov", "@+"); nick != "%x" || modes != "" {
		t.Errorf("unknown prefix stripped: %q %q", nick, modes)
	}
}

func TestPowerLevel(t *testing.T) {
	for modes, want := range map[string]int{"": 0, "v": 10, "h": 25, "o": 50, "ov": 50, "a": 95, "qo": 95} {
		if got := powerLevel(modes); got != want {
			t.Errorf("powerLevel(%q) = %d, want %d", modes, got, want)
		}
	}
}
