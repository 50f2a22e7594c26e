package irc

import (
	"fmt"
	"strings"

	"github.com/ergochat/irc-go/ircevent"
	"github.com/ergochat/irc-go/ircmsg"
	"github.com/ergochat/irc-go/ircutils"
)

type saslState int

const (
	saslNone saslState = iota
	saslStarted
	saslSentResponse
	saslDone
)

// registration is the connection registration state machine, driven by the
// reader goroutine: CAP LS 302 -> CAP REQ -> (SASL PLAIN or EXTERNAL) -> CAP END ->
// RPL_WELCOME .. RPL_ISUPPORT .. RPL_ENDOFMOTD/ERR_NOMOTD.
type registration struct {
	s        *session
	c        *Client
	fallback bool

	nickAttempts int
	// offered accumulates CAP LS (possibly multi-line); refused holds the
	// capabilities the server NAKed on their own.
	offered    map[string]string
	refused    map[string]bool
	lsDone     bool
	pendingReq int
	capEnded   bool
	sasl       saslState
	welcomed   bool
	// identifying is set once IDENTIFY went to NickServ (Config.NickServPassword); before that,
	// checkingNickServ while the WHOIS that shows NickServ is the network's service is answered,
	// and nickServOK once it has shown that.
	identifying      bool
	checkingNickServ bool
	nickServOK       bool
}

func (r *registration) wantSASL() bool {
	return r.c.cfg.SASLExternal || r.c.cfg.SASLUser != "" || r.c.cfg.SASLPassword != ""
}

// saslMechanism is the mechanism registration uses: EXTERNAL with a client certificate, otherwise
// PLAIN.
func (r *registration) saslMechanism() string {
	if r.c.cfg.SASLExternal {
		return "EXTERNAL"
	}
	return "PLAIN"
}

// start sends the opening lines.
func (r *registration) start() {
	if w := r.c.cfg.WebIRC; w != nil {
		// https://ircv3.net/specs/extensions/webirc: first, before anything else
		_ = r.s.sendSecret("WEBIRC", w.Password, w.Gateway, w.Hostname, w.IP)
	}
	if r.c.cfg.ServerPassword != "" {
		_ = r.s.sendNow("PASS", r.c.cfg.ServerPassword)
	}
	// https://ircv3.net/specs/extensions/capability-negotiation
	_ = r.s.sendNow("CAP", "LS", "302")
	_ = r.s.sendNow("NICK", r.c.cfg.Nick)
	_ = r.s.sendNow("USER", r.c.cfg.Username, "0", "*", r.c.cfg.RealName)
}

