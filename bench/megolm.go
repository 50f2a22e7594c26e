package main

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"maunium.net/go/mautrix/crypto/goolm/session"
)

// benchMegolm measures bare goolm Megolm: one outbound group session encrypts ops 256-byte
// plaintexts per round, and a fresh inbound session (built from the session key shared at the start
// of the round, as a receiving device would) decrypts them in order. It returns the median over
// rounds of the mean time per operation, in microseconds, and the per-round means. One warm-up round
// is not counted.
func benchMegolm(rounds, ops int) (encUS, decUS float64, encs, decs []float64, err error) {
	out, err := session.NewMegolmOutboundSession()
	if err != nil {
		return 0, 0, nil, nil, err
	}
	plain := make([]byte, 256)
	for i := range plain {
		plain[i] = 'a' + byte(i%26)
	}
	cts := make([][]byte, ops)
	for round := -1; round < rounds; round++ {
		in, err := session.NewMegolmInboundSession([]byte(out.Key()))
		if err != nil {
			return 0, 0, nil, nil, err
		}
		t0 := time.Now()
		for i := range cts {
			if cts[i], err = out.Encrypt(plain); err != nil {
				return 0, 0, nil, nil, err
			}
		}
		enc := time.Since(t0)
		t0 = time.Now()
		for i, ct := range cts {
			pt, _, err := in.Decrypt(ct)
			if err != nil {
				return 0, 0, nil, nil, fmt.Errorf("decrypt %d: %w", i, err)
			}
			if i == 0 && !bytes.Equal(pt, plain) {
				return 0, 0, nil, nil, fmt.Errorf("decrypt: plaintext mismatch")
			}
		}
		dec := time.Since(t0)
		if round >= 0 {
			encs = append(encs, us(enc)/float64(ops))
			decs = append(decs, us(dec)/float64(ops))
		}
	}
	return median(encs), median(decs), encs, decs, nil
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
