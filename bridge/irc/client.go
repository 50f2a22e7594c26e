package irc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
	"github.com/rs/zerolog"
)

// Handler receives the events of a Client. All calls for one connection
// come from its reader goroutine, in order; a slow handler delays reading
// (and so, eventually, gets the connection dropped by the server).
type Handler interface {
	// OnConnected is called once registration is done (after RPL_ENDOFMOTD
	// or ERR_NOMOTD), with ISUPPORT known, before any OnMessage.
	OnConnected(c *Client)
	// OnMessage is called for every line received after registration, in
	// order. at is the server-time tag if present, else time.Now(). PINGs
	// are passed on too, but have already been answered.
	OnMessage(c *Client, msg *ircmsg.Message, at time.Time)
	// OnDisconnected is called when a registered connection ends, and by
	// Run also when a connection attempt fails. willRetry tells whether Run
	// will reconnect. err is nil after Close or when Run's context ends.
	OnDisconnected(c *Client, err error, willRetry bool)
}

// Client is a connection to one IRC server as one user.
type Client struct {
	cfg Config
	h   Handler
	log zerolog.Logger

	closeCtx    context.Context
	closeCancel context.CancelFunc

	mu         sync.Mutex
	sess       *session // current session, registering or registered
	registered bool
	connecting bool
	// abortConnect cancels the connection attempt in progress, for Close. (A context.AfterFunc
	// on closeCtx would do it too, but leave closeCtx's map of children allocated for as long as
	// the client lives.)
	abortConnect context.CancelFunc
	running      bool
	closed       bool
	nick         string
	user, host   string
	isupport     ISupport
	caps         map[string]string // enabled capabilities and their values
	offered      map[string]string // capabilities the server offers
}

// New returns a Client; nothing happens until Connect or Run.
func New(cfg Config, h Handler, log zerolog.Logger) *Client {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Client{
		cfg: cfg,
		h:   h,
		// The server's address goes on the connection events only: a logger context of the
		// client's own would cost it a 500-byte buffer for as long as it lives.
		log:         log,
		closeCtx:    ctx,
		closeCancel: cancel,
		nick:        cfg.Nick,
		isupport:    defaultISupport(),
		caps:        map[string]string{},
		offered:     map[string]string{},
	}
}

// Connect makes one connection attempt: dial (and TLS), CAP LS 302, CAP
// REQ, SASL PLAIN, NICK/USER, and waits for registration, within
// Config.ConnectTimeout. On success the reader goroutine runs (and the
// writer while lines wait) and Handler.OnConnected has been called.
func (c *Client) Connect(ctx context.Context) error {
	_, err := c.connect(ctx, c.cfg.NickFallback)
	return err
}

func (c *Client) connect(ctx context.Context, fallback bool) (*session, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout)
	defer cancel()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	if c.sess != nil || c.connecting {
		c.mu.Unlock()
		return nil, ErrAlreadyConnected
	}
	c.connecting = true
	c.abortConnect = cancel
	c.nick = c.cfg.Nick
	c.user, c.host = "", ""
	c.isupport = defaultISupport()
	c.caps = map[string]string{}
	c.offered = map[string]string{}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.connecting = false
		c.abortConnect = nil
		c.mu.Unlock()
	}()

	c.log.Debug().Bool("tls", c.cfg.TLS).Msg("Connecting to IRC server")
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, c.ctxError(ctx, err)
	}
	s := newSession(c, conn, fallback)
	c.mu.Lock()
	c.sess = s
	c.mu.Unlock()
	// Queue the opening lines before reading so that they precede any PONG.
	s.reg.start()
	go s.run()

	select {
	case err = <-s.regResult:
	case <-ctx.Done():
		select {
		case err = <-s.regResult:
		default:
			c.mu.Lock()
			registered := c.sess == s && c.registered
			c.mu.Unlock()
			if !registered {
				_ = conn.Close()
			}
			// The reader always sends one result. nil means registration
			// won the race (OnConnected was called): report success and let
			// the session end like any other, with OnDisconnected.
			if err = <-s.regResult; err != nil {
				<-s.done
				return nil, c.ctxError(ctx, ctx.Err())
			}
		}
	}
	if err != nil {
		<-s.done
		c.log.Debug().Err(err).Msg("IRC registration failed")
		return nil, err
	}
	return s, nil
}

