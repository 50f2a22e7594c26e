package bridge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/bridgev2/status"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/sealbridge/sealbridge/bridge/irc"
	"github.com/sealbridge/sealbridge/bridge/spool"
	"github.com/sealbridge/sealbridge/config"
	"github.com/sealbridge/sealbridge/sbdb"
)

// IRCClient is one login's IRC connection: the bridgev2 NetworkAPI for that login and the engine's
// event handler. The engine's reader goroutine calls the On* methods in order; bridgev2's goroutines
// call the NetworkAPI methods. mu guards the IRC-side state below.
type IRCClient struct {
	connector *IRCConnector       // the bridge-wide network connector this login belongs to
	login     *bridgev2.UserLogin // nil until the login is saved
	loginID   networkid.UserLoginID
	network   *config.Network
	meta      *sbdb.UserLoginMetadata
	ircConn   *irc.Client // the login's IRC connection; it reconnects by itself
	log       zerolog.Logger

	runLock   sync.Mutex
	runCancel context.CancelFunc
	// started is set by the first Connect: before it, at startup, bridgev2 has loaded the login
	// but not yet started it, and a Matrix event handled early waits for it (waitReady).
	started bool
	remote  *spool.Queue // IRC reader -> bridgev2
	// stopRemote ends the remote queue's goroutine (remoteCtx) when the login is logged out;
	// later are the messages waiting for another try (outbox.go).
	stopRemote context.CancelFunc
	remoteCtx  context.Context
	later      laterRetries
	// everConnected is set after the first registration, so later ones count as reconnects.
	everConnected bool

	mu       sync.Mutex
	channels map[string]*channelState // by casefolded name, for the current connection
	nicks    map[string]string        // casefolded nick -> nick as last seen
	echoes   map[string][]string      // casefolded target -> lines we sent, awaiting echo-message
	// echoEvents holds, per target and line, the Matrix events whose first line awaits its echo.
	echoEvents map[string][]id.EventID
	// unsent are lines from Matrix that a connection ended before writing (resend.go).
	unsent []sendUnit
	typing typingState
	// historyBatches are the open chathistory batches of this connection, by reference tag;
	// targetsWanted is how many CHATHISTORY TARGETS lines are still expected (history.go).
	historyBatches map[string]bool
	targetsWanted  int
	// historySem bounds the history lookups of this login running at once.
	historySem chan struct{}
	// pendingTopics are topics sent from Matrix not yet shown back, by casefolded channel.
	pendingTopics map[string]*pendingTopic
	// awayShown are the away messages shown in private chats, by casefolded nick (away.go).
	awayShown map[string]string
	// multiline are the open draft/multiline batches from the server, by reference; batchSeq
	// numbers the ones we open (multiline.go).
	multiline map[string]*multilineBatch
	batchSeq  int
	// dmPeers are the nicks this login has a private chat with (admit.go); requests the messages
	// of others that wait for the user to open a chat (requests.go).
	dmPeers  dmPeers
	requests requests
	// forcedJoins paces the channels the server joins us to without the user asking (admit.go).
	forcedJoins tokenBucket
	// collectors gather the server's answers to commands users run (collect.go).
	collectors collectors
	// limitNotices are the limits the user was told about on this connection (limits.go).
	limitNotices limitNotices
	// lastConnected is when the previous connection ended (zero after a restart).
	lastConnected time.Time
	// ready is set once a connection has queued the JOINs of the login's channels, so that a
	// message from Matrix never goes out ahead of its channel's JOIN.
	ready bool

	// saveMu guards the pending metadata write (saveLogin); retired is set once the client is
	// logged out or replaced, after which nothing more is written.
	saveMu    sync.Mutex
	saveTimer *time.Timer
	retired   bool
	// statesForgotten is set (under the connector's stateRelay lock) once the login is retired:
	// no bridge state of it goes to bridgev2 after that (states.go).
	statesForgotten bool
	// saveWriteMu makes the metadata writes one at a time (saveLoginNow).
	saveWriteMu sync.Mutex

	// earlyMu guards the lines read during the login flow, before the login exists (attach): the
	// rejoins of a relogin answer with JOIN and NAMES then, and dropping them would leave the
	// client without its channels' members.
	earlyMu  sync.Mutex
	attached bool
	early    []earlyLine
}

