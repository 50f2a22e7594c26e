package irc

import (
	"reflect"
	"testing"
)

func TestCasefold(t *testing.T) {
	for _, tc := range []struct {
		mapping, in, want string
	}{
		{"ascii", "#Foo[]\\~^", "#foo[]\\~^"},
		{"rfc1459", "#Foo[]\\^", "#foo{}|~"},
		{"rfc1459-strict", "#Foo[]\\^", "#foo{}|^"},
		{"", "#FOO[", "#foo{"},
		{"unknown-mapping", "#FOO[", "#foo{"},
		{"rfc1459", "#foo", "#foo"},
		{"rfc1459", "ÄÖ#X", "ÄÖ#x"},
	} {
		if got := Casefold(tc.mapping, tc.in); got != tc.want {
			t.Errorf("Casefold(%q, %q) = %q, want %q", tc.mapping, tc.in, got, tc.want)
		}
	}
	same := func(mapping, a, b string) bool { return Casefold(mapping, a) == Casefold(mapping, b) }
	if !same("rfc1459", "#Foo[", "#foo{") || !same("rfc1459", "a~", "A^") {
		t.Error("rfc1459 must merge #Foo[ and #foo{, and ~ with ^")
	}
	if !same("rfc1459-strict", "#Foo[", "#foo{") || same("rfc1459-strict", "a~", "a^") {
		t.Error("rfc1459-strict must merge [ and { but not ~ and ^")
	}
	if same("ascii", "#Foo[", "#foo{") || !same("ascii", "#Foo", "#foo") {
		t.Error("ascii must fold letters only")
	}
}

func TestISupportParsing(t *testing.T) {
	is := defaultISupport()
	if is.CaseMapping != "rfc1459" || is.ChanTypes != "#&" || is.PrefixModes != "ov" || is.PrefixSymbols != "@+" {
		t.Fatalf("defaults %+v", is)
	}
	is.apply([]string{"CASEMAPPING=ascii", "CHANTYPES=#", "PREFIX=(qaohv)~&@%+", "NETWORK=Libera\\x2EChat", "LINELEN=2048", "EXCEPTS", "NICKLEN=30", "BAD=\\x00"})
	if is.CaseMapping != "ascii" || is.ChanTypes != "#" || is.PrefixModes != "qaohv" || is.PrefixSymbols != "~&@%+" || is.Network != "Libera.Chat" || is.LineLen != 2048 {
		t.Fatalf("parsed %+v", is)
	}
	if v, ok := is.Raw["EXCEPTS"]; !ok || v != "" || is.Raw["NICKLEN"] != "30" || is.Raw["BAD"] != "\\x00" {
		t.Fatalf("raw %v", is.Raw)
	}
	is.apply([]string{"-CASEMAPPING", "-PREFIX", "-EXCEPTS", "-LINELEN", "CHANTYPES="})
	if is.CaseMapping != "rfc1459" || is.PrefixModes != "ov" || is.LineLen != 0 || is.ChanTypes != "" {
		t.Fatalf("negated %+v", is)
	}
	if _, ok := is.Raw["EXCEPTS"]; ok {
		t.Fatal("EXCEPTS not negated")
	}
	// Malformed PREFIX keeps the default.
	is.apply([]string{"PREFIX=(ov)@"})
	if is.PrefixModes != "ov" || is.PrefixSymbols != "@+" {
		t.Fatalf("bad prefix %+v", is)
	}
	c := is.clone()
	c.Raw["X"] = "y"
	if _, ok := is.Raw["X"]; ok {
		t.Fatal("clone shares Raw")
	}
}

func TestClientISupportAndCasefold(t *testing.T) {
	for _, tc := range []struct {
		mapping  string
		sameRoom bool
	}{
		{"rfc1459", true},
		{"rfc1459-strict", true},
		{"ascii", false},
	} {
		t.Run(tc.mapping, func(t *testing.T) {
			srv := newFakeServer(t)
			c := New(testConfig(srv), newRecHandler(), testLogger(t))
			defer c.Close()
			res := connectAsync(c)
			fc := srv.accept()
			fc.expectRegistration("bridge")
			fc.registerNoCapsAfterOpeningWith("bridge", "CASEMAPPING="+tc.mapping+" CHANTYPES=#& PREFIX=(ov)@+ NETWORK=Net")
			if err := waitErr(t, res); err != nil {
				t.Fatal(err)
			}
			if got := c.ISupport().CaseMapping; got != tc.mapping {
				t.Fatalf("mapping %q", got)
			}
			if (c.Casefold("#Foo[") == c.Casefold("#foo{")) != tc.sameRoom {
				t.Fatalf("%s: #Foo[ %q vs #foo{ %q", tc.mapping, c.Casefold("#Foo["), c.Casefold("#foo{"))
			}
			if c.Casefold("#FOO") != "#foo" {
				t.Fatal("letters not folded")
			}
			if !c.IsChannel("#a") || !c.IsChannel("&a") || c.IsChannel("nick") || c.IsChannel("") {
				t.Fatal("IsChannel")
			}
			if c.ISupport().Network != "Net" {
				t.Fatal("network")
			}
			// ISUPPORT changes after registration apply too.
			fc.send(":irc.test 005 bridge -NETWORK CHANTYPES=! :are supported")
			fc.barrier()
			if is := c.ISupport(); is.Network != "" || is.ChanTypes != "!" {
				t.Fatalf("%+v", is)
			}
		})
	}
}

func TestCapHelpers(t *testing.T) {
	caps := parseCapList("sasl=PLAIN,EXTERNAL draft/multiline=max-bytes=4096 foo")
	want := map[string]string{"sasl": "PLAIN,EXTERNAL", "draft/multiline": "max-bytes=4096", "foo": ""}
	if !reflect.DeepEqual(caps, want) {
		t.Fatalf("%v", caps)
	}
	if !saslMechanismOffered("", "PLAIN") || !saslMechanismOffered("EXTERNAL,plain", "PLAIN") || saslMechanismOffered("EXTERNAL", "PLAIN") {
		t.Fatal("saslMechanismOffered")
	}
	var many []string
	for i := 0; i < 100; i++ {
		many = append(many, "some-long-capability-name")
	}
	for _, l := range chunkCaps(many) {
		if len(l) > 400 {
			t.Fatalf("chunk of %d bytes", len(l))
		}
	}
}
