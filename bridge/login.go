package bridge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/sealbridge/sealbridge/bridge/irc"
	"github.com/sealbridge/sealbridge/config"
	"github.com/sealbridge/sealbridge/sbdb"
)

// Login flows: a plain nick; a nick with a SASL PLAIN account (registered with the network's
// services); a client certificate the bridge makes and adds to the account once (CertFP, then
// SASL EXTERNAL, no password stored: certfp.go); or, for networks without SASL, a registered nick
// that identifies to NickServ.
const (
	FlowNick     = "nick"
	FlowSASL     = "sasl"
	FlowCertFP   = "certfp"
	FlowNickServ = "nickserv"
)

// loginTimeout bounds connecting and registering during a login.
const loginTimeout = 45 * time.Second

func (c *IRCConnector) GetLoginFlows() []bridgev2.LoginFlow {
	return []bridgev2.LoginFlow{
		{ID: FlowNick, Name: "Nickname", Description: "Connect with a nickname only (no account)"},
		{ID: FlowSASL, Name: "SASL account", Description: "Connect and log in to your registered IRC account with SASL PLAIN"},
		{ID: FlowCertFP, Name: "Client certificate", Description: "Log in to your registered IRC account with a client certificate (CertFP, SASL EXTERNAL); your password is used once to add the certificate to the account and is not stored"},
		{ID: FlowNickServ, Name: "NickServ", Description: "Connect with your registered nick and identify to NickServ (for networks without SASL)"},
	}
}

func (c *IRCConnector) CreateLogin(ctx context.Context, user *bridgev2.User, flowID string) (bridgev2.LoginProcess, error) {
	if flowID != FlowNick && flowID != FlowSASL && flowID != FlowCertFP && flowID != FlowNickServ {
		return nil, fmt.Errorf("unknown login flow %q", flowID)
	}
	return &ircLogin{conn: c, user: user, flow: flowID}, nil
}

type ircLogin struct {
	conn *IRCConnector
	user *bridgev2.User
	flow string // FlowNick, FlowSASL, FlowCertFP or FlowNickServ
	// override is the login being re-authenticated (`relogin`), if any.
	override *bridgev2.UserLogin
}

var (
	_ bridgev2.LoginProcessUserInput    = (*ircLogin)(nil)
	_ bridgev2.LoginProcessWithOverride = (*ircLogin)(nil)
)

// StartWithOverride starts a `relogin`: the same network with a new nick or credentials. The login
// keeps its ID, portals and channels; its connection is replaced only once the new one works.
func (l *ircLogin) StartWithOverride(ctx context.Context, override *bridgev2.UserLogin) (*bridgev2.LoginStep, error) {
	if override.UserMXID != l.user.MXID {
		// bridgev2's relogin command finds the login by ID alone: never let one user drive
		// another user's login.
		return nil, fmt.Errorf("login `%s` not found", override.ID)
	}
	if _, ok := override.Metadata.(*sbdb.UserLoginMetadata); !ok {
		return nil, fmt.Errorf("login %s is not an IRC login", override.ID)
	}
	l.override = override
	return l.Start(ctx)
}

func (l *ircLogin) Start(ctx context.Context) (*bridgev2.LoginStep, error) {
	ids := l.conn.Config.NetworkIDs()
	networkField := bridgev2.LoginInputDataField{
		Type:        bridgev2.LoginInputFieldTypeSelect,
		ID:          "network",
		Name:        "IRC network",
		Description: "Which IRC network to connect to.",
		Options:     ids,
		Validate: func(s string) (string, error) {
			n, err := l.conn.resolveNetwork(s)
			if err != nil {
				return "", err
			}
			if n.UserAdded {
				return config.UserServer{Host: n.Address, Port: n.Port, TLS: n.UseTLS()}.String(), nil
			}
			return n.ID, nil
		},
	}
	if l.conn.Config.UserNetworks.Enabled {
		// Any server the admin allows, by host name: a free-form field.
		networkField.Type, networkField.Options = bridgev2.LoginInputFieldTypeDomain, nil
		networkField.Description = fmt.Sprintf("A network of this bridge (%s), or a server's host name such as irc.example.org or irc.example.org:6697.", strings.Join(ids, ", "))
	}
	fields := []bridgev2.LoginInputDataField{networkField, {
		Type:        bridgev2.LoginInputFieldTypeUsername,
		ID:          "nick",
		Name:        "nickname",
		Description: "The nick to use on IRC.",
		Validate:    validateNick,
	}}
	if l.flow == FlowSASL || l.flow == FlowCertFP {
		fields = append(fields, bridgev2.LoginInputDataField{
			Type:        bridgev2.LoginInputFieldTypeUsername,
			ID:          "account",
			Name:        "SASL account name",
			Description: "Your account name with the network's services (often your registered nick).",
			Validate:    validateNick,
		})
	}
	switch l.flow {
	case FlowSASL:
		fields = append(fields, passwordField("SASL password"))
	case FlowCertFP:
		f := passwordField("account password")
		f.Description = "Used once, to add the bridge's new client certificate to your account (NickServ CERT ADD); it is not stored, and your message with it is redacted."
		fields = append(fields, f)
	}
	if l.flow == FlowNickServ {
		fields = append(fields, passwordField("NickServ password"))
	}
	return &bridgev2.LoginStep{
		Type:            bridgev2.LoginStepTypeUserInput,
		StepID:          "net.sealbridge.irc.login." + l.flow,
		Instructions:    "Log in to an IRC network. The bridge keeps one IRC connection per login.",
		UserInputParams: &bridgev2.LoginUserInputParams{Fields: fields},
	}, nil
}

