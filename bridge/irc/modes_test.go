package irc

import (
	"reflect"
	"strings"
	"testing"
)

func inspircdISupport() ISupport {
	is := defaultISupport()
	is.apply([]string{"PREFIX=(Yqaohv)!~&@%+", "CHANMODES=IXbeg,k,FHJLfjl,ACKMNOPQRSTcimnprstz"})
	return is
}

func TestParseChannelModes(t *testing.T) {
	is := inspircdISupport()
	tests := []struct {
		line string
		want string
	}{
		// Multi-mode lines: every parameter goes to the mode that takes it.
		{"+ov-v alice bob carol", "+o=alice +v=bob -v=carol"},
		{"+bo *!*@evil.example alice", "+b=*!*@evil.example +o=alice"},
		{"+kol secret alice 10", "+k=secret +o=alice +l=10"},
		// -l takes no parameter, so alice stays with +o.
		{"-l+o alice", "-l +o=alice"},
		{"+l-o 5 alice", "+l=5 -o=alice"},
		{"+imnt", "+i +m +n +t"},
		{"+qah owner admin half", "+q=owner +a=admin +h=half"},
		// A missing parameter is never borrowed from elsewhere.
		{"+o", ""},
		{"+b", ""},
		{"+vo alice", "+v=alice"},
		// An unknown letter takes nothing.
		{"+Wo alice", "+W +o=alice"},
	}
	for _, tt := range tests {
		got := ParseChannelModes(is, strings.Fields(tt.line))
		var parts []string
		for _, c := range got {
			s := "-"
			if c.Set {
				s = "+"
			}
			s += string(c.Mode)
			if c.Param != "" {
				s += "=" + c.Param
			}
			parts = append(parts, s)
			if c.Prefix != (strings.IndexByte(is.PrefixModes, c.Mode) >= 0) {
				t.Errorf("%q: %c Prefix=%v", tt.line, c.Mode, c.Prefix)
			}
		}
		if g := strings.Join(parts, " "); g != tt.want {
			t.Errorf("%q: got %q, want %q", tt.line, g, tt.want)
		}
	}
}

func TestChanModesDefault(t *testing.T) {
	got := defaultISupport().ChanModes()
	if want := (ChanModes{A: "beI", B: "k", C: "l", D: "imnpst"}); !reflect.DeepEqual(got, want) {
		t.Fatalf("default CHANMODES %+v, want %+v", got, want)
	}
}