type earlyLine struct {
	msg *ircmsg.Message
	at  time.Time
}

// maxEarlyLines bounds what is held during a login flow (a few channels' NAMES).
const maxEarlyLines = 5000

// holdEarly keeps a line read before the login exists; false once it does.
func (cl *IRCClient) holdEarly(msg *ircmsg.Message, at time.Time) bool {
	cl.earlyMu.Lock()
	defer cl.earlyMu.Unlock()
	if cl.attached {
		return false
	}
	if len(cl.early) < maxEarlyLines {
		cl.early = append(cl.early, earlyLine{msg, at})
	} else if len(cl.early) == maxEarlyLines {
		cl.log.Warn().Msg("Too many IRC lines during the login flow; dropping the rest")
		cl.early = append(cl.early, earlyLine{})
	}
	return true
}

var (
	_ bridgev2.NetworkAPI                    = (*IRCClient)(nil)
	_ bridgev2.IdentifierResolvingNetworkAPI = (*IRCClient)(nil)
	_ bridgev2.GhostDMCreatingNetworkAPI     = (*IRCClient)(nil)
	_ irc.Handler                            = (*IRCClient)(nil)
)

// newIRCClient makes the client of a login loaded from the database.
func newIRCClient(c *IRCConnector, login *bridgev2.UserLogin, network *config.Network) bridgev2.NetworkAPI {
	meta := login.Metadata.(*sbdb.UserLoginMetadata)
	if err := c.migrateSecrets(login.Log.WithContext(context.Background()), login, meta); err != nil {
		login.Log.Err(err).Msg("Failed to seal the login's secrets again")
	}
	password, _, err := c.openSecret(meta.SASLPassword, string(login.ID), meta)
	if err != nil {
		return &brokenClient{reason: "the stored SASL password cannot be opened with the bridge's credentials_key; log in again"}
	}
	cert, hasCert, err := c.openCertFP(meta, string(login.ID))
	if err != nil {
		return &brokenClient{reason: "the stored client certificate cannot be opened with the bridge's credentials_key; log in again"}
	}
	certp := &cert
	if !hasCert {
		certp = nil
	}
	cl := newClient(c, login.Log, login.ID, network, meta, password, certp)
	cl.attach(login)
	return cl
}

// newClient makes a login's client, logging to log; with cert (CertFP) it logs in with SASL
// EXTERNAL. A loaded login's log is bridgev2's logger of the login, whose context the IRC engine
// shares: a logger with fields of its own would cost the client a 500-byte buffer more.
func newClient(c *IRCConnector, log zerolog.Logger, loginID networkid.UserLoginID, network *config.Network, meta *sbdb.UserLoginMetadata, password string, cert *tls.Certificate) *IRCClient {
	cl := &IRCClient{
		connector:  c,
		loginID:    loginID,
		network:    network,
		meta:       meta,
		log:        log,
		channels:   make(map[string]*channelState),
		nicks:      make(map[string]string),
		echoes:     make(map[string][]string),
		remote:     spool.NewQueue(),
		historySem: make(chan struct{}, historyLookups),
	}
	cfg := irc.Config{
		Addr:           network.HostPort(),
		TLS:            network.UseTLS(),
		ServerPassword: network.Password,
		Nick:           meta.Nick,
		SASLUser:       meta.SASLAccount,
		Flood:          irc.FloodConfig{Burst: network.Flood.Burst, LinesPerSecond: network.Flood.LinesPerSecond},
		Backoff:        irc.BackoffConfig{Min: network.Reconnect.MinDelay, Max: network.Reconnect.MaxDelay},
		Pace:           c.pacerFor(network).Wait,
		Dial:           c.dialFor(network, string(loginID)),
		MaxBatchLines:  c.limits().MaxBatchLines,
		Limited:        c.Metrics.Limited,
	}
	c.applyIdentity(&cfg, network, string(loginID), meta.Nick)
	if c.Config.Identd.Enabled {
		cfg.Dial = c.trackIdent(cfg.Dial, cfg.Username)
	}
	if meta.NickServ {
		cfg.NickServPassword = password
	} else {
		cfg.SASLPassword = password
	}
	if cfg.TLS {
		cfg.TLSConfig = tlsConfig(network, cl.log)
	}
	if cert != nil {
		cfg.SASLExternal = true
		cfg.SASLUser, cfg.SASLPassword = "", ""
		if cfg.TLSConfig != nil {
			cfg.TLSConfig.Certificates = []tls.Certificate{*cert}
		}
	}
	// The engine adds the server to the login's context. Each zerolog With keeps a 500-byte
	// buffer for as long as its logger lives: a few per login are megabytes at ten thousand.
	cl.ircConn = irc.New(cfg, cl, cl.log)
	return cl
}

