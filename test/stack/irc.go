package stack

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"
)

//go:embed templates/inspircd.conf.tmpl
var inspircdTemplate string

//go:embed templates/anope.conf.tmpl
var anopeTemplate string

// Debian paths of the IRC servers (packages inspircd and anope).
const (
	inspircdBin     = "/usr/sbin/inspircd"
	anopeBin        = "/usr/sbin/anope"
	anopeModulesDir = "/usr/lib/anope"
	anopeLocaleDir  = "/usr/share/anope/locale"
)

// IRC is a running InspIRCd 3 server with Anope 2.0 services linked to it.
type IRC struct {
	Host         string // 127.0.0.1
	Port         int    // plain-text client port
	TLSPort      int    // TLS client port; certificate signed by CAFile for 127.0.0.1 and localhost
	CAFile       string // PEM of the per-run CA that signed the server certificate
	ServerName   string // InspIRCd's server name, irc.localhost
	ServicesName string // Anope's server name, services.localhost
	Network      string // NETWORK= in 005
	OperName     string // an IRC operator block: OPER OperName OperPassword
	OperPassword string
	// WebIRCPassword is the password of the server's WEBIRC gateway block (any host may use it).
	WebIRCPassword string
	Dir            string // configs, certificates, logs (inspircd.log, anope.log, anope/logs/)

	inspircd *process
	anope    *process
}

// Addr is Host:Port (plain text).
func (i *IRC) Addr() string { return net.JoinHostPort(i.Host, strconv.Itoa(i.Port)) }

// TLSAddr is Host:TLSPort.
func (i *IRC) TLSAddr() string { return net.JoinHostPort(i.Host, strconv.Itoa(i.TLSPort)) }

// TLSConfig returns a client configuration that trusts CAFile.
func (i *IRC) TLSConfig() (*tls.Config, error) {
	pemBytes, err := os.ReadFile(i.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("no certificate in %s", i.CAFile)
	}
	return &tls.Config{RootCAs: pool, ServerName: i.Host, MinVersion: tls.VersionTLS12}, nil
}

// StartIRC writes InspIRCd and Anope configurations and a CA plus server
// certificate into dir, starts InspIRCd (--nofork --runasroot) and then
// Anope (--nofork), and returns once the services have linked: when a
// client's CAP LS shows sasl with PLAIN in its mechanism list.
func StartIRC(ctx context.Context, dir string) (*IRC, error) {
	dir, err := absDir(dir)
	if err != nil {
		return nil, err
	}
	for _, f := range []string{inspircdBin, anopeBin, filepath.Join(anopeModulesDir, "modules", "inspircd3.so")} {
		if err := needFile(f); err != nil {
			return nil, err
		}
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	i := &IRC{
		Host:           "127.0.0.1",
		Port:           ports[0],
		TLSPort:        ports[1],
		CAFile:         filepath.Join(dir, "ca.pem"),
		ServerName:     "irc.localhost",
		ServicesName:   "services.localhost",
		Network:        "SealNet",
		OperName:       "admin",
		OperPassword:   randomHex(8),
		WebIRCPassword: randomHex(8),
		Dir:            dir,
	}
	certFile, keyFile := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	if err := writeCerts(i.CAFile, certFile, keyFile, []string{"localhost", i.ServerName}, []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}); err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}

	anopeDir := filepath.Join(dir, "anope")
	for _, d := range []string{anopeDir, filepath.Join(anopeDir, "db"), filepath.Join(anopeDir, "db", "backups"), filepath.Join(anopeDir, "logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	data := map[string]any{
		"ServerName":     i.ServerName,
		"ServicesName":   i.ServicesName,
		"Network":        i.Network,
		"Port":           i.Port,
		"TLSPort":        i.TLSPort,
		"LinkPort":       ports[2],
		"LinkPassword":   randomHex(12),
		"OperPassword":   i.OperPassword,
		"WebIRCPassword": i.WebIRCPassword,
		"CertFile":       certFile,
		"KeyFile":        keyFile,
		"Dir":            dir,
	}
	inspConf := filepath.Join(dir, "inspircd.conf")
	if err := renderFile(inspConf, inspircdTemplate, data); err != nil {
		return nil, err
	}
	if err := renderFile(filepath.Join(anopeDir, "services.conf"), anopeTemplate, data); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "anope.motd"), []byte("sealbridge test services\n"), 0o644); err != nil {
		return nil, err
	}

	i.inspircd, err = startProcess(ctx, dir, "inspircd", []string{
		inspircdBin, "--config", inspConf, "--nofork", "--runasroot", "--nopid",
	}, nil)
	if err != nil {
		return nil, err
	}
	if err := waitTCP(ctx, i.inspircd, i.Addr()); err != nil {
		i.Stop()
		return nil, err
	}
	i.anope, err = startProcess(ctx, dir, "anope", []string{
		anopeBin, "--nofork",
		"--confdir=" + anopeDir,
		"--dbdir=" + filepath.Join(anopeDir, "db"),
		"--logdir=" + filepath.Join(anopeDir, "logs"),
		"--modulesdir=" + anopeModulesDir,
		"--localedir=" + anopeLocaleDir,
		"--config=services.conf",
	}, func(cmd *exec.Cmd) {
		// Anope sleeps 3 s after a warning when both its uid and gid are 0
		// (src/init.cpp); as root, run it with gid nogroup instead.
		if os.Getuid() == 0 {
			cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 0, Gid: nogroupGID()}
		}
	})
	if err != nil {
		i.Stop()
		return nil, err
	}
	err = waitFor(ctx, i.anope, "Anope to link (sasl=PLAIN in CAP LS)", func(ctx context.Context) error {
		if i.inspircd.exited() {
			return fmt.Errorf("inspircd exited: %v\n%s", i.inspircd.waitErr, i.inspircd.logTail())
		}
		c, err := dialIRC(ctx, i.Addr(), nil)
		if err != nil {
			return err
		}
		defer c.Close()
		caps, err := c.capLS(ctx)
		if err != nil {
			return err
		}
		_ = c.send("QUIT")
		mechs, ok := caps["sasl"]
		if !ok {
			return errors.New("no sasl capability yet")
		}
		if !containsFold(strings.Split(mechs, ","), "PLAIN") {
			return fmt.Errorf("sasl=%s has no PLAIN", mechs)
		}
		return nil
	})
	if err != nil {
		i.Stop()
		return nil, err
	}
	return i, nil
}

