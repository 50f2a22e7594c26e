package bridge

import (
	"net/http"

	"maunium.net/go/mautrix/appservice"
)

// homeserverIdleConns is how many idle connections to the homeserver the bridge keeps for reuse.
// Go's default transport keeps 2 per host, so while more portals than that send at once (a
// reconnect of many logins, a burst of lines in many rooms) every further request dials a new
// connection and closes it again afterwards.
const homeserverIdleConns = 64

// poolHomeserverConnections lets the appservice's HTTP client keep homeserverIdleConns idle
// connections (on a copy of Go's default transport, or on the transport mautrix set up for a unix
// socket).
func poolHomeserverConnections(as *appservice.AppService) {
	if as == nil || as.HTTPClient == nil {
		return
	}
	switch t := as.HTTPClient.Transport.(type) {
	case nil:
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = homeserverIdleConns
		as.HTTPClient.Transport = tr
	case *http.Transport:
		t.MaxIdleConnsPerHost = homeserverIdleConns
	}
}