func tlsConfig(network *config.Network, log zerolog.Logger) *tls.Config {
	tc := &tls.Config{ServerName: network.Address, MinVersion: tls.VersionTLS12, InsecureSkipVerify: network.TLSInsecureSkipVerify}
	if network.TLSCAFile != "" {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if pem, err := os.ReadFile(network.TLSCAFile); err != nil {
			log.Err(err).Str("file", network.TLSCAFile).Msg("Failed to read the network's CA file")
		} else if !pool.AppendCertsFromPEM(pem) {
			log.Error().Str("file", network.TLSCAFile).Msg("No certificate found in the network's CA file")
		}
		tc.RootCAs = pool
	}
	return tc
}

func (cl *IRCClient) attach(login *bridgev2.UserLogin) {
	cl.login = login
	cl.log = login.Log // its user_login_id names the network
	var ctx context.Context
	ctx, cl.stopRemote = context.WithCancel(cl.connector.Bridge.BackgroundCtx)
	cl.remoteCtx = ctx
	cl.setupQueue()
	cl.resumeSpool(ctx)
	cl.loadDMPeers(ctx)
	cl.loadRequests(ctx)
	cl.remote.Start(ctx, func(evt bridgev2.RemoteEvent) { login.QueueRemoteEvent(evt) })
	cl.connector.register(cl)
	if n := cl.connector.takeUndelivered(string(cl.loginID)); n > 0 {
		go cl.tellUndelivered(n)
	}
	cl.releaseEarly()
}

// releaseEarly handles what the connection read during the login flow, in order (the reader waits
// meanwhile), and lets later lines through.
func (cl *IRCClient) releaseEarly() {
	cl.earlyMu.Lock()
	defer cl.earlyMu.Unlock()
	for _, e := range cl.early {
		if e.msg != nil {
			cl.handleLine(e.msg, e.at)
		}
	}
	cl.early, cl.attached = nil, true
}

// state is the connection's state for the metrics: connected, connecting (the connection loop runs
// but is not registered) or disconnected.
func (cl *IRCClient) state() string {
	if cl.ircConn.Connected() {
		return "connected"
	}
	cl.runLock.Lock()
	defer cl.runLock.Unlock()
	if cl.runCancel != nil {
		return "connecting"
	}
	return "disconnected"
}

// comingUp reports whether the connection may still become ready: it is connecting, or bridgev2
// has not started it yet.
func (cl *IRCClient) comingUp() bool {
	if cl.state() == "connecting" {
		return true
	}
	cl.runLock.Lock()
	defer cl.runLock.Unlock()
	return !cl.started
}

// Connect starts the connection loop in the background; the engine reconnects with backoff.
func (cl *IRCClient) Connect(ctx context.Context) {
	cl.runLock.Lock()
	defer cl.runLock.Unlock()
	if cl.runCancel != nil {
		return
	}
	cl.connector.startGCWindow()
	runCtx, cancel := context.WithCancel(cl.log.WithContext(context.WithoutCancel(ctx)))
	cl.runCancel = cancel
	cl.started = true
	if !cl.ircConn.Connected() {
		cl.sendState(status.BridgeState{StateEvent: status.StateConnecting})
	}
	cl.ircConn.Start(runCtx)
}

