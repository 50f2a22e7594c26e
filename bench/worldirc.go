package main

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ircToMatrixResult is one IRC->Matrix run as the world saw it.
type ircToMatrixResult struct {
	Sent       int     `json:"sent"`
	Arrived    int     `json:"arrived"`
	FirstSend  int64   `json:"first_send_unix_nano"`
	LastArrive int64   `json:"last_arrival_unix_nano"`
	MsgsPerS   float64 `json:"msgs_per_s"`
	P50MS      float64 `json:"p50_ms"`
	P99MS      float64 `json:"p99_ms"`
	MaxMS      float64 `json:"max_ms"`
	Others     string  `json:"others"` // non-encrypted sends during the run
}

// handleIRCToMatrix: "speaker" writes ?n= PRIVMSGs round-robin into ?channels= channels named
// #?prefix0.. at ?rate= lines/s (0: as fast as the socket takes them) and the world waits until as
// many m.room.encrypted events arrived at the fake homeserver (timeout ?timeout= s). Messages of one
// channel reach its room in order, so the k-th arrival in a room pairs with the k-th line written to
// its channel: latency = arrival − write, on this process's clock. With ?warm=1 nothing is measured:
// one line per channel, then the world waits until the homeserver is quiet for 500 ms.
func (w *world) handleIRCToMatrix(rw http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	n, _ := strconv.Atoi(q.Get("n"))
	nch, _ := strconv.Atoi(q.Get("channels"))
	rate, _ := strconv.ParseFloat(q.Get("rate"), 64)
	timeout, _ := strconv.Atoi(q.Get("timeout"))
	if timeout == 0 {
		timeout = 300
	}
	chans := channelNames(q.Get("prefix"), nch)
	for _, ch := range chans {
		if w.hs.roomByName(ch) == nil {
			mxErr(rw, 400, "BENCH", "no portal room for "+ch)
			return
		}
	}
	if q.Get("warm") == "1" {
		replyJSON(rw, map[string]any{}, w.warmIRC(chans))
		return
	}
	res, err := w.floodIRC(chans, n, rate, time.Duration(timeout)*time.Second)
	replyJSON(rw, res, err)
}

func (w *world) warmIRC(chans []string) error {
	w.rec.reset()
	for _, ch := range chans {
		if _, err := w.irc.speak(ch, "warm-up"); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(120 * time.Second)
	for {
		total, last := w.rec.count()
		if total >= len(chans) && time.Since(last) > 500*time.Millisecond {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("warm-up: %d of %d lines arrived in 120 s", total, len(chans))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (w *world) floodIRC(chans []string, n int, rate float64, timeout time.Duration) (*ircToMatrixResult, error) {
	w.rec.reset()
	sent := make(map[string][]time.Time, len(chans))
	start := time.Now()
	for i := range n {
		if rate > 0 {
			if d := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))); d > 0 {
				time.Sleep(d)
			}
		}
		ch := chans[i%len(chans)]
		at, err := w.irc.speak(ch, "bench-i-"+strconv.Itoa(i))
		if err != nil {
			return nil, err
		}
		sent[strings.ToLower(ch)] = append(sent[strings.ToLower(ch)], at)
	}
	deadline := time.Now().Add(timeout)
	for {
		total, _ := w.rec.count()
		if total >= n {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d messages arrived within %s", total, n, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // anything more would be a duplicate
	w.rec.mu.Lock()
	defer w.rec.mu.Unlock()
	res := &ircToMatrixResult{Sent: n, Arrived: w.rec.total}
	var lat []float64
	var first, last time.Time
	for key, writes := range sent {
		arr := w.rec.arrivals[key]
		for k := range min(len(writes), len(arr)) {
			lat = append(lat, float64(arr[k].Sub(writes[k]))/float64(time.Millisecond))
			if first.IsZero() || writes[k].Before(first) {
				first = writes[k]
			}
			if arr[k].After(last) {
				last = arr[k]
			}
		}
	}
	slices.Sort(lat)
	res.FirstSend, res.LastArrive = first.UnixNano(), last.UnixNano()
	res.MsgsPerS = float64(n) / last.Sub(first).Seconds()
	res.P50MS, res.P99MS, res.MaxMS = percentile(lat, 50), percentile(lat, 99), lat[len(lat)-1]
	res.Others = fmt.Sprint(w.rec.others)
	return res, nil
}

// percentile of sorted values (nearest rank).
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
