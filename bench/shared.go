package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/sealbridge/sealbridge/test/stack"
)

// sharedSizes are the K of shared_channel_us_per_line_k*: how many logins sit in one channel.
var sharedSizes = []int{1, 10, 100}

// runSharedPhase measures shared_channel_us_per_line_k1/_k10/_k100: the bridge's CPU per IRC line
// said into a channel that K of its logins are in (each login reads its own copy of the line, as on
// a real network). One bridge, SQLite, a fake IRC server that offers message-tags and gives every
// line a msgid (the same in every copy, as servers with message-tags do). Logins l0..l99 log in;
// login i joins channel #kK-0 for every K > i, so #k1-0 has one login, #k10-0 ten and #k100-0 a
// hundred. Per channel: one warm-up line, then o.sharedLines lines at wire speed; the CPU is taken
// from the first line until every line has arrived at the homeserver and the bridge is idle again
// (under 2 % of a core over a second), so work on the extra copies after delivery is counted too.
func runSharedPhase(o options, r *results) ([]string, error) {
	env, err := startBridgeEnv(envOptions{ircTags: true})
	if err != nil {
		return nil, err
	}
	defer env.close()
	b := env.bridge
	maxK := sharedSizes[len(sharedSizes)-1]
	start := time.Now()
	if err := forEach(maxK, 4, func(i int) error {
		return b.login(fmt.Sprintf("@k%d:%s", i, benchDomain), fmt.Sprintf("k%d", i))
	}); err != nil {
		return nil, err
	}
	for i := range maxK {
		for _, k := range sharedSizes {
			if i >= k {
				continue
			}
			q := url.Values{"nick": {fmt.Sprintf("k%d", i)}, "channel": {sharedChannel(k)}}
			if err := env.world.call(http.MethodPost, "force", q, nil); err != nil {
				return nil, err
			}
		}
	}
	if err := env.waitRoomsNamed(sharedSizes, 10*time.Minute); err != nil {
		return nil, err
	}
	if err := env.waitQuiet(3*time.Second, 20*time.Minute); err != nil {
		return nil, err
	}
	notes := []string{fmt.Sprintf("shared channels: %d logins logged in and joined in %s", maxK, time.Since(start).Round(time.Second))}
	for _, k := range sharedSizes {
		q := url.Values{"channels": {"1"}, "prefix": {fmt.Sprintf("k%d-", k)}}
		if err := env.world.call(http.MethodPost, "irc2mx", with(q, "warm", 1), nil); err != nil {
			return notes, err
		}
		if err := b.waitIdle(5 * time.Minute); err != nil {
			return notes, err
		}
		var res ircToMatrixResult
		prof := startProfile(o.bridgeProfile, b.ctlAddr, fmt.Sprintf("shared_k%d", k))
		cpu, err := measureCPU(b, func() error {
			if err := env.world.call(http.MethodPost, "irc2mx", with(q, "n", o.sharedLines, "rate", 0), &res); err != nil {
				return err
			}
			return b.waitIdle(10 * time.Minute)
		})
		prof.finish()
		if err != nil {
			return notes, err
		}
		us := round2(float64(cpu.Microseconds()) / float64(o.sharedLines))
		switch k {
		case 1:
			r.SharedUSPerLineK1 = us
		case 10:
			r.SharedUSPerLineK10 = us
		case 100:
			r.SharedUSPerLineK100 = us
		}
		notes = append(notes, fmt.Sprintf("shared_channel_us_per_line_k%d: %d lines into %s (%d logins in it, each line read %d times), %d m.room.encrypted arrived (%d extra), %.0f msg/s, bridge CPU %s until idle",
			k, o.sharedLines, sharedChannel(k), k, k, res.Arrived, res.Arrived-o.sharedLines, res.MsgsPerS, cpu.Round(time.Millisecond)))
	}
	return notes, nil
}

func sharedChannel(k int) string { return fmt.Sprintf("#k%d-0", k) }

// waitRoomsNamed waits until the fake homeserver holds the room of every shared channel.
func (e *bridgeEnv) waitRoomsNamed(sizes []int, timeout time.Duration) error {
	names := make([]string, len(sizes))
	for i, k := range sizes {
		names[i] = sharedChannel(k)
	}
	deadline := time.Now().Add(timeout)
	for {
		var st worldState
		if err := e.world.call(http.MethodGet, "state", url.Values{"room": names}, &st); err != nil {
			return err
		}
		if st.Named == len(names) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of the rooms %v created within %s", st.Named, names, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitQuiet waits until the bridge has made no request to the fake homeserver for quiet.
func (e *bridgeEnv) waitQuiet(quiet, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := e.world.state()
		if err != nil {
			return err
		}
		if time.Since(time.Unix(0, st.LastReq)) > quiet {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the homeserver was still receiving events after %s", timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitIdle waits until the bridge child used under 2 % of a core over a second.
func (b *bridgeProc) waitIdle(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := stack.WaitProcessIdle(ctx, b.cmd.Process.Pid); err != nil {
		return fmt.Errorf("the bridge was not idle within %s: %w", timeout, err)
	}
	return nil
}
