package bridge

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"net"
	"sync"
	"time"

	"go.mau.fi/util/configupgrade"
	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/database"
	"maunium.net/go/mautrix/bridgev2/matrix"
	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/sealbridge/sealbridge/bridge/irc"
	"github.com/sealbridge/sealbridge/bridge/metrics"
	"github.com/sealbridge/sealbridge/bridge/spool"
	"github.com/sealbridge/sealbridge/config"
	"github.com/sealbridge/sealbridge/sbdb"
)

// IRCConnector is the bridgev2 network connector for IRC.
type IRCConnector struct {
	Bridge *bridgev2.Bridge
	// db is what the connector reads and writes in bridgev2's database itself (bridgedb.go).
	db bridgeDB
	// waits are the first waits of the outbox's retries and the wait for a command's answer.
	waits  waits
	Config config.Config
	sealer *sbdb.Sealer
	// idKey keys the hashes that stand in for missing msgids (MakeMessageID), derived from the
	// credentials key.
	idKey []byte
	// loop hands messages to bridgev2 again within their portal's event loop (outbox.go).
	loop portalLoop

	// Metrics is always collected; it is served only when network.metrics.enabled is set.
	Metrics *metrics.Metrics

	clientsLock sync.Mutex
	clients     map[string]*IRCClient // by login ID, only connected ones
	all         map[string]*IRCClient // by login ID, every login with a client
	pacers      map[string]*irc.Pacer // by network ID, shared by its logins' connection loops
	userPacers  map[string]bool       // the user networks among pacers
	// startGCOnce opens the collector's window for the logins' start (startgc.go).
	startGCOnce sync.Once

	// quotes are recently bridged lines, for reply quotes on servers without message-tags.
	quotes quoteCache
	// shared indexes the connected logins by nick and channel (shared.go).
	shared sharing
	// states hands the logins' bridge states to bridgev2 from one goroutine (states.go).
	states stateRelay

	// spool keeps what is not delivered yet across a crash (package spool); inbox is its Matrix side;
	// undelivered are the given-up messages not told yet (undelivered.go).
	spool       *spool.Spool
	inbox       *spool.Inbox
	undelivered undeliveredNotices
	// idents are the open connections the identd answers for (identd.go).
	idents idents

	// ConfigPath is the config file's path (set by main), and generatedKey the credentials key the
	// config upgrade made on this start, if any: ValidateConfig checks that the file holds it.
	ConfigPath   string
	generatedKey string

	loginLocksMu sync.Mutex
	loginLocks   map[networkid.UserLoginID]*loginLock // held during a login or relogin flow
}

var (
	_ bridgev2.NetworkConnector            = (*IRCConnector)(nil)
	_ bridgev2.StoppableNetwork            = (*IRCConnector)(nil)
	_ bridgev2.ConfigValidatingNetwork     = (*IRCConnector)(nil)
	_ bridgev2.IdentifierValidatingNetwork = (*IRCConnector)(nil)
)

// waits are how long the connector waits before it tries again or gives up: the first retry of an
// IRC message bridgev2 failed to send (deliveryRetryFirst), the first later retry
// (retryLaterFirst), the answer to a command sent for the user (collectTimeout).
type waits struct {
	deliveryRetry, retryLater, collect time.Duration
}

// NewConnector makes an unconfigured connector; mxmain fills Config from the config file.
func NewConnector() *IRCConnector {
	c := &IRCConnector{
		clients: make(map[string]*IRCClient),
		all:     make(map[string]*IRCClient),
		pacers:  make(map[string]*irc.Pacer),
		Metrics: metrics.New(),
		loop:    portalInternals{},
		waits:   waits{deliveryRetry: deliveryRetryFirst, retryLater: retryLaterFirst, collect: collectTimeout},
	}
	c.Metrics.SetSources(c.connectionStates, c.queueDepth)
	return c
}

func (c *IRCConnector) Init(br *bridgev2.Bridge) {
	c.Bridge = br
	registerCommands(br, c)
	c.db = bridgeTables{db: br.DB, bridgeID: br.ID}
	c.spool = spool.New(br.DB.Database, br.Log.With().Str("component", "spool").Logger())
	c.spool.Tell = c.tellUndelivered
	c.spool.Unopenable = c.Metrics.SpoolUnopenable
	if mc, ok := br.Matrix.(*matrix.Connector); ok {
		c.inbox = spool.NewInbox(br, c.spool, mc.AS, mc.EventProcessor)
		poolHomeserverConnections(mc.AS)
	}
}

// ValidateConfig runs before Start, so a bad config stops the bridge with a precise message.
func (c *IRCConnector) ValidateConfig() error {
	if err := c.Config.Validate(); err != nil {
		return err
	}
	if c.ConfigPath != "" && c.generatedKey != "" && c.generatedKey == c.Config.CredentialsKey {
		return config.CheckGeneratedKey(c.generatedKey, c.ConfigPath)
	}
	return nil
}