// handle processes one line before registration completes. It returns
// done when registration is complete, or a terminal error.
func (r *registration) handle(msg *ircmsg.Message) (done bool, err error) {
	p := msg.Params
	switch msg.Command {
	case "CAP":
		return false, r.handleCap(msg)
	case "AUTHENTICATE":
		if r.sasl == saslStarted && len(p) > 0 && p[0] == "+" && r.c.cfg.SASLExternal {
			// EXTERNAL: an empty response, the account is the certificate's (authzid empty).
			_ = r.s.sendNow("AUTHENTICATE", "+")
			r.sasl = saslSentResponse
		} else if r.sasl == saslStarted && len(p) > 0 && p[0] == "+" {
			payload := "\x00" + r.c.cfg.SASLUser + "\x00" + r.c.cfg.SASLPassword
			for _, chunk := range ircutils.EncodeSASLResponse([]byte(payload)) {
				_ = r.s.sendNow("AUTHENTICATE", chunk)
			}
			r.sasl = saslSentResponse
		}
	case ircevent.RPL_LOGGEDIN:
		if len(p) > 2 {
			r.s.log.Debug().Str("account", p[2]).Msg("Logged in to IRC account")
		}
		if r.identifying {
			return true, nil
		}
	case "NOTICE":
		if r.identifying && strings.EqualFold(msg.Nick(), "NickServ") && len(p) > 1 && nickServRefused(p[len(p)-1]) {
			return false, fmt.Errorf("%w: %s", ErrNickServFailed, p[len(p)-1])
		}
	case ircevent.RPL_SASLSUCCESS, ircevent.ERR_SASLALREADY:
		if r.sasl != saslNone && r.sasl != saslDone {
			r.sasl = saslDone
			r.endCap()
		}
	case ircevent.ERR_NICKLOCKED, ircevent.ERR_SASLFAIL, ircevent.ERR_SASLTOOLONG, ircevent.ERR_SASLABORTED:
		return false, fmt.Errorf("%w (%s)", ErrSASLFailed, msg.Command)
	case ERR_INVALIDCAPCMD, ircevent.ERR_UNKNOWNCOMMAND:
		if len(p) > 1 && strings.EqualFold(p[1], "CAP") && !r.lsDone {
			// A server without capability negotiation.
			r.lsDone, r.capEnded = true, true
			if r.wantSASL() {
				return false, fmt.Errorf("%w: server does not support CAP", ErrSASLFailed)
			}
		}
	case ircevent.RPL_WELCOME:
		r.welcomed = true
		r.capEnded = true
		if r.wantSASL() && r.sasl != saslDone {
			return false, fmt.Errorf("%w: server registered us without SASL", ErrSASLFailed)
		}
	case ircevent.RPL_ISUPPORT:
		if len(p) > 2 {
			r.c.applyISupport(p[1 : len(p)-1])
		}
	case ircevent.RPL_ENDOFMOTD, ircevent.ERR_NOMOTD:
		if r.welcomed && r.c.cfg.NickServPassword != "" && !r.identifying && !r.checkingNickServ {
			// Services without SASL: identify before the login counts as connected, so that
			// rejoins of channels that need an identified nick (+R) work. First make sure the
			// nick NickServ is the network's service, not a user who took it.
			r.checkingNickServ = true
			_ = r.s.sendNow("WHOIS", "NickServ")
			return false, nil
		}
		if r.welcomed && !r.identifying {
			return true, nil
		}
	case ircevent.RPL_WHOISUSER, ircevent.RPL_WHOISSERVER, ircevent.RPL_WHOISOPERATOR:
		if r.checkingNickServ && len(p) > 1 && strings.EqualFold(p[1], "NickServ") && isServiceWhois(msg) {
			r.nickServOK = true
		}
	case ircevent.RPL_ENDOFWHOIS, ircevent.ERR_NOSUCHNICK:
		if !r.checkingNickServ || r.identifying || len(p) < 2 || !strings.EqualFold(p[1], "NickServ") {
			return false, nil
		}
		if !r.nickServOK {
			return false, fmt.Errorf("%w: NickServ is not a network service on this server (WHOIS shows no services server), so the password was not sent", ErrNickServFailed)
		}
		r.identifying = true
		r.s.identifyEcho = "IDENTIFY " + r.c.cfg.Nick + " " + r.c.cfg.NickServPassword
		_ = r.s.sendSecret("PRIVMSG", "NickServ", r.s.identifyEcho)
	case ircevent.ERR_NICKNAMEINUSE, ircevent.ERR_UNAVAILRESOURCE:
		if r.welcomed {
			return false, nil
		}
		if msg.Command == ircevent.ERR_UNAVAILRESOURCE && len(p) > 1 && r.c.IsChannel(p[1]) {
			return false, nil
		}
		if !r.fallback || r.nickAttempts >= maxNickFallbacks {
			return false, ErrNickInUse
		}
		r.nickAttempts++
		nick := r.c.cfg.Nick + strings.Repeat("_", r.nickAttempts)
		r.s.log.Debug().Str("nick", nick).Msg("Nick in use, trying fallback")
		_ = r.s.sendNow("NICK", nick)
	case ircevent.ERR_ERRONEUSNICKNAME:
		if !r.welcomed {
			return false, ErrErroneousNick
		}
	case ircevent.ERR_PASSWDMISMATCH:
		return false, ErrBadPassword
	case ircevent.ERR_YOUREBANNEDCREEP:
		return false, ErrBanned
	case "ERROR":
		text := ""
		if len(p) > 0 {
			text = p[len(p)-1]
		}
		if looksBanned(text) {
			return false, fmt.Errorf("%w: %s", ErrBanned, text)
		}
		return false, fmt.Errorf("%w: %s", ErrServerError, text)
	}
	return false, nil
}

func looksBanned(text string) bool {
	t := strings.ToLower(text)
	for _, w := range []string{"k-line", "g-line", "z-line", "d-line", "kline", "gline", "zline", "dline", "banned"} {
		if strings.Contains(t, w) {
			return true
		}
	}
	return false
}

// handleCap handles CAP during registration.
func (r *registration) handleCap(msg *ircmsg.Message) error {
	p := msg.Params
	if len(p) < 2 {
		return nil
	}
	sub := strings.ToUpper(p[1])
	switch sub {
	case "LS":
		if r.lsDone {
			return nil
		}
		more := len(p) >= 4 && p[2] == "*"
		r.c.addCapsBounded(r.offered, parseCapList(p[len(p)-1]))
		if more {
			return nil
		}
		r.lsDone = true
		r.c.setOffered(r.offered)
		req := capsToRequest(r.offered, r.c.enabledCaps(), r.refused, r.wantSASL())
		r.request(req, false)
		if r.pendingReq == 0 {
			return r.capsSettled()
		}
	case "ACK", "NAK":
		r.applyAckNak(sub, p)
		if len(p) >= 4 && p[2] == "*" {
			return nil // more lines follow
		}
		if r.pendingReq > 0 {
			r.pendingReq--
		}
		if r.pendingReq == 0 && r.lsDone && !r.capEnded && r.sasl == saslNone {
			return r.capsSettled()
		}
	case "NEW", "DEL":
		r.capNotify(sub, p[len(p)-1], false)
	}
	return nil
}