// ctxError turns a failure while ctx is done into ErrTimeout or ErrClosed.
func (c *Client) ctxError(ctx context.Context, err error) error {
	switch {
	case c.closeCtx.Err() != nil:
		return ErrClosed
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return err
}

func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	dial := c.cfg.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	conn, err := dial(ctx, "tcp", c.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("irc: dial %s: %w", c.cfg.Addr, err)
	}
	if !c.cfg.TLS {
		if c.cfg.SASLExternal {
			_ = conn.Close()
			return nil, fmt.Errorf("%w: SASL EXTERNAL needs a TLS connection for its client certificate", ErrSASLFailed)
		}
		return conn, nil
	}
	var tc *tls.Config
	if c.cfg.TLSConfig != nil {
		tc = c.cfg.TLSConfig.Clone()
	} else {
		tc = &tls.Config{}
	}
	if tc.ServerName == "" {
		host, _, err := net.SplitHostPort(c.cfg.Addr)
		if err != nil {
			host = c.cfg.Addr
		}
		tc.ServerName = host
	}
	if tc.MinVersion == 0 {
		tc.MinVersion = tls.VersionTLS12
	}
	tlsConn := tls.Client(conn, tc)
	if err := tlsConn.HandshakeContext(ctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("irc: TLS handshake with %s: %w", c.cfg.Addr, err)
	}
	return tlsConn, nil
}

// onRegistered runs in the reader goroutine when registration completes.
func (c *Client) onRegistered(s *session) {
	c.mu.Lock()
	s.registeredAt = time.Now()
	c.registered = true
	nick, network := c.nick, c.isupport.Network
	c.mu.Unlock()
	c.log.Info().Str("irc_server", c.cfg.Addr).Str("nick", nick).Str("network", network).Msg("Registered on IRC server")
	c.h.OnConnected(c)
}

// sessionEnded runs in the reader goroutine when a session is over.
func (c *Client) sessionEnded(s *session, registered bool) {
	c.mu.Lock()
	if c.sess == s {
		c.sess = nil
		c.registered = false
	}
	report := registered && !c.running
	c.mu.Unlock()
	if registered {
		c.log.Info().Str("irc_server", c.cfg.Addr).Err(s.err).Msg("Disconnected from IRC server")
	}
	if report {
		c.h.OnDisconnected(c, s.err, false)
	}
}

// Run keeps the connection up until ctx is done or Close is called. It
// connects if not connected; when the connection drops it calls
// OnDisconnected(err, true) and reconnects after an exponential backoff
// with full jitter (reset after a connection that stayed up over a
// minute). Failed attempts are reported the same way. On a fatal error
// (IsFatal: ErrSASLFailed, ErrBadPassword, ErrBanned, ErrErroneousNick) it
// calls OnDisconnected(err, false) and returns. Reconnects try nick
// fallbacks whatever Config.NickFallback says.
func (c *Client) Run(ctx context.Context) {
	r, s := c.startRun(ctx)
	if r == nil {
		return
	}
	c.runLoop(r, s)
	<-r.done
}

// Start is Run in the background. While connected the loop holds no goroutine of its own: the
// connection's reader goes on with it once the connection ends (a bridge of ten thousand logins
// would otherwise keep ten thousand goroutines waiting).
func (c *Client) Start(ctx context.Context) {
	r, s := c.startRun(ctx)
	if r == nil {
		return
	}
	go c.runLoop(r, s)
}

// runState is one run of the connection loop.
type runState struct {
	ctx      context.Context
	attempt  int
	fallback bool
	done     chan struct{} // closed when the loop ends
}

// startRun marks the client running and returns the loop's state and the registered session to
// watch, if any; nil if the loop runs already or the client is closed.
func (c *Client) startRun(ctx context.Context) (*runState, *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running || c.closed {
		return nil, nil
	}
	c.running = true
	var s *session
	if c.registered {
		s = c.sess
	}
	return &runState{ctx: ctx, fallback: c.cfg.NickFallback, done: make(chan struct{})}, s
}

func (c *Client) endRun(r *runState) {
	c.mu.Lock()
	c.running = false
	c.mu.Unlock()
	close(r.done)
}