// Stop stops Anope and InspIRCd. It is safe to call twice and after they
// died.
func (i *IRC) Stop() error {
	if i == nil {
		return nil
	}
	i.anope.stop(syscall.SIGTERM, 5*time.Second)
	i.inspircd.stop(syscall.SIGTERM, 5*time.Second)
	return nil
}

// RegisterAccount connects as nick over a raw plain-text connection,
// registers the nick with NickServ (REGISTER password email; no email
// confirmation is configured) and checks that services logged the
// connection in to the new account (numeric 900).
func (i *IRC) RegisterAccount(ctx context.Context, nick, password string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := dialIRC(ctx, i.Addr(), nil)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.register(ctx, nick, false); err != nil {
		return err
	}
	if err := c.send("PRIVMSG NickServ :REGISTER %s %s@example.com", password, nick); err != nil {
		return err
	}
	var registered, loggedIn bool
	_, err = c.until(ctx, func(m ircMsg) (bool, error) {
		switch {
		case m.Command == "NOTICE" && strings.EqualFold(m.Nick(), "NickServ"):
			text := m.Last()
			switch {
			case strings.Contains(text, "registered.") && !strings.Contains(text, "already"):
				registered = true
			case strings.Contains(text, "registered"), strings.Contains(text, "Please"),
				strings.Contains(text, "denied"), strings.Contains(text, "cannot"), strings.Contains(text, "must"):
				return false, fmt.Errorf("NickServ REGISTER %s: %s", nick, text)
			}
		case m.Command == "900": // RPL_LOGGEDIN from InspIRCd's services_account
			loggedIn = true
		}
		return registered && loggedIn, nil
	})
	if err != nil {
		return fmt.Errorf("register %s with NickServ: %w", nick, err)
	}
	_ = c.send("QUIT :registered")
	return nil
}

// AddCertFingerprint connects over TLS presenting cert, identifies to NickServ as nick with
// password and adds the certificate's fingerprint to the account (NickServ CERT ADD: Anope 2.0
// adds only the fingerprint of the connection it is sent on), so that a connection presenting
// cert can log in with SASL EXTERNAL.
func (i *IRC) AddCertFingerprint(ctx context.Context, nick, password string, cert tls.Certificate) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tc, err := i.TLSConfig()
	if err != nil {
		return err
	}
	tc.Certificates = []tls.Certificate{cert}
	c, err := dialIRC(ctx, i.TLSAddr(), tc)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.identifyAs(ctx, nick+"_cert", nick, password); err != nil {
		return err
	}
	err = c.nickServ(ctx, "CERT ADD", "added to")
	_ = c.send("QUIT :cert added")
	return err
}

// SetPassword changes the password of nick's services account (NickServ SET PASSWORD), as its
// owner would from another client.
func (i *IRC) SetPassword(ctx context.Context, nick, password, newPassword string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := dialIRC(ctx, i.Addr(), nil)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.identifyAs(ctx, nick+"_pw", nick, password); err != nil {
		return err
	}
	err = c.nickServ(ctx, "SET PASSWORD "+newPassword, "changed")
	_ = c.send("QUIT :password changed")
	return err
}

