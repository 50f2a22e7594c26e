package metrics

import (
	"context"
	"errors"

	"maunium.net/go/mautrix/bridgev2/matrix"
	"maunium.net/go/mautrix/event"
)

// WrapCrypto counts failed decryptions of the bridge's Matrix crypto helper. mautrix retries an
// event whose key has not arrived yet ("no_session"); a count there that keeps growing, or any
// "other" failure, means users' devices are not sharing keys with the bridge.
func WrapCrypto(c matrix.Crypto, m *Metrics) matrix.Crypto {
	if c == nil {
		return nil
	}
	return &countingCrypto{Crypto: c, m: m}
}

type countingCrypto struct {
	matrix.Crypto
	m *Metrics
}

func (c *countingCrypto) Decrypt(ctx context.Context, evt *event.Event) (*event.Event, error) {
	decrypted, err := c.Crypto.Decrypt(ctx, evt)
	if err != nil {
		reason := "other"
		if errors.Is(err, matrix.NoSessionFound) {
			reason = "no_session"
		}
		c.m.DecryptionFailures.WithLabelValues(reason).Inc()
	}
	return decrypted, err
}
