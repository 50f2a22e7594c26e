package bridge

import (
	"crypto/sha256"
	"encoding/base64"
	"testing"
	"time"

	"github.com/sealbridge/sealbridge/bridge/irc"
)

func TestCasemappedPortalIDs(t *testing.T) {
	for _, tc := range []struct {
		mapping, a, b string
		same          bool
	}{
		{"rfc1459", "#Foo", "#foo", true},
		{"rfc1459", "#foo[", "#foo{", true},
		{"rfc1459", "#a\\b", "#a|b", true},
		{"rfc1459", "#x~", "#x^", true},
		{"rfc1459-strict", "#x~", "#x^", false},
		{"rfc1459-strict", "#foo[", "#FOO{", true},
		{"ascii", "#foo[", "#foo{", false},
		{"ascii", "#FOO", "#foo", true},
	} {
		ka := MakeChannelPortalKey("net", irc.Casefold(tc.mapping, tc.a))
		kb := MakeChannelPortalKey("net", irc.Casefold(tc.mapping, tc.b))
		if (ka == kb) != tc.same {
			t.Errorf("%s: %q vs %q: same portal = %v, want %v", tc.mapping, tc.a, tc.b, ka == kb, tc.same)
		}
	}
}

func TestIDRoundTripAndSeparation(t *testing.T) {
	uid := MakeUserID("libera", "nick[1]")
	network, nick, ok := ParseUserID(uid)
	if !ok || network != "libera" || nick != "nick[1]" {
		t.Fatalf("ParseUserID(%q) = %q %q %v", uid, network, nick, ok)
	}
	ch := MakeChannelPortalKey("libera", "#a/b")
	if n, target, ok := ParsePortalID(ch.ID); !ok || n != "libera" || target != "#a/b" || ch.Receiver != "" {
		t.Fatalf("channel portal %+v parsed as %q %q %v", ch, n, target, ok)
	}
	dmA := MakeDMPortalKey("libera", "bob", MakeUserLoginID("libera", "@a:x"))
	dmB := MakeDMPortalKey("libera", "bob", MakeUserLoginID("libera", "@b:x"))
	if dmA == dmB {
		t.Fatal("DM portals of two logins with the same nick collide")
	}
	if MakeChannelPortalKey("one", "#c") == MakeChannelPortalKey("two", "#c") {
		t.Fatal("same channel on two networks collides")
	}
	if _, _, ok := ParseUserID("nonetwork"); ok {
		t.Fatal("ID without separator parsed")
	}
}

func TestMessageIDs(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	if got := MakeMessageID(nil, "n", "#c", "a", "abc", at, "hi"); got != "n/abc" {
		t.Errorf("msgid ID = %q", got)
	}
	a := MakeMessageID(nil, "n", "#c", "a", "", at, "hi")
	if a != MakeMessageID(nil, "n", "#c", "a", "", at, "hi") {
		t.Error("fallback ID is not deterministic")
	}
	for _, other := range []string{
		string(MakeMessageID(nil, "n", "#c", "a", "", at, "hi!")),
		string(MakeMessageID(nil, "n", "#c", "b", "", at, "hi")),
		string(MakeMessageID(nil, "n", "#d", "a", "", at, "hi")),
		string(MakeMessageID(nil, "n", "#c", "a", "", at.Add(time.Millisecond), "hi")),
		// The separator keeps ("ab","c") apart from ("a","bc").
		string(MakeMessageID(nil, "n", "#c", "", "", at, "ahi")),
	} {
		if other == string(a) {
			t.Errorf("fallback IDs collide: %q", other)
		}
	}
}

// A message without a msgid gets an ID keyed by the bridge's secret: the homeserver (which stores
// message IDs in the clear) cannot confirm a guess of the text by hashing it.
func TestFallbackMessageIDIsKeyed(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a := MakeMessageID([]byte("key one"), "n", "#c", "a", "", at, "the secret plan")
	b := MakeMessageID([]byte("key two"), "n", "#c", "a", "", at, "the secret plan")
	if a == b {
		t.Fatal("the fallback ID does not depend on the key")
	}
	if a != MakeMessageID([]byte("key one"), "n", "#c", "a", "", at, "the secret plan") {
		t.Fatal("the fallback ID is not deterministic under one key")
	}
	h := sha256.New()
	for _, part := range []string{"n", "#c", "a", at.UTC().Format(time.RFC3339Nano), "the secret plan"} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	if unkeyed := "n/h:" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:18]); string(a) == unkeyed {
		t.Fatal("the fallback ID is the unkeyed hash of the text")
	}
}