// runLoop keeps the run's connection up: it connects unless s is a session to watch, and leaves
// the wait for the session's end to the session (watch), whose reader calls runLoop again with it.
func (c *Client) runLoop(r *runState, s *session) {
	for {
		if s == nil {
			if s = c.connectForRun(r); s == nil {
				c.endRun(r)
				return
			}
		}
		if c.watch(r, s) {
			return
		}
		if !c.afterSession(r, s) {
			c.endRun(r)
			return
		}
		s = nil
	}
}

// connectForRun connects, reporting failed attempts and retrying them after a backoff; nil once
// the run is over (its context ends, the client is closed, or a fatal error was reported).
func (c *Client) connectForRun(r *runState) *session {
	ctx := r.ctx
	for {
		if ctx.Err() != nil || c.closeCtx.Err() != nil {
			return nil
		}
		if c.cfg.Pace != nil {
			// A shared pacer spreads the connections of many clients (e.g. after a
			// server restart) instead of letting them all dial at once.
			if err := c.cfg.Pace(ctx); err != nil {
				return nil
			}
		}
		s, err := c.connect(ctx, r.fallback)
		r.fallback = true
		switch {
		case err == nil:
			return s
		case ctx.Err() != nil || c.closeCtx.Err() != nil || errors.Is(err, ErrClosed):
			return nil
		case errors.Is(err, ErrAlreadyConnected):
			// Someone else is connecting; wait and look again.
			if !c.sleep(ctx, c.cfg.Backoff.Min) {
				return nil
			}
			c.mu.Lock()
			if c.registered {
				s = c.sess
			}
			c.mu.Unlock()
			if s != nil {
				return s
			}
			continue
		case IsFatal(err):
			c.log.Warn().Str("irc_server", c.cfg.Addr).Err(err).Msg("Giving up connecting to IRC server")
			c.h.OnDisconnected(c, err, false)
			return nil
		}
		delay := backoffDelay(c.cfg.Backoff, r.attempt, nil)
		r.attempt++
		c.log.Info().Str("irc_server", c.cfg.Addr).Err(err).Dur("retry_in", delay).Msg("Failed to connect to IRC server")
		c.h.OnDisconnected(c, err, true)
		if !c.sleep(ctx, delay) {
			return nil
		}
	}
}

// watch leaves the session to end the run's wait: when it ends, its reader goes on with the loop
// (runLoop with the ended session). It returns false if the session has ended already (the caller
// goes on itself). The run's context ending shuts the session down.
func (c *Client) watch(r *runState, s *session) bool {
	stop := context.AfterFunc(r.ctx, func() { c.shutdown(s, "") })
	s.endMu.Lock()
	defer s.endMu.Unlock()
	if s.ended {
		stop()
		return false
	}
	s.onEnd = func() {
		stop()
		c.runLoop(r, s)
	}
	return true
}

// afterSession reports the end of a run's session and waits out the backoff; false if the run is
// over (the caller ends it).
func (c *Client) afterSession(r *runState, s *session) bool {
	ctx := r.ctx
	err := s.err
	if time.Since(s.registeredAt) > stableConnection {
		r.attempt = 0
	}
	if ctx.Err() != nil || c.closeCtx.Err() != nil {
		c.h.OnDisconnected(c, nil, false)
		return false
	}
	if IsFatal(err) {
		c.h.OnDisconnected(c, err, false)
		return false
	}
	delay := backoffDelay(c.cfg.Backoff, r.attempt, nil)
	r.attempt++
	c.log.Info().Str("irc_server", c.cfg.Addr).Dur("retry_in", delay).Msg("Reconnecting to IRC server")
	c.h.OnDisconnected(c, err, true)
	return c.sleep(ctx, delay)
}

// sleep waits d; false if ctx ends or the client is closed first.
func (c *Client) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-c.closeCtx.Done():
		return false
	}
}

// shutdown sends QUIT, waits briefly for the server to close the link, and
// then closes it. Every wait is bounded, so that a Close called from a
// Handler callback (that is, from the reader goroutine) cannot deadlock.
func (c *Client) shutdown(s *session, reason string) {
	s.quitting.Store(true)
	if reason == "" {
		reason = "Bye"
	}
	if line, err := encodeLine(nil, "QUIT", []string{reason}, 0); err == nil {
		_ = s.enqueue(outLine{data: line}, true)
	}
	t := time.NewTimer(c.cfg.QuitWait)
	defer t.Stop()
	select {
	case <-s.done:
		return
	case <-t.C:
	}
	_ = s.conn.Close()
	t.Reset(c.cfg.QuitWait)
	select {
	case <-s.done:
	case <-t.C:
	}
}

