package bridge

import (
	"net/http"

	"maunium.net/go/mautrix/appservice"
)

// homeserverConns is how many connections to the homeserver the bridge opens at most, and keeps
// open for reuse. Go's default transport keeps 2 idle per host and opens as many as requests run
// at once, so while more portals than that send at once (a reconnect of many logins, a burst of
// lines in many rooms) every further request dialed a new connection, with its buffers and
// goroutines, and closed it again afterwards: thirty thousand dials in a restart of 10,000
// logins. Beyond the bound a request waits for a connection to be free; the homeserver would not
// answer more at once any faster.
const homeserverConns = 64

// poolHomeserverConnections bounds the appservice's HTTP client to homeserverConns connections to
// the homeserver and lets it keep them all idle (on a copy of Go's default transport, or on the
// transport mautrix set up for a unix socket).
func poolHomeserverConnections(as *appservice.AppService) {
	if as == nil || as.HTTPClient == nil {
		return
	}
	switch t := as.HTTPClient.Transport.(type) {
	case nil:
		tr := http.DefaultTransport.(*http.Transport).Clone()
		boundConns(tr)
		as.HTTPClient.Transport = tr
	case *http.Transport:
		boundConns(t)
	}
}

func boundConns(t *http.Transport) {
	t.MaxConnsPerHost = homeserverConns
	t.MaxIdleConnsPerHost = homeserverConns
	t.MaxIdleConns = max(t.MaxIdleConns, homeserverConns)
}