func (l *ircLogin) Cancel() {}

func (l *ircLogin) SubmitUserInput(ctx context.Context, input map[string]string) (*bridgev2.LoginStep, error) {
	network, err := l.conn.resolveNetwork(input["network"])
	if err != nil {
		return nil, err
	}
	networkID := network.ID
	nick, err := validateNick(input["nick"])
	if err != nil {
		return nil, err
	}
	loginID := MakeUserLoginID(networkID, l.user.MXID)
	// One login flow at a time per login: two relogins sent back to back would otherwise both
	// replace (and one restore) the connection, leaving two connections fighting for the nick.
	unlock := l.conn.lockLogin(loginID)
	defer unlock()
	meta := &sbdb.UserLoginMetadata{Network: networkID, Nick: nick}
	if network.UserAdded {
		// One user-network login flow at a time per Matrix user, until the new login is saved:
		// two at once would both pass the quota check.
		unlockUser := l.conn.lockLogin(networkid.UserLoginID("user-networks/" + l.user.MXID))
		defer unlockUser()
		if err = l.conn.checkUserNetworkQuota(l.user, network); err != nil {
			return nil, err
		}
		meta.UserServer = &sbdb.UserServer{Port: network.Port, TLS: network.UseTLS()}
	}
	if l.override == nil && l.conn.networkFull(network) {
		return nil, fmt.Errorf("%s takes at most %d connections from this bridge, and all are in use; ask the bridge admin", network.DisplayName(), network.MaxConnections)
	}
	var old *IRCClient
	if l.override != nil {
		if l.override.ID != loginID {
			return nil, fmt.Errorf("login `%s` is on another network; a relogin keeps the network", l.override.ID)
		}
		// Keep the channels (their keys sealed again in case the server's port or TLS changed)
		// and free the nick.
		meta.Channels = l.conn.resealChannels(string(loginID), l.override.Metadata.(*sbdb.UserLoginMetadata), meta)
		if old, _ = l.override.Client.(*IRCClient); old != nil {
			old.Disconnect()
		}
	} else if existing := l.conn.Bridge.GetCachedUserLoginByID(loginID); existing != nil {
		return nil, fmt.Errorf("you are already logged in to %s (login `%s`); use `relogin %s` to change its nick or password, or log out first", network.DisplayName(), loginID, loginID)
	}
	var password string
	var cert *tls.Certificate
	if l.flow == FlowCertFP {
		if cert, err = l.certFP(ctx, network, nick, input["account"], input["password"], meta, loginID); err != nil {
			l.restore(old, network)
			return nil, err
		}
	} else if l.flow == FlowSASL || l.flow == FlowNickServ {
		if l.flow == FlowSASL {
			meta.SASLAccount = input["account"]
		}
		meta.NickServ = l.flow == FlowNickServ
		password = input["password"]
		if meta.SASLPassword, err = l.conn.sealSecret(password, string(loginID), meta); err != nil {
			return nil, fmt.Errorf("failed to seal the password: %w", err)
		}
	}
	// The login's logger as bridgev2 will make it once the login exists (user and login ID).
	log := l.user.Log.With().Str("login_id", string(loginID)).Logger()
	cl := newClient(l.conn, log, loginID, network, meta, password, cert)
	connectCtx, cancel := context.WithTimeout(ctx, loginTimeout)
	defer cancel()
	err = cl.ircConn.Connect(connectCtx)
	for try := 0; old != nil && errors.Is(err, irc.ErrNickInUse) && try < 3 && connectCtx.Err() == nil; try++ {
		// A relogin: the server may not have let go of the old connection's nick yet.
		time.Sleep(time.Second)
		err = cl.ircConn.Connect(connectCtx)
	}
	if err != nil {
		cl.ircConn.Close()
		l.restore(old, network)
		return nil, loginError(network.DisplayName(), nick, err)
	}
	ul, err := l.user.NewLogin(ctx, &database.UserLogin{
		ID:         loginID,
		RemoteName: fmt.Sprintf("%s on %s", nick, network.DisplayName()),
		Metadata:   meta,
	}, &bridgev2.NewLoginParams{
		DontReuseExisting: l.override == nil,
		LoadUserLogin: func(ctx context.Context, login *bridgev2.UserLogin) error {
			if old != nil {
				old.retire()
			}
			cl.attach(login)
			login.Client = cl
			return nil
		},
	})
	if err != nil {
		cl.ircConn.Close()
		return nil, fmt.Errorf("failed to save the login: %w", err)
	}
	cl.Connect(ul.Log.WithContext(l.conn.Bridge.BackgroundCtx))
	done := fmt.Sprintf("Connected to %s as %s.", network.DisplayName(), cl.ircConn.Nick())
	if fp, ok := certFingerprints(meta); ok {
		done += fmt.Sprintf(" Logged in to the account %s with the bridge's client certificate (SHA-256 fingerprint `%s`); your password was not stored.", meta.SASLAccount, fp.SHA256)
	}
	return &bridgev2.LoginStep{
		Type:         bridgev2.LoginStepTypeComplete,
		StepID:       "net.sealbridge.irc.login.complete",
		Instructions: done + " Use `join #channel` to join a channel and `pm <nick>` to talk to someone.",
		CompleteParams: &bridgev2.LoginCompleteParams{
			UserLoginID: ul.ID,
			UserLogin:   ul,
		},
	}, nil
}

