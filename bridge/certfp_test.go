package bridge

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
	"github.com/rs/zerolog"

	"github.com/sealbridge/sealbridge/bridge/irc"
	"github.com/sealbridge/sealbridge/config"
	"github.com/sealbridge/sealbridge/sbdb"
)

// certServer is a TLS IRC server with services that answer CERT ADD with answers[i] for the i-th
// CERT ADD, and records what it was sent and the client certificate's SHA-256 fingerprint.
type certServer struct {
	network *config.Network
	got     chan string // CERT ADD lines as received
	fp      chan string // fingerprint of the client certificate, once per connection
}

func newCertServer(t *testing.T, answers ...string) *certServer {
	t.Helper()
	caFile, serverCert := tlsTestCA(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequestClientCert})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	portN, _ := strconv.Atoi(port)
	s := &certServer{
		network: &config.Network{ID: "net", Address: host, Port: portN, TLSCAFile: caFile, Flood: config.Flood{Burst: 100, LinesPerSecond: 100}},
		got:     make(chan string, 4),
		fp:      make(chan string, 4),
	}
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		tc := conn.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			return
		}
		if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
			s.fp <- irc.CertFingerprints(certs[0].Raw).SHA256
		}
		r := bufio.NewScanner(conn)
		say := func(line string) { _, _ = conn.Write([]byte(line + "\r\n")) }
		n := 0
		for r.Scan() {
			msg, err := ircmsg.ParseLine(r.Text())
			if err != nil {
				continue
			}
			switch {
			case msg.Command == "CAP" && len(msg.Params) > 0 && msg.Params[0] == "LS":
				say(":irc.test CAP * LS :sasl=PLAIN,EXTERNAL")
			case msg.Command == "CAP" && len(msg.Params) > 0 && msg.Params[0] == "REQ":
				say(":irc.test CAP * ACK :sasl")
			case msg.Command == "AUTHENTICATE" && msg.Params[0] == "PLAIN":
				say("AUTHENTICATE +")
			case msg.Command == "AUTHENTICATE":
				say(":irc.test 900 me me!u@h acct :You are now logged in as acct")
				say(":irc.test 903 me :SASL authentication successful")
			case msg.Command == "CAP" && len(msg.Params) > 0 && msg.Params[0] == "END":
				say(":irc.test 001 me :Welcome")
				say(":irc.test 376 me :End of MOTD")
			case msg.Command == "PRIVMSG" && strings.HasPrefix(msg.Params[1], "CERT ADD"):
				s.got <- msg.Params[1]
				if n < len(answers) {
					say(":NickServ!s@services NOTICE me :" + answers[n])
				}
				n++
			}
		}
	}()
	return s
}

// The bridge presents its new certificate on the connection that logs in with the password, and
// takes NickServ's "added" as success; a refusal of both forms of CERT ADD is an error with
// NickServ's first answer.
func TestAddCertFingerprint(t *testing.T) {
	certDER, keyDER, err := irc.NewClientCert("test")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := irc.ClientCert(certDER, keyDER)
	if err != nil {
		t.Fatal(err)
	}
	want := irc.CertFingerprints(certDER).SHA256
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	s := newCertServer(t, "\x02"+want+"\x02 added to your certificate list.")
	if err := addCertFingerprint(ctx, nil, s.network, "me", "acct", "pw", cert, zerolog.Nop()); err != nil {
		t.Fatalf("CERT ADD accepted: %v", err)
	}
	if fp := <-s.fp; fp != want {
		t.Errorf("the connection presented %s, want the new certificate %s", fp, want)
	}
	if got := <-s.got; got != "CERT ADD" {
		t.Errorf("sent %q, want CERT ADD", got)
	}

	s = newCertServer(t, "You are not using a client certificate.", "Invalid parameters.")
	err = addCertFingerprint(ctx, nil, s.network, "me", "acct", "pw", cert, zerolog.Nop())
	if !errors.Is(err, errCertAdd) || !strings.Contains(err.Error(), "not using a client certificate") {
		t.Fatalf("CERT ADD refused: got %v", err)
	}
	<-s.got
	if got := <-s.got; got != "CERT ADD "+want {
		t.Errorf("second try %q, want the fingerprint spelt out", got)
	}
}

func TestCertAdded(t *testing.T) {
	for text, want := range map[string]bool{
		"\x02ab12\x02 added to your certificate list.":                  true, // Anope
		"Added fingerprint \x02ab12\x02 to your fingerprint list.":      true, // Atheme
		"Fingerprint ab12 already present on your certificate list.":    true,
		"Certificate fingerprint successfully added":                    true, // ergo
		"You are not using a client certificate.":                       false,
		"Your certificate list is full.":                                false,
		"Unknown command \x02CERT\x02. \"/msg NickServ HELP\" for help": false,
		"Fingerprint could not be added: not logged in":                 false,
	} {
		if got := certAdded(text); got != want {
			t.Errorf("certAdded(%q) = %v, want %v", text, got, want)
		}
	}
}

// The certificate's key is sealed at rest and opens again for the same login only.
func TestCertFPSealedAtRest(t *testing.T) {
	c := NewConnector()
	key := make([]byte, 32)
	var err error
	if c.sealer, err = sbdb.NewSealer(key); err != nil {
		t.Fatal(err)
	}
	meta := &sbdb.UserLoginMetadata{Nick: "me"}
	made, err := c.newCertFP(meta, "net:@a:example.org")
	if err != nil {
		t.Fatal(err)
	}
	if meta.ClientCert == "" || meta.ClientKey == "" || strings.Contains(meta.ClientKey, "PRIVATE") {
		t.Fatalf("metadata %+v", meta)
	}
	opened, ok, err := c.openCertFP(meta, "net:@a:example.org")
	if err != nil || !ok {
		t.Fatalf("open: %v %v", ok, err)
	}
	if !opened.PrivateKey.(*ecdsa.PrivateKey).Equal(made.PrivateKey) {
		t.Error("the key changed at rest")
	}
	if _, _, err := c.openCertFP(meta, "net:@b:example.org"); err == nil {
		t.Error("another login opened the key")
	}
	if _, ok, _ := c.openCertFP(&sbdb.UserLoginMetadata{}, "x"); ok {
		t.Error("a login without a certificate has one")
	}
}

// tlsTestCA writes a CA to a file and returns it with a server certificate for 127.0.0.1.
func tlsTestCA(t *testing.T) (caFile string, cert tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ = x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "irc.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return caFile, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