func (cl *IRCClient) Disconnect() {
	cl.runLock.Lock()
	cancel := cl.runCancel
	cl.runCancel = nil
	cl.runLock.Unlock()
	if cancel != nil {
		cancel()
	}
	_ = cl.ircConn.Close()
	cl.connector.trackClient(cl, false)
	cl.flushSave()
	// Wait (bounded) for the connection loop to end, so that a relogin that follows does not race
	// a reconnect of this client for the nick.
	for deadline := time.Now().Add(5 * time.Second); cl.ircConn.Running() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
}

func (cl *IRCClient) IsLoggedIn() bool { return true }

func (cl *IRCClient) LogoutRemote(ctx context.Context) {
	cl.Disconnect()
	cl.retire()
}

// flushSave writes a pending metadata change at once (the bridge is stopping or the login is
// being replaced).
func (cl *IRCClient) flushSave() {
	cl.saveMu.Lock()
	pending := cl.saveTimer != nil && !cl.retired
	cl.saveMu.Unlock()
	if pending {
		cl.saveLoginNow()
	}
}

// retire ends what a client runs besides its connection, once it is logged out or replaced.
func (cl *IRCClient) retire() {
	cl.saveMu.Lock()
	cl.retired = true
	if cl.saveTimer != nil {
		cl.saveTimer.Stop()
		cl.saveTimer = nil
	}
	cl.saveMu.Unlock()
	cl.connector.states.forget(cl)
	cl.connector.unregister(cl)
	if cl.stopRemote != nil {
		cl.stopRemote()
	}
}

func (cl *IRCClient) IsThisUser(ctx context.Context, userID networkid.UserID) bool {
	return userID == cl.ownUserID()
}

func (cl *IRCClient) ownUserID() networkid.UserID {
	return MakeUserID(cl.network.ID, cl.ircConn.Casefold(cl.ircConn.Nick()))
}

// sendState reports the login's state to bridgev2, through the connector's relay (states.go).
func (cl *IRCClient) sendState(state status.BridgeState) {
	cl.connector.states.send(cl, state)
}

// OnConnected runs after every successful registration: report the state and rejoin channels.
func (cl *IRCClient) OnConnected(c *irc.Client) {
	cl.mu.Lock()
	if cl.everConnected {
		cl.connector.Metrics.Reconnects.Inc()
	}
	cl.everConnected = true
	clear(cl.channels)
	changed := cl.connector.shared.leaveAll(cl)
	clear(cl.echoes)
	clear(cl.echoEvents)
	clear(cl.historyBatches)
	cl.targetsWanted = 0
	clear(cl.multiline)
	clear(cl.awayShown)
	clear(cl.nicks) // rebuilt from NAMES and traffic: a nick seen on an earlier connection may be anyone's now
	channels := make([]sbdb.Channel, 0, len(cl.meta.Channels))
	for _, ch := range cl.meta.Channels {
		channels = append(channels, *ch) // copies: commands may change the entries meanwhile
	}
	away := cl.meta.Away
	cl.mu.Unlock()
	tellLeadChanges(changed)
	cl.limitNotices.reset()
	cl.connector.trackClient(cl, true)
	if away != "" {
		if err := cl.ircConn.Send("AWAY", away); err != nil {
			cl.log.Err(err).Msg("Failed to set the away message again")
		}
	}
	cl.sendState(status.BridgeState{StateEvent: status.StateConnected})
	if cl.login != nil {
		// bridgev2 waits 3 minutes after a disconnection (a goroutine per login) before telling
		// the user it lasts; being connected again ends that wait now (after a netsplit, a
		// thousand of them), and a pending reconnect after an unknown error with it.
		cl.login.BridgeState.StopUnknownErrorReconnect()
	}
	cl.requestDMHistory()
	for _, ch := range channels {
		key, _, err := cl.connector.openSecret(ch.Key, string(cl.loginID), cl.meta)
		if err != nil {
			cl.log.Warn().Str("channel", ch.Name).Msg("Stored channel key cannot be opened, joining without it")
			key = ""
		}
		if err = cl.join(ch.Name, key); err != nil {
			cl.log.Err(err).Str("channel", ch.Name).Msg("Failed to rejoin channel")
		}
	}
	cl.mu.Lock()
	cl.ready = true // the JOINs are queued: messages from Matrix may follow them
	cl.mu.Unlock()
	cl.resendUnsent()
}