// restore brings back the login a failed relogin replaced (old, nil for a new login), on a fresh
// client: a closed engine does not reconnect.
func (l *ircLogin) restore(old *IRCClient, network *config.Network) {
	if old == nil {
		return
	}
	old.retire()
	restored := newIRCClient(l.conn, l.override, network)
	l.override.Client = restored
	restored.Connect(l.conn.Bridge.BackgroundCtx)
}

// certFP makes the login's client certificate (stored in meta) and adds it to the account with
// the password, which is then forgotten.
func (l *ircLogin) certFP(ctx context.Context, network *config.Network, nick, account, password string, meta *sbdb.UserLoginMetadata, loginID networkid.UserLoginID) (*tls.Certificate, error) {
	if !network.UseTLS() {
		return nil, fmt.Errorf("%s is reached without TLS, and a client certificate needs TLS; use the sasl flow", network.DisplayName())
	}
	meta.SASLAccount = account
	cert, err := l.conn.newCertFP(meta, string(loginID))
	if err != nil {
		return nil, err
	}
	addCtx, cancel := context.WithTimeout(ctx, loginTimeout)
	defer cancel()
	if err = addCertFingerprint(addCtx, l.conn.dialFor(network, string(loginID)), network, nick, account, password, cert, l.conn.Bridge.Log); err != nil {
		if errors.Is(err, errCertAdd) {
			return nil, fmt.Errorf("%s: %v; nothing was saved", network.DisplayName(), err)
		}
		return nil, loginError(network.DisplayName(), nick, err)
	}
	return &cert, nil
}

// loginError turns an engine error into a sentence for the user. It never includes the password.
func loginError(network, nick string, err error) error {
	switch {
	case errors.Is(err, irc.ErrSASLFailed):
		return fmt.Errorf("%s rejected the SASL account name or password; nothing was saved", network)
	case errors.Is(err, irc.ErrNickServFailed):
		return fmt.Errorf("NickServ on %s refused the password for %s; nothing was saved", network, nick)
	case errors.Is(err, irc.ErrNickInUse):
		return fmt.Errorf("the nick %s is already in use on %s; choose another", nick, network)
	case errors.Is(err, irc.ErrBadPassword):
		return fmt.Errorf("%s rejected the server password in the bridge's config; tell the bridge admin", network)
	case errors.Is(err, irc.ErrBanned):
		return fmt.Errorf("%s refused the connection (banned): %v", network, err)
	case errors.Is(err, irc.ErrTimeout) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s did not finish registration in time; try again later", network)
	default:
		return fmt.Errorf("could not connect to %s: %v", network, err)
	}
}

// validateNick accepts what IRC servers accept as a nick: no spaces, no control characters, no
// leading channel or prefix characters.
func validateNick(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", errors.New("the nick is empty")
	case len(s) > 64:
		return "", errors.New("the nick is longer than 64 bytes")
	case strings.ContainsAny(s, " ,*?!@:\r\n\x00\x01"):
		return "", fmt.Errorf("%q contains a character IRC does not allow in nicks", s)
	case strings.ContainsAny(s[:1], "#&$+~%0123456789-'"):
		return "", fmt.Errorf("%q starts with a character IRC does not allow at the start of a nick", s)
	}
	return s, nil
}

// passwordField is the sealed password of the SASL and NickServ flows: one line, and for NickServ
// (IDENTIFY <nick> <password>) one word.
func passwordField(name string) bridgev2.LoginInputDataField {
	return bridgev2.LoginInputDataField{
		Type:        bridgev2.LoginInputFieldTypePassword,
		ID:          "password",
		Name:        name,
		Description: "It is sealed before it is stored, and your message with it is redacted.",
		Validate: func(s string) (string, error) {
			if s == "" || strings.ContainsAny(s, "\r\n\x00") {
				return "", errors.New("the password must be one non-empty line")
			}
			if name == "NickServ password" && strings.Contains(s, " ") {
				return "", errors.New("a NickServ password cannot contain spaces")
			}
			return s, nil
		},
	}
}