// identifyAs registers as nick and identifies to account's services account with password.
func (c *ircConn) identifyAs(ctx context.Context, nick, account, password string) error {
	if err := c.register(ctx, nick, false); err != nil {
		return err
	}
	if err := c.send("PRIVMSG NickServ :IDENTIFY %s %s", account, password); err != nil {
		return err
	}
	_, err := c.until(ctx, func(m ircMsg) (bool, error) {
		if m.Command == "NOTICE" && strings.EqualFold(m.Nick(), "NickServ") && strings.Contains(strings.ToLower(m.Last()), "incorrect") {
			return false, fmt.Errorf("NickServ IDENTIFY %s: %s", account, m.Last())
		}
		return m.Command == "900", nil // RPL_LOGGEDIN
	})
	if err != nil {
		return fmt.Errorf("NickServ IDENTIFY %s: %w", account, err)
	}
	return nil
}

// nickServ sends NickServ a command and waits for its notice; one without ok (case-insensitive)
// is the command's refusal.
func (c *ircConn) nickServ(ctx context.Context, command, ok string) error {
	if err := c.send("PRIVMSG NickServ :%s", command); err != nil {
		return err
	}
	verb, _, _ := strings.Cut(command, " ")
	_, err := c.until(ctx, func(m ircMsg) (bool, error) {
		if m.Command != "NOTICE" || !strings.EqualFold(m.Nick(), "NickServ") {
			return false, nil
		}
		if strings.Contains(strings.ToLower(m.Last()), ok) {
			return true, nil
		}
		return false, fmt.Errorf("NickServ %s: %s", verb, m.Last())
	})
	return err
}

// SASLPlain connects (over TLS if useTLS), negotiates CAP LS 302 and
// CAP REQ :sasl, authenticates account/password with SASL PLAIN, expects
// 900 and 903, completes registration as nick and quits.
func (i *IRC) SASLPlain(ctx context.Context, useTLS bool, nick, account, password string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	addr := i.Addr()
	var tlsConfig *tls.Config
	if useTLS {
		var err error
		if tlsConfig, err = i.TLSConfig(); err != nil {
			return err
		}
		addr = i.TLSAddr()
	}
	c, err := dialIRC(ctx, addr, tlsConfig)
	if err != nil {
		return err
	}
	defer c.Close()
	caps, err := c.capLS(ctx)
	if err != nil {
		return err
	}
	if _, ok := caps["sasl"]; !ok {
		return fmt.Errorf("no sasl in CAP LS: %v", caps)
	}
	if err := c.send("CAP REQ :sasl"); err != nil {
		return err
	}
	if _, err := c.until(ctx, func(m ircMsg) (bool, error) {
		if m.Command != "CAP" || len(m.Params) < 2 {
			return false, nil
		}
		switch strings.ToUpper(m.Params[1]) {
		case "ACK":
			return true, nil
		case "NAK":
			return false, fmt.Errorf("CAP REQ sasl refused: %s", m.Raw)
		}
		return false, nil
	}); err != nil {
		return err
	}
	if err := c.send("AUTHENTICATE PLAIN"); err != nil {
		return err
	}
	if _, err := c.until(ctx, func(m ircMsg) (bool, error) {
		if m.Command == "AUTHENTICATE" && m.Last() == "+" {
			return true, nil
		}
		if m.Command == "904" || m.Command == "908" {
			return false, fmt.Errorf("AUTHENTICATE PLAIN: %s", m.Raw)
		}
		return false, nil
	}); err != nil {
		return err
	}
	payload := base64.StdEncoding.EncodeToString([]byte(account + "\x00" + account + "\x00" + password))
	if len(payload) >= 400 {
		return errors.New("SASL payload too long for this simple client")
	}
	if err := c.send("AUTHENTICATE %s", payload); err != nil {
		return err
	}
	var loggedIn bool
	if _, err := c.until(ctx, func(m ircMsg) (bool, error) {
		switch m.Command {
		case "900":
			loggedIn = true
		case "903":
			return true, nil
		case "902", "904", "905", "906", "907":
			return false, fmt.Errorf("SASL PLAIN as %s: %s", account, m.Raw)
		}
		return false, nil
	}); err != nil {
		return err
	}
	if !loggedIn {
		return fmt.Errorf("SASL PLAIN as %s: 903 without 900", account)
	}
	if err := c.register(ctx, nick, true); err != nil {
		return err
	}
	_ = c.send("QUIT :bye")
	return nil
}

// writeCerts creates a CA and a server certificate signed by it (ECDSA
// P-256, valid for a day before and a week after now).
func writeCerts(caFile, certFile, keyFile string, dnsNames []string, ips []net.IP) error {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sealbridge test CA"},
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: dnsNames[0]},
		DNSNames:     dnsNames,
		IPAddresses:  ips,
		NotBefore:    now.Add(-24 * time.Hour),
		NotAfter:     now.Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
}

func renderFile(path, text string, data any) error {
	t, err := template.New(filepath.Base(path)).Option("missingkey=error").Parse(text)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// nogroupGID is the gid of group nogroup (65534 on Debian).
func nogroupGID() uint32 {
	if g, err := user.LookupGroup("nogroup"); err == nil {
		if id, err := strconv.Atoi(g.Gid); err == nil && id != 0 {
			return uint32(id)
		}
	}
	return 65534
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(strings.TrimSpace(x), s) {
			return true
		}
	}
	return false
}