// Running reports whether Run's connection loop is still going (Close stops it, not at once).
func (c *Client) Running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.running || c.connecting
}

// Close sends QUIT, closes the connection and stops Run; the Client cannot
// be used again. It waits up to a few seconds for the server to close the
// link; call it from a new goroutine when inside a Handler callback.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	s := c.sess
	abort := c.abortConnect
	c.mu.Unlock()
	c.closeCancel()
	if abort != nil {
		abort()
	}
	if s != nil {
		c.shutdown(s, "")
	}
	return nil
}

// Send queues a line through flood control. PONG, PING, CAP, AUTHENTICATE
// and QUIT go out at once like SendPriority.
func (c *Client) Send(command string, params ...string) error {
	return c.send(false, nil, nil, nil, command, params)
}

// SendTagged is Send with message tags (values are escaped).
func (c *Client) SendTagged(tags map[string]string, command string, params ...string) error {
	return c.send(false, tags, nil, nil, command, params)
}

// SendOptions are the extras of SendWith.
type SendOptions struct {
	Tags map[string]string
	// Written, if set, runs once the line is on the socket, from the writer goroutine (keep it
	// short); never if the connection ends before the line goes out.
	Written func()
	// Reply, if set and the server has labeled-response, receives the server's response to the
	// line (see labels.go); without labeled-response it is never called.
	Reply ReplyFunc
	// Unsent, if set, runs when the connection ends before the line was written (it was still
	// queued, or its write failed), from one of the connection's goroutines; Written and Reply are
	// then never called for it. The caller may send it again on the next connection.
	Unsent func()
}

// SendWith is Send with tags, a write callback and a labeled reply.
func (c *Client) SendWith(o SendOptions, command string, params ...string) error {
	if o.Reply == nil || !c.HasCap("labeled-response") || !c.HasCap("batch") {
		o.Reply = nil
	}
	return c.sendOpts(false, o, command, params)
}

// SendPriority sends a line ahead of the queue, bypassing flood control.
func (c *Client) SendPriority(command string, params ...string) error {
	return c.send(true, nil, nil, nil, command, params)
}

func (c *Client) send(priority bool, tags map[string]string, written func(), reply ReplyFunc, command string, params []string) error {
	return c.sendOpts(priority, SendOptions{Tags: tags, Written: written, Reply: reply}, command, params)
}

func (c *Client) sendOpts(priority bool, o SendOptions, command string, params []string) error {
	tags, written, reply := o.Tags, o.Written, o.Reply
	c.mu.Lock()
	s, registered := c.sess, c.registered
	c.mu.Unlock()
	var label string
	if reply != nil && s != nil {
		label = s.labels.add(reply)
		withLabel := make(map[string]string, len(tags)+1)
		for k, v := range tags {
			withLabel[k] = v
		}
		withLabel["label"] = label
		tags = withLabel
	}
	line, err := encodeLine(tags, command, params, c.lineLimit())
	if err == nil && (s == nil || !registered) {
		err = ErrNotConnected
	}
	upper := strings.ToUpper(command)
	if err == nil {
		err = s.enqueue(outLine{data: line, redact: carriesSecret(upper, params), written: written, unsent: o.Unsent, label: label}, priority || bypassesFlood(upper))
	}
	if err != nil && label != "" {
		s.labels.drop(label)
	}
	return err
}

// lineLimit is the maximum line length without tags, CRLF included.
func (c *Client) lineLimit() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.isupport.LineLen; n > 0 && n < maxLineLen {
		return n
	}
	return maxLineLen
}

// MaxTextBytes returns how many bytes of trailing text fit in
// "COMMAND target :text" so that the line as the server relays it
// (":nick!user@host COMMAND target :text\r\n") stays within 512 bytes. It
// uses our real user@host when known, else assumes a 10-byte user and a
// 63-byte host.
func (c *Client) MaxTextBytes(command, target string) int {
	limit := c.lineLimit()
	c.mu.Lock()
	nick, user, host := c.nick, c.user, c.host
	c.mu.Unlock()
	ulen, hlen := len(user), len(host)
	if user == "" {
		ulen = 10
	}
	if host == "" {
		hlen = 63
	}
	// ":" nick "!" user "@" host " " command " " target " :" text "\r\n"
	n := limit - (1 + len(nick) + 1 + ulen + 1 + hlen + 1 + len(command) + 1 + len(target) + 2 + 2)
	if n < 0 {
		return 0
	}
	return n
}

