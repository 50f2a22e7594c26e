package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// world is the child process that plays everything around the bridge: the fake homeserver, the fake
// IRC server and the fake Matrix user's device. One process, one clock: IRC write times and
// homeserver arrival times are compared directly. The parent drives it over HTTP (/_bench/...).
type world struct {
	hs     *fakeHS
	irc    *chanIRCd
	asURL  string // the bridge's appservice listener, for transactions
	hsAddr string
	client *http.Client

	rec  recorder
	recv privmsgLog
	dev  *fakeDevice
}

// recorder collects the arrival times of encrypted room events at the fake homeserver, per room.
type recorder struct {
	mu       sync.Mutex
	arrivals map[string][]time.Time // room name (lower case) -> arrivals in order
	total    int
	last     time.Time
	others   map[string]int // event type -> count, for the notes
}

func (r *recorder) reset() {
	r.mu.Lock()
	r.arrivals, r.total, r.others = map[string][]time.Time{}, 0, map[string]int{}
	r.mu.Unlock()
}

func (r *recorder) add(room *fakeRoom, evType string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = at
	if evType != "m.room.encrypted" {
		r.others[evType]++
		return
	}
	key := strings.ToLower(room.name)
	r.arrivals[key] = append(r.arrivals[key], at)
	r.total++
}

func (r *recorder) count() (int, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total, r.last
}

// privmsgLog collects the PRIVMSGs the bridge sends to IRC.
type privmsgLog struct {
	mu    sync.Mutex
	texts map[string]time.Time // text -> first arrival
	dups  int
	n     int
}

func (p *privmsgLog) reset() {
	p.mu.Lock()
	p.texts, p.dups, p.n = map[string]time.Time{}, 0, 0
	p.mu.Unlock()
}

func (p *privmsgLog) add(text string, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, dup := p.texts[text]; dup {
		p.dups++
		return
	}
	p.texts[text] = at
	p.n++
}

func (p *privmsgLog) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// runWorld is the world child: it prints "<homeserver URL> <IRC address>" and serves until killed.
func runWorld(o options) error {
	w := &world{
		hs:     newFakeHS(benchDomain, o.asToken, o.hsToken),
		irc:    newChanIRCd(o.ircTags),
		asURL:  o.asURL,
		client: &http.Client{Timeout: 120 * time.Second},
	}
	w.rec.reset()
	w.recv.reset()
	w.hs.onSend = w.rec.add
	w.irc.onPrivmsg = func(_, _, text string, at time.Time) { w.recv.add(text, at) }
	mux := http.NewServeMux()
	mux.HandleFunc("POST /_bench/force", w.handleForce)
	mux.HandleFunc("GET /_bench/state", w.handleState)
	mux.HandleFunc("POST /_bench/resetjoins", func(rw http.ResponseWriter, _ *http.Request) {
		w.irc.resetJoins()
		writeJSON(rw, 200, map[string]any{})
	})
	mux.HandleFunc("POST /_bench/drop", func(rw http.ResponseWriter, _ *http.Request) {
		writeJSON(rw, 200, map[string]any{"dropped": w.irc.drop()})
	})
	mux.HandleFunc("POST /_bench/irc2mx", w.handleIRCToMatrix)
	mux.HandleFunc("POST /_bench/probe", w.handleProbe)
	mux.HandleFunc("POST /_bench/mx2irc/prepare", w.handleMatrixToIRCPrepare)
	mux.HandleFunc("POST /_bench/mx2irc/run", w.handleMatrixToIRCRun)
	w.hs.bench = mux

	hsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	ircLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	w.hsAddr = hsLn.Addr().String()
	go w.irc.serve(ircLn)
	fmt.Printf("http://%s %s\n", hsLn.Addr(), ircLn.Addr())
	srv := &http.Server{Handler: w.hs}
	return srv.Serve(hsLn)
}

// handleForce makes the registered ?nick= join ?n= channels named #?prefix0..n-1, or the
// ?channel= ones.
func (w *world) handleForce(rw http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if chans := q["channel"]; len(chans) > 0 {
		replyJSON(rw, map[string]any{}, w.irc.force(q.Get("nick"), chans))
		return
	}
	var n int
	_, _ = fmt.Sscan(q.Get("n"), &n)
	replyJSON(rw, map[string]any{}, w.irc.force(q.Get("nick"), channelNames(q.Get("prefix"), n)))
}

func channelNames(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("#%s%d", prefix, i)
	}
	return out
}

type worldState struct {
	Rooms   int   `json:"rooms"`
	Joins   int64 `json:"joins"`
	LastAt  int64 `json:"last_send_unix_nano"`    // the last room event sent
	LastReq int64 `json:"last_request_unix_nano"` // the bridge's last request of any kind
	Privmsg int   `json:"privmsgs"`
	Named   int   `json:"named"` // how many of the ?room= names have a room
	Welcome int64 `json:"registered"`
}

func (w *world) handleState(rw http.ResponseWriter, r *http.Request) {
	_, last := w.rec.count()
	st := worldState{Rooms: w.hs.roomCount(), Joins: w.irc.joins.Load(), LastAt: last.UnixNano(),
		LastReq: w.hs.lastReq.Load(), Privmsg: w.recv.count(), Welcome: w.irc.welcomed.Load()}
	for _, name := range r.URL.Query()["room"] {
		if w.hs.roomByName(name) != nil {
			st.Named++
		}
	}
	writeJSON(rw, 200, st)
}

// handleProbe writes one line into ?channel= and waits (up to ?timeout= s, default 120) for an
// encrypted event in its room; it returns the arrival time.
func (w *world) handleProbe(rw http.ResponseWriter, r *http.Request) {
	ch := r.URL.Query().Get("channel")
	room := w.hs.roomByName(ch)
	if room == nil {
		mxErr(rw, 400, "BENCH", "no room for "+ch)
		return
	}
	before := w.arrivalsIn(ch)
	if _, err := w.irc.speak(ch, "probe"); err != nil {
		mxErr(rw, 500, "BENCH", err.Error())
		return
	}
	timeout, _ := strconv.Atoi(r.URL.Query().Get("timeout"))
	if timeout == 0 {
		timeout = 120
	}
	deadline := time.Now().Add(time.Duration(timeout) * time.Second)
	for w.arrivalsIn(ch) == before {
		if time.Now().After(deadline) {
			mxErr(rw, 504, "BENCH", fmt.Sprintf("probe did not arrive within %d s", timeout))
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	w.rec.mu.Lock()
	a := w.rec.arrivals[strings.ToLower(ch)]
	at := a[len(a)-1]
	w.rec.mu.Unlock()
	writeJSON(rw, 200, map[string]int64{"at_unix_nano": at.UnixNano()})
}

func (w *world) arrivalsIn(ch string) int {
	w.rec.mu.Lock()
	defer w.rec.mu.Unlock()
	return len(w.rec.arrivals[strings.ToLower(ch)])
}

func replyJSON(rw http.ResponseWriter, v any, err error) {
	if err != nil {
		mxErr(rw, 500, "BENCH", err.Error())
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(rw).Encode(v)
}
