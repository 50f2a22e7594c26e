package bridge

import (
	"maunium.net/go/mautrix/bridgev2/matrix/mxmain"

	"github.com/sealbridge/sealbridge/bridge/metrics"
)

// NewBridgeMain wires a new connector into mautrix's bridge main (config, registration, database,
// appservice, encryption), with decryption failures of incoming Matrix events counted (see
// bridge/metrics). cmd/sealbridge and the benchmark's bridge both start from it, so that the bench
// measures the bridge as shipped.
func NewBridgeMain(version string) (*mxmain.BridgeMain, *IRCConnector) {
	connector := NewConnector()
	m := &mxmain.BridgeMain{
		Name:        "sealbridge",
		Description: "An IRC bridge for Matrix with end-to-end encrypted portal rooms.",
		URL:         "https://github.com/sealbridge/sealbridge",
		Version:     version,
		Connector:   connector,
	}
	m.PostInit = func() {
		m.Matrix.Crypto = metrics.WrapCrypto(m.Matrix.Crypto, connector.Metrics)
	}
	return m, connector
}