func (c *IRCConnector) Start(ctx context.Context) error {
	if err := c.Config.Validate(); err != nil {
		return err
	}
	key, err := c.Config.SealingKey()
	if err != nil {
		return err
	}

	if c.sealer, err = sbdb.NewSealer(key); err != nil {
		return err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("sealbridge message ID key"))
	c.idKey = mac.Sum(nil)
	if err = c.spool.Start(c.Bridge.BackgroundCtx, c.sealer); err != nil {
		return fmt.Errorf("failed to start the delivery spool: %w", err)
	}
	c.inbox.Start(c.Bridge.BackgroundCtx)
	go c.pruneMedia(c.Bridge.BackgroundCtx)
	if c.Config.Identd.Enabled {
		ln, err := net.Listen("tcp", c.Config.Identd.Listen)
		if err != nil {
			return fmt.Errorf("network.identd.listen: %w", err)
		}
		go c.runIdentd(c.Bridge.BackgroundCtx, ln, c.Bridge.Log.With().Str("component", "identd").Logger())
	}
	if c.Config.Metrics.Enabled {
		log := c.Bridge.Log.With().Str("component", "metrics").Logger()
		go func() {
			if err := c.Metrics.Serve(c.Bridge.BackgroundCtx, c.Config.Metrics.Listen, log); err != nil {
				log.Err(err).Msg("Metrics listener failed")
			}
		}()
	}
	return nil
}

// Stop runs after bridgev2 has disconnected every login and ended the background context, before it
// closes the database: the spool's last writes (deliveries marked, messages stored) finish first,
// so that a clean restart delivers nothing twice.
func (c *IRCConnector) Stop() {
	c.spool.Wait()
}

func (c *IRCConnector) GetName() bridgev2.BridgeName {
	return bridgev2.BridgeName{
		DisplayName:          "IRC",
		NetworkURL:           "https://www.rfc-editor.org/rfc/rfc1459",
		NetworkID:            "irc",
		BeeperBridgeType:     "sealbridge",
		DefaultPort:          29355,
		DefaultCommandPrefix: "!sb", // not mautrix-irc's !irc
	}
}

func (c *IRCConnector) GetDBMetaTypes() database.MetaTypes {
	return sbdb.MetaTypes()
}

func (c *IRCConnector) GetCapabilities() *bridgev2.NetworkGeneralCapabilities {
	return &bridgev2.NetworkGeneralCapabilities{}
}

func (c *IRCConnector) GetBridgeInfoVersion() (info, capabilities int) {
	return 1, 1
}

func (c *IRCConnector) GetConfig() (example string, data any, upgrader configupgrade.Upgrader) {
	return config.ExampleYAML, &c.Config, configupgrade.SimpleUpgrader(func(h configupgrade.Helper) {
		if key := config.UpgradeGenerating(h); key != "" {
			c.generatedKey = key
		}
	})
}

// ValidateUserID tells bridgev2 which ghost IDs are ours: network/nick on a configured network or
// on a user network some login is on.
func (c *IRCConnector) ValidateUserID(id networkid.UserID) bool {
	network, nick, ok := ParseUserID(id)
	return ok && nick != "" && c.knownNetwork(network)
}

// LoadUserLogin attaches a client to a login loaded from the database; bridgev2 calls Connect next.
func (c *IRCConnector) LoadUserLogin(ctx context.Context, login *bridgev2.UserLogin) error {
	meta := login.Metadata.(*sbdb.UserLoginMetadata)
	network, err := c.loginNetwork(meta)
	if err != nil {
		login.Client = &brokenClient{reason: err.Error()}
		return nil
	}
	login.Client = newIRCClient(c, login, network)
	return nil
}

// register adds a login's client to the set the metrics report on (unregister removes it).
func (c *IRCConnector) register(cl *IRCClient) {
	c.clientsLock.Lock()
	c.all[string(cl.loginID)] = cl
	c.clientsLock.Unlock()
}

func (c *IRCConnector) unregister(cl *IRCClient) {
	c.clientsLock.Lock()
	if c.all[string(cl.loginID)] == cl {
		delete(c.all, string(cl.loginID))
	}
	c.clientsLock.Unlock()
}

func (c *IRCConnector) snapshot() []*IRCClient {
	c.clientsLock.Lock()
	defer c.clientsLock.Unlock()
	out := make([]*IRCClient, 0, len(c.all))
	for _, cl := range c.all {
		out = append(out, cl)
	}
	return out
}

func (c *IRCConnector) connectionStates() map[string]int {
	counts := map[string]int{}
	for _, cl := range c.snapshot() {
		counts[cl.state()]++
	}
	return counts
}

// metricsNetwork is the network label of the login's metrics: a configured network's ID, or "user"
// for a server the user named (a label value per host would let users grow the metrics).
func (cl *IRCClient) metricsNetwork() string {
	if cl.network.UserAdded {
		return "user"
	}
	return cl.network.ID
}

func (c *IRCConnector) queueDepth() map[string]int {
	depth := map[string]int{}
	for _, cl := range c.snapshot() {
		depth[metrics.QueueIRC] += cl.ircConn.QueueLen()
		depth[metrics.QueueHomeserver] += cl.remote.Len()
	}
	return depth
}