// applyAckNak records an ACK or NAK and, for a NAK of several
// capabilities, asks again for each one on its own: NAK refuses the whole
// request, so this finds the ones the server does accept.
func (r *registration) applyAckNak(sub string, p []string) {
	list := strings.Fields(p[len(p)-1])
	if sub == "ACK" {
		r.c.ackCaps(list, r.offered)
		return
	}
	r.s.log.Debug().Strs("caps", list).Msg("IRC server refused capabilities")
	if len(list) > 1 {
		r.request(list, true)
		return
	}
	for _, name := range list {
		r.refused[name] = true
	}
}

// request sends CAP REQ lines: the capabilities packed into as few lines
// as fit, or one per line when single is set (retrying after a NAK).
func (r *registration) request(caps []string, single bool) {
	lines := caps
	if !single {
		lines = chunkCaps(caps)
	}
	for _, l := range lines {
		if err := r.s.sendNow("CAP", "REQ", l); err == nil {
			r.pendingReq++
		}
	}
}

// capsSettled runs when every CAP REQ is answered: start SASL or end CAP.
func (r *registration) capsSettled() error {
	if !r.wantSASL() {
		r.endCap()
		return nil
	}
	if !r.c.HasCap("sasl") {
		return fmt.Errorf("%w: server does not offer SASL", ErrSASLFailed)
	}
	mech := r.saslMechanism()
	if !saslMechanismOffered(r.offered["sasl"], mech) {
		return fmt.Errorf("%w: server does not offer SASL %s", ErrSASLFailed, mech)
	}
	r.sasl = saslStarted
	_ = r.s.sendNow("AUTHENTICATE", mech)
	return nil
}

func (r *registration) endCap() {
	if !r.capEnded {
		r.capEnded = true
		_ = r.s.sendNow("CAP", "END")
	}
}

// capNotify handles CAP NEW and CAP DEL
// (https://ircv3.net/specs/extensions/capability-negotiation#cap-notify).
func (r *registration) capNotify(sub, list string, registered bool) {
	caps := parseCapList(list)
	if sub == "DEL" {
		names := make([]string, 0, len(caps))
		for name := range caps {
			delete(r.offered, name)
			names = append(names, name)
		}
		r.c.delCaps(names)
		r.c.setOffered(r.offered)
		return
	}
	r.c.addCapsBounded(r.offered, caps)
	r.c.setOffered(r.offered)
	if !registered && !r.lsDone {
		return
	}
	// SASL is only negotiated during registration.
	r.request(capsToRequest(caps, r.c.enabledCaps(), r.refused, false), false)
}

// handleCapAfterRegistration handles CAP lines once registered.
func (r *registration) handleCapAfterRegistration(msg *ircmsg.Message) {
	p := msg.Params
	if len(p) < 3 {
		return
	}
	sub := strings.ToUpper(p[1])
	switch sub {
	case "ACK", "NAK":
		r.applyAckNak(sub, p)
		if r.pendingReq > 0 && !(len(p) >= 4 && p[2] == "*") {
			r.pendingReq--
		}
	case "NEW", "DEL":
		r.capNotify(sub, p[len(p)-1], true)
	}
}

// nickServRefused recognises NickServ's refusals of IDENTIFY (Anope, Atheme and their kin).
// isServiceWhois tells whether a WHOIS reply line shows a network service: RPL_WHOISOPERATOR
// saying so ("is a Network Service", as InspIRCd, Solanum and ergo put it), or a user or server
// in the services' domain (Anope and Atheme behind most networks: services.example.org).
func isServiceWhois(msg *ircmsg.Message) bool {
	p := msg.Params
	switch msg.Command {
	case ircevent.RPL_WHOISOPERATOR:
		return strings.Contains(strings.ToLower(p[len(p)-1]), "service")
	case ircevent.RPL_WHOISSERVER: // me nick server :info
		return len(p) > 2 && strings.HasPrefix(strings.ToLower(p[2]), "services.")
	case ircevent.RPL_WHOISUSER: // me nick user host * :realname
		return len(p) > 3 && strings.HasPrefix(strings.ToLower(p[3]), "services.")
	}
	return false
}

func nickServRefused(text string) bool {
	t := strings.ToLower(text)
	for _, s := range []string{"password incorrect", "invalid password", "incorrect password", "isn't registered", "is not registered", "not a registered", "is not a registered"} {
		if strings.Contains(t, s) {
			return true
		}
	}
	return false
}
