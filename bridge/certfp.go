package bridge

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
	"github.com/rs/zerolog"

	"github.com/sealbridge/sealbridge/bridge/irc"
	"github.com/sealbridge/sealbridge/config"
	"github.com/sealbridge/sealbridge/sbdb"
)

// CertFP logins (flow "certfp"): the bridge makes a client certificate for the login, adds its
// fingerprint to the user's services account once, over a connection logged in with the account's
// password (NickServ CERT ADD), and from then on logs in with SASL EXTERNAL. The password is used
// for that one connection and never stored; the certificate's key is sealed like a password.

// certAddTimeout bounds each wait for NickServ's answer to CERT ADD.
const certAddTimeout = 15 * time.Second

// newCertFP makes the login's certificate and stores it in meta (the key sealed for loginID).
func (c *IRCConnector) newCertFP(meta *sbdb.UserLoginMetadata, loginID string) (tls.Certificate, error) {
	certDER, keyDER, err := irc.NewClientCert("sealbridge " + meta.Nick)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("failed to make a client certificate: %w", err)
	}
	sealed, err := c.sealSecret(base64.StdEncoding.EncodeToString(keyDER), loginID, meta)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("failed to seal the certificate key: %w", err)
	}
	meta.ClientCert, meta.ClientKey = base64.StdEncoding.EncodeToString(certDER), sealed
	return irc.ClientCert(certDER, keyDER)
}

// openCertFP unseals a login's certificate; ok is false for logins without one.
func (c *IRCConnector) openCertFP(meta *sbdb.UserLoginMetadata, loginID string) (cert tls.Certificate, ok bool, err error) {
	if meta.ClientCert == "" {
		return tls.Certificate{}, false, nil
	}
	certDER, err := base64.StdEncoding.DecodeString(meta.ClientCert)
	if err != nil {
		return tls.Certificate{}, true, fmt.Errorf("stored client certificate: %w", err)
	}
	keyB64, _, err := c.openSecret(meta.ClientKey, loginID, meta)
	if err != nil {
		return tls.Certificate{}, true, err
	}
	keyDER, err := base64.StdEncoding.DecodeString(keyB64)
	if err != nil {
		return tls.Certificate{}, true, fmt.Errorf("stored client certificate key: %w", err)
	}
	cert, err = irc.ClientCert(certDER, keyDER)
	return cert, true, err
}

// fingerprints of a login's certificate, or ok false without one.
func certFingerprints(meta *sbdb.UserLoginMetadata) (irc.Fingerprints, bool) {
	der, err := base64.StdEncoding.DecodeString(meta.ClientCert)
	if meta.ClientCert == "" || err != nil {
		return irc.Fingerprints{}, false
	}
	return irc.CertFingerprints(der), true
}

// errCertAdd is NickServ refusing (or not answering) CERT ADD.
var errCertAdd = errors.New("NickServ did not add the certificate")

// addCertFingerprint connects to network presenting cert, logs in to account with SASL PLAIN and
// asks NickServ to add the connection's fingerprint: "CERT ADD" (Anope and Atheme add the current
// one), then, if refused, "CERT ADD <sha256>" (services that want it spelt out, like ergo's).
func addCertFingerprint(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), network *config.Network, nick, account, password string, cert tls.Certificate, log zerolog.Logger) error {
	der := cert.Certificate[0]
	tc := tlsConfig(network, log)
	tc.Certificates = []tls.Certificate{cert}
	h := &certAddHandler{answers: make(chan string, 8)}
	cfg := irc.Config{
		Addr: network.HostPort(), TLS: true, TLSConfig: tc, ServerPassword: network.Password,
		Nick: nick, NickFallback: true, SASLUser: account, SASLPassword: password,
		Flood: irc.FloodConfig{Burst: network.Flood.Burst, LinesPerSecond: network.Flood.LinesPerSecond},
		Dial:  dial,
	}
	conn := irc.New(cfg, h, log.With().Str("component", "irc-certfp").Logger())
	defer conn.Close()
	if err := conn.Connect(ctx); err != nil {
		return err
	}
	var first string
	for _, args := range [][]string{{"CERT ADD"}, {"CERT ADD " + irc.CertFingerprints(der).SHA256}} {
		h.drain() // notices from before the command (a greeting on login) are not its answer
		if err := conn.Send("PRIVMSG", "NickServ", args[0]); err != nil {
			return err
		}
		answer, err := h.wait(ctx)
		if err != nil {
			return err
		}
		if certAdded(answer) {
			return nil
		}
		if first == "" {
			first = answer
		}
	}
	return fmt.Errorf("%w: %s", errCertAdd, first)
}

// certAdded recognises NickServ's answers that the fingerprint is now on the account.
func certAdded(text string) bool {
	t := strings.ToLower(text)
	return (strings.Contains(t, "added") || strings.Contains(t, "already")) && !strings.Contains(t, "not ")
}

// certAddHandler passes NickServ's notices on to addCertFingerprint.
type certAddHandler struct{ answers chan string }

func (h *certAddHandler) OnConnected(*irc.Client)                 {}
func (h *certAddHandler) OnDisconnected(*irc.Client, error, bool) {}
func (h *certAddHandler) OnMessage(_ *irc.Client, msg *ircmsg.Message, _ time.Time) {
	if msg.Command == "NOTICE" && strings.EqualFold(msg.Nick(), "NickServ") && len(msg.Params) > 1 {
		select {
		case h.answers <- msg.Params[len(msg.Params)-1]:
		default:
		}
	}
}

func (h *certAddHandler) drain() {
	for {
		select {
		case <-h.answers:
		default:
			return
		}
	}
}

func (h *certAddHandler) wait(ctx context.Context) (string, error) {
	t := time.NewTimer(certAddTimeout)
	defer t.Stop()
	select {
	case a := <-h.answers:
		return a, nil
	case <-t.C:
		return "", fmt.Errorf("%w: no answer from NickServ to CERT ADD", errCertAdd)
	case <-ctx.Done():
		return "", ctx.Err()
	}
}
