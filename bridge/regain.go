package bridge

import (
	"context"
	"strings"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
)

// Taking back a registered nick someone else holds. A login identified to a services account asks
// NickServ for the account's nick: Atheme (and ergo) call it REGAIN, Anope RECOVER; both rename
// the holder and change the asker's nick. Nothing secret is sent: the services know the asker by
// the account it logged in to.

// regainTimeout bounds the wait for the services' answer to each command.
const regainTimeout = 8 * time.Second

// ownsNick tells whether nick is the login's services account name, which it may take back.
func (cl *IRCClient) ownsNick(nick string) bool {
	cl.mu.Lock()
	account := cl.meta.SASLAccount
	cl.mu.Unlock()
	return account != "" && cl.fold(account) == cl.fold(nick)
}

// regainNick asks the services for nick and tells whether the login has it now; otherwise the
// services' last word, or that they did not answer.
func (cl *IRCClient) regainNick(ctx context.Context, nick string) (bool, string) {
	said := "no answer"
	for _, command := range []string{"REGAIN", "RECOVER"} {
		c, cancel := context.WithTimeout(ctx, regainTimeout)
		old := cl.fold(cl.ircConn.Nick())
		lines, _, _, err := cl.collect(c, func(m *ircmsg.Message) (bool, bool) {
			switch {
			case m.Command == "NICK" && cl.fold(m.Nick()) == old:
				return true, true
			case m.Command == "NOTICE" && strings.EqualFold(m.Nick(), "NickServ"):
				return true, unknownServicesCommand(param(m, 1))
			}
			return false, false
		}, func() error { return cl.ircConn.Send("PRIVMSG", "NickServ", command+" "+nick) })
		cancel()
		if err != nil {
			return false, err.Error()
		}
		unknown := false
		for _, m := range lines {
			if m.Command == "NOTICE" {
				said = "NickServ: " + param(m, 1)
				unknown = unknown || unknownServicesCommand(param(m, 1))
			}
		}
		if cl.fold(cl.ircConn.Nick()) == cl.fold(nick) {
			return true, ""
		}
		if !unknown {
			break // the services know the command and refused, or said nothing
		}
	}
	return false, said
}

// unknownServicesCommand recognises the services' answer to a command they do not have (Anope:
// "Unknown command REGAIN", Atheme: "Invalid command").
func unknownServicesCommand(text string) bool {
	text = strings.ToLower(text)
	return strings.Contains(text, "unknown command") || strings.Contains(text, "invalid command")
}
