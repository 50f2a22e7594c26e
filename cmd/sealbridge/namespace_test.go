package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeHomeserver answers /register/available and /account/whoami the way Synapse does: names
// reserved by an appservice are M_EXCLUSIVE (errcode lets it answer as Dendrite, M_USER_IN_USE),
// and whoami accepts our appservice token when our registration is installed.
func fakeHomeserver(t *testing.T, reserved map[string]bool, errcode string, installed bool) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/_matrix/client/v3/register/available":
			if reserved[r.URL.Query().Get("username")] {
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"errcode":"` + errcode + `","error":"This user ID is reserved by an application service."}`))
				return
			}
			_, _ = w.Write([]byte(`{"available":true}`))
		case "/_matrix/client/v3/account/whoami":
			if r.Header.Get("Authorization") != "Bearer our-token" || !installed {
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"errcode":"M_UNKNOWN_TOKEN","error":"Unrecognised access token"}`))
				return
			}
			_, _ = w.Write([]byte(`{"user_id":"@random-sender:hs.test"}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func writeNamespaceConfig(t *testing.T, hsURL, asToken string) string {
	path := filepath.Join(t.TempDir(), "config.yaml")
	cfg := "homeserver:\n  address: " + hsURL + "\n  domain: hs.test\n" +
		"appservice:\n  as_token: " + asToken + "\n  bot:\n    username: sealbridgebot\n  username_template: sealbridge_{{.}}\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestNamespaceClash(t *testing.T) {
	reserved := map[string]bool{"sealbridgebot": true, "sealbridge_namespace-check": true}
	both := []string{"@sealbridgebot:hs.test is already reserved by another appservice", "@sealbridge_namespace-check:hs.test is already reserved"}
	cases := []struct {
		name      string
		reserved  map[string]bool
		errcode   string
		installed bool
		want      []string // what the warnings say
	}{
		{"free namespace", nil, "", false, nil},
		{"another appservice's (Synapse)", reserved, "M_EXCLUSIVE", false, both},
		{"another appservice's (Dendrite)", reserved, "M_USER_IN_USE", false, []string{
			"@sealbridgebot:hs.test is already taken (by an account, or by another appservice's namespace)",
			"@sealbridge_namespace-check:hs.test is already taken"}},
		{"only the bot's name taken", map[string]bool{"sealbridgebot": true}, "M_USER_IN_USE", false, []string{"@sealbridgebot:hs.test is already taken"}},
		{"our own registration, installed", reserved, "M_EXCLUSIVE", true, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := fakeHomeserver(t, c.reserved, c.errcode, c.installed)
			var out bytes.Buffer
			warnNamespaceClash(writeNamespaceConfig(t, srv.URL, "our-token"), &out)
			warnings := strings.Count(out.String(), "WARNING")
			if warnings != len(c.want) {
				t.Errorf("%d warnings, want %d:\n%s", warnings, len(c.want), out.String())
			}
			for _, w := range c.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("no warning %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestNamespaceCheckUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	var out bytes.Buffer
	warnNamespaceClash(writeNamespaceConfig(t, url, "x"), &out)
	if s := out.String(); !strings.HasPrefix(s, "Could not check") || strings.Contains(s, "WARNING") {
		t.Errorf("unreachable homeserver: %q, want one note that the check was skipped", s)
	}
}