func (cl *IRCClient) join(channel, key string) error {
	if key != "" {
		return cl.ircConn.Send("JOIN", channel, key)
	}
	return cl.ircConn.Send("JOIN", channel)
}

// OnDisconnected reports the state; a fatal error (bad credentials, ban) stops retrying and tells the
// user why.
func (cl *IRCClient) OnDisconnected(c *irc.Client, err error, willRetry bool) {
	cl.connector.trackClient(cl, false)
	cl.mu.Lock()
	cl.lastConnected = time.Now() // private chats are fetched from here on the next connection
	cl.ready = false
	cl.mu.Unlock()
	if event, code, msg, report := cl.disconnectState(err, willRetry); report {
		cl.sendState(status.BridgeState{StateEvent: event, Error: code, Message: msg})
	}
}

// disconnectState is the bridge state a disconnection reports; report is false for a connection
// closed on purpose.
func (cl *IRCClient) disconnectState(err error, willRetry bool) (event status.BridgeStateEvent, code status.BridgeStateErrorCode, msg string, report bool) {
	event, code = status.StateTransientDisconnect, "irc-disconnected"
	if err != nil {
		msg = err.Error()
	}
	if !willRetry {
		switch {
		case errors.Is(err, irc.ErrSASLFailed), errors.Is(err, irc.ErrNickServFailed), errors.Is(err, irc.ErrBadPassword):
			event, code = status.StateBadCredentials, "irc-bad-credentials"
			msg = fmt.Sprintf("%s rejected the login; log in again", cl.network.DisplayName())
		case errors.Is(err, irc.ErrBanned):
			event, code = status.StateUnknownError, "irc-banned"
			msg = fmt.Sprintf("%s refused the connection (banned); not retrying", cl.network.DisplayName())
		case err == nil:
			return "", "", "", false // closed on purpose
		default:
			event, code = status.StateUnknownError, "irc-stopped"
		}
	}
	return event, code, msg, true
}

// brokenClient stands in for a login that cannot connect at all (its network was removed from the
// config, or its password cannot be unsealed); it says why instead of failing silently.
type brokenClient struct{ reason string }

var _ bridgev2.NetworkAPI = (*brokenClient)(nil)

func (b *brokenClient) Connect(ctx context.Context) {
	zerolog.Ctx(ctx).Warn().Str("reason", b.reason).Msg("Login cannot connect")
}
func (b *brokenClient) Disconnect()                                                  {}
func (b *brokenClient) IsLoggedIn() bool                                             { return false }
func (b *brokenClient) LogoutRemote(ctx context.Context)                             {}
func (b *brokenClient) IsThisUser(ctx context.Context, userID networkid.UserID) bool { return false }
func (b *brokenClient) GetChatInfo(ctx context.Context, portal *bridgev2.Portal) (*bridgev2.ChatInfo, error) {
	return nil, errors.New(b.reason)
}
func (b *brokenClient) GetUserInfo(ctx context.Context, ghost *bridgev2.Ghost) (*bridgev2.UserInfo, error) {
	return nil, errors.New(b.reason)
}
func (b *brokenClient) GetCapabilities(ctx context.Context, portal *bridgev2.Portal) *event.RoomFeatures {
	return &event.RoomFeatures{}
}
func (b *brokenClient) HandleMatrixMessage(ctx context.Context, msg *bridgev2.MatrixMessage) (*bridgev2.MatrixMessageResponse, error) {
	return nil, errors.New(b.reason)
}