// Nick returns our current nick.
func (c *Client) Nick() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nick
}

// UserHost returns our user and host as the server shows them to others,
// if known.
func (c *Client) UserHost() (user, host string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.user, c.host
}

// ISupportValue returns one ISUPPORT token's value without copying the rest.
func (c *Client) ISupportValue(key string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.isupport.Raw[key]
	return v, ok
}

// PrefixSymbols returns the status prefixes of PREFIX, highest first ("@+" by default).
func (c *Client) PrefixSymbols() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.isupport.PrefixSymbols
}

// Prefix returns PREFIX's modes and their status symbols, highest first ("ov" and "@+" by default).
func (c *Client) Prefix() (modes, symbols string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.isupport.PrefixModes, c.isupport.PrefixSymbols
}

// ISupport returns a snapshot of the server's ISUPPORT tokens (a copy: use ISupportValue or
// PrefixSymbols on paths taken for every line).
func (c *Client) ISupport() ISupport {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.isupport.clone()
}

// Casefold folds s with the server's CASEMAPPING.
func (c *Client) Casefold(s string) string {
	c.mu.Lock()
	mapping := c.isupport.CaseMapping
	c.mu.Unlock()
	return Casefold(mapping, s)
}

// IsChannel reports whether target starts with one of the server's
// CHANTYPES.
func (c *Client) IsChannel(target string) bool {
	c.mu.Lock()
	types := c.isupport.ChanTypes
	c.mu.Unlock()
	return target != "" && strings.IndexByte(types, target[0]) >= 0
}

// HasCap reports whether the capability was acknowledged.
func (c *Client) HasCap(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.caps[name]
	return ok
}

// CapValue returns the value the server advertised for an enabled
// capability (e.g. "max-bytes=4096" for draft/multiline).
func (c *Client) CapValue(name string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.caps[name]
	return v, ok
}

// Connected reports whether a registered connection is up.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess != nil && c.registered
}

// QueueLen is the number of lines waiting in the send queue (flood control) of the current
// connection; 0 when disconnected.
func (c *Client) QueueLen() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess == nil {
		return 0
	}
	return c.sess.queue.len()
}

func (c *Client) setNick(nick string) {
	c.mu.Lock()
	c.nick = nick
	c.mu.Unlock()
}

func (c *Client) setUserHost(user, host string) {
	c.mu.Lock()
	if user != "" {
		c.user = user
	}
	if host != "" {
		c.host = host
	}
	c.mu.Unlock()
}

func (c *Client) isMe(nick string) bool {
	c.mu.Lock()
	me, mapping := c.nick, c.isupport.CaseMapping
	c.mu.Unlock()
	return Casefold(mapping, nick) == Casefold(mapping, me)
}

func (c *Client) applyISupport(tokens []string) {
	c.mu.Lock()
	dropped := c.isupport.apply(tokens)
	c.mu.Unlock()
	for ; dropped > 0; dropped-- {
		c.cfg.Limited(LimitISupport)
	}
}

// addCapsBounded adds parsed capabilities to m: the ones we request always, others while m holds
// fewer than maxCaps; the rest are reported.
func (c *Client) addCapsBounded(m, caps map[string]string) {
	for k, v := range caps {
		if _, known := m[k]; !known && len(m) >= maxCaps && !slices.Contains(wantedCaps, k) {
			c.cfg.Limited(LimitISupport)
			continue
		}
		m[k] = v
	}
}

func (c *Client) setOffered(offered map[string]string) {
	c.mu.Lock()
	c.offered = make(map[string]string, len(offered))
	for k, v := range offered {
		c.offered[k] = v
	}
	c.mu.Unlock()
}

func (c *Client) enabledCaps() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]string, len(c.caps))
	for k, v := range c.caps {
		out[k] = v
	}
	return out
}

func (c *Client) ackCaps(list []string, offered map[string]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, name := range list {
		if strings.HasPrefix(name, "-") {
			delete(c.caps, name[1:])
			continue
		}
		c.caps[name] = offered[name]
	}
}

func (c *Client) delCaps(names []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, name := range names {
		delete(c.caps, name)
	}
}
