package bridge

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"maunium.net/go/mautrix/appservice"
)

// Requests sent at once to the homeserver reuse the connections of the last such round instead of
// dialing new ones (Go's default keeps only 2 idle).
func TestHomeserverConnectionsAreReused(t *testing.T) {
	var dials atomic.Int64
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond) // the requests overlap
	}))
	hs.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			dials.Add(1)
		}
	}
	hs.Start()
	defer hs.Close()
	as := appservice.Create()
	poolHomeserverConnections(as)
	round := func() {
		var wg sync.WaitGroup
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := as.HTTPClient.Get(hs.URL)
				if err != nil {
					t.Error(err)
					return
				}
				_ = resp.Body.Close()
			}()
		}
		wg.Wait()
	}
	round()
	first := dials.Load()
	round()
	if again := dials.Load() - first; again > 0 {
		t.Fatalf("the second round dialed %d new connections (the first %d)", again, first)
	}
}