// maxUserNetworkPacers bounds the pacers kept for servers users named (one per host tried).
const maxUserNetworkPacers = 1024

// pacerFor is the network's connection pacer. Those of user networks are kept up to
// maxUserNetworkPacers; beyond it an arbitrary one is forgotten (its host gets a fresh one).
func (c *IRCConnector) pacerFor(network *config.Network) *irc.Pacer {
	c.clientsLock.Lock()
	defer c.clientsLock.Unlock()
	p := c.pacers[network.ID]
	if p == nil {
		if network.UserAdded {
			if c.userPacers == nil {
				c.userPacers = make(map[string]bool)
			}
			for id := range c.userPacers {
				if len(c.userPacers) < maxUserNetworkPacers {
					break
				}
				delete(c.userPacers, id)
				delete(c.pacers, id)
			}
			c.userPacers[network.ID] = true
		}
		p = irc.NewPacer(network.Reconnect.ConnectsPerSecond, network.Reconnect.ConnectBurst)
		c.pacers[network.ID] = p
	}
	return p
}

func (c *IRCConnector) trackClient(cl *IRCClient, connected bool) {
	c.clientsLock.Lock()
	if connected {
		c.clients[string(cl.loginID)] = cl
		c.shared.connected(cl, cl.fold(cl.ircConn.Nick()))
		c.clientsLock.Unlock()
		return
	}
	if c.clients[string(cl.loginID)] == cl {
		delete(c.clients, string(cl.loginID))
	}
	changed := c.shared.disconnected(cl)
	c.clientsLock.Unlock()
	tellLeadChanges(changed)
}

// isOtherLoginsNick tells whether nick is, on cl's network, the IRC connection of another login of
// this bridge. In a channel several logins share, that login bridges its own lines (as its user),
// so the others must not bridge them again as a ghost.
func (c *IRCConnector) isOtherLoginsNick(cl *IRCClient, nick string) bool {
	return c.shared.isOtherLogin(cl, cl.fold(nick))
}

// bridgesWithoutMsgID tells whether cl is the login that bridges a channel's lines that carry no
// msgid. With a msgid the first copy any login reads is taken (sharing.take); without one each
// login would make its own ID, so one login does it: the connected login with the lowest ID among
// those in the channel.
func (c *IRCConnector) bridgesWithoutMsgID(cl *IRCClient, foldedChannel string) bool {
	return c.shared.leads(cl, foldedChannel)
}

// postPlaintextNotice waits for a new portal's room to exist and for the user to be invited to it,
// then posts the notice that the IRC side is not encrypted (design: said once in every new portal).
// Waiting for the invite matters: the bot shares the Megolm session with the members its state store
// knows, so a message sent before the invite would stay undecryptable for the user.
func (c *IRCConnector) postPlaintextNotice(portal *bridgev2.Portal, user id.UserID) {
	log := c.Bridge.Log.With().Str("portal_id", string(portal.ID)).Logger()
	ctx, cancel := context.WithTimeout(log.WithContext(c.Bridge.BackgroundCtx), 5*time.Minute)
	defer cancel()
	if err := portal.RoomCreated.Wait(ctx); err != nil || portal.MXID == "" {
		log.Warn().Msg("Portal room was not created, no plaintext notice posted")
		return
	}
	// Polled after 100 ms, then half as long again each time, up to every 5 s: a room whose invite is slow
	// costs a few lookups, not fifty a second for minutes.
	for wait := 100 * time.Millisecond; ; wait = min(wait*3/2, 5*time.Second) {
		member, err := c.Bridge.Matrix.GetMemberInfo(ctx, portal.MXID, user)
		if err == nil && member != nil && (member.Membership == event.MembershipInvite || member.Membership == event.MembershipJoin) {
			break
		}
		select {
		case <-ctx.Done():
			log.Warn().Msg("User was never invited to the new portal, no plaintext notice posted")
			return
		case <-time.After(wait):
		}
	}
	content := &event.MessageEventContent{MsgType: event.MsgNotice, Body: c.Config.PlaintextNotice}
	if _, err := c.Bridge.Bot.SendMessage(ctx, portal.MXID, event.EventMessage, &event.Content{Parsed: content}, nil); err != nil {
		log.Err(err).Msg("Failed to post the plaintext notice")
	}
}

// lockLogin serialises the login flows of one login ID (or other key) and returns the unlock
// function. A lock lives only while someone holds or waits for it, so attempts at many hosts do
// not leave one behind each.
func (c *IRCConnector) lockLogin(id networkid.UserLoginID) func() {
	c.loginLocksMu.Lock()
	if c.loginLocks == nil {
		c.loginLocks = make(map[networkid.UserLoginID]*loginLock)
	}
	l := c.loginLocks[id]
	if l == nil {
		l = &loginLock{}
		c.loginLocks[id] = l
	}
	l.users++
	c.loginLocksMu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		c.loginLocksMu.Lock()
		if l.users--; l.users == 0 {
			delete(c.loginLocks, id)
		}
		c.loginLocksMu.Unlock()
	}
}

// loginLock is one key's lock and how many hold or wait for it.
type loginLock struct {
	mu    sync.Mutex
	users int
}
