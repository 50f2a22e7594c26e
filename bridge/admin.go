package bridge

import (
	"fmt"
	"sort"
	"strings"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/commands"
	"maunium.net/go/mautrix/bridgev2/networkid"

	"github.com/sealbridge/sealbridge/sbdb"
)

// Commands for bridge admins (bridge.permissions `admin`): every login on the bridge at a glance,
// and a login's connection restarted or the login ended, whoever it belongs to. (bridgev2's
// `sudo <user> <command>` runs any command as another user; these need no user ID.)
var (
	cmdLogins = &commands.FullHandler{
		Func: fnLogins,
		Name: "logins",
		Help: commands.HelpMeta{
			Section:     commands.HelpSectionAdmin,
			Description: "List every IRC login on the bridge: its user, network, nick, connection state, channels and queued events. A word filters the list.",
			Args:        "[_filter_]",
		},
		RequiresAdmin: true,
	}
	cmdReconnect = &commands.FullHandler{
		Func: fnReconnect,
		Name: "reconnect",
		Help: commands.HelpMeta{
			Section:     commands.HelpSectionAdmin,
			Description: "Drop a login's IRC connection and connect it again (any user's login).",
			Args:        "<_login ID_>",
		},
		RequiresAdmin: true,
	}
	cmdLogoutLogin = &commands.FullHandler{
		Func: fnLogoutLogin,
		Name: "logout-login",
		Help: commands.HelpMeta{
			Section:     commands.HelpSectionAdmin,
			Description: "Log any user's login out of IRC; the user is told.",
			Args:        "<_login ID_>",
		},
		RequiresAdmin: true,
	}
)

// loginRow is one line of `logins`.
type loginRow struct {
	id, user, network, nick, state string
	channels, queued               int
}

// loginRows describes every login with a client, sorted by login ID.
func (c *IRCConnector) loginRows() []loginRow {
	var rows []loginRow
	for _, cl := range c.snapshot() {
		cl.mu.Lock()
		r := loginRow{id: string(cl.loginID), network: cl.network.DisplayName(), channels: len(cl.channels)}
		cl.mu.Unlock()
		if cl.login != nil {
			r.user = string(cl.login.UserMXID)
		}
		r.nick, r.state, r.queued = cl.ircConn.Nick(), cl.state(), cl.ircConn.QueueLen()+cl.remote.Len()
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].id < rows[j].id })
	return rows
}

// loginTable is the text of `logins`, with only the rows that mention filter.
func loginTable(rows []loginRow, filter string) string {
	var b strings.Builder
	shown := 0
	for _, r := range rows {
		line := fmt.Sprintf("* `%s` - %s on %s as %s: %s, %d channel(s), %d event(s) queued", r.id, r.user, r.network, r.nick, r.state, r.channels, r.queued)
		if filter != "" && !strings.Contains(strings.ToLower(line), strings.ToLower(filter)) {
			continue
		}
		b.WriteString(line + "\n")
		shown++
	}
	return fmt.Sprintf("%d of %d IRC login(s):\n\n%s", shown, len(rows), b.String())
}

func fnLogins(ce *commands.Event) {
	conn, ok := ce.Bridge.Network.(*IRCConnector)
	if !ok {
		return
	}
	ce.Reply("%s", loginTable(conn.loginRows(), strings.Join(ce.Args, " ")))
}

// adminLogin finds the login a command names, whoever's it is.
func adminLogin(ce *commands.Event, usage string) *bridgev2.UserLogin {
	if len(ce.Args) != 1 {
		ce.Reply("Usage: `$cmdprefix %s <login ID>` (see `logins`)", usage)
		return nil
	}
	ul := ce.Bridge.GetCachedUserLoginByID(networkid.UserLoginID(ce.Args[0]))
	if ul == nil {
		ce.Reply("Login `%s` not found (see `logins`)", ce.Args[0])
	}
	return ul
}

func fnReconnect(ce *commands.Event) {
	conn, ok := ce.Bridge.Network.(*IRCConnector)
	ul := adminLogin(ce, "reconnect")
	if !ok || ul == nil {
		return
	}
	if err := conn.reconnectLogin(ul); err != nil {
		ce.Reply("Failed to reconnect `%s`: %v", ul.ID, err)
		return
	}
	ce.Reply("Reconnecting `%s`.", ul.ID)
}

// reconnectLogin replaces a login's client with a fresh one (a closed engine does not reconnect)
// and connects it, the way a relogin that failed puts the old connection back.
func (c *IRCConnector) reconnectLogin(ul *bridgev2.UserLogin) error {
	meta, ok := ul.Metadata.(*sbdb.UserLoginMetadata)
	if !ok {
		return fmt.Errorf("not an IRC login")
	}
	network, err := c.loginNetwork(meta)
	if err != nil {
		return err
	}
	unlock := c.lockLogin(ul.ID)
	defer unlock()
	if old, ok := ul.Client.(*IRCClient); ok {
		old.Disconnect()
		old.retire()
	}
	fresh := newIRCClient(c, ul, network)
	ul.Client = fresh
	fresh.Connect(c.Bridge.BackgroundCtx)
	return nil
}

func fnLogoutLogin(ce *commands.Event) {
	ul := adminLogin(ce, "logout-login")
	if ul == nil {
		return
	}
	if cl, ok := ul.Client.(*IRCClient); ok && ul.UserMXID != ce.User.MXID {
		cl.notifyUser(ce.Ctx, "A bridge admin logged your login `%s` out of %s.", ul.ID, cl.network.DisplayName())
	}
	ul.Logout(ce.Ctx)
	ce.Reply("Logged `%s` out.", ul.ID)
}
