package bridge

import (
	"fmt"
	"strings"

	"maunium.net/go/mautrix/bridgev2"
	"maunium.net/go/mautrix/bridgev2/commands"
)

// The bridge's own bot commands. bridgev2 provides help, login, logout, list-logins and
// start-chat/pm; these add what IRC needs.
var (
	cmdJoin = &commands.FullHandler{
		Func: fnJoin,
		Name: "join",
		Help: commands.HelpMeta{
			Section:     commands.HelpSectionChats,
			Description: "Join an IRC channel and open its encrypted room. With logins on several networks, name the network first.",
			Args:        "[_network_] <_#channel_> [_key_]",
		},
		RequiresLogin: true,
	}
	cmdPart = &commands.FullHandler{
		Func: fnPart,
		Name: "part",
		Help: commands.HelpMeta{
			Section:     commands.HelpSectionChats,
			Description: "Leave an IRC channel. With logins on several networks, name the network first.",
			Args:        "[_network_] <_#channel_> [_reason_]",
		},
		RequiresLogin: true,
	}
	cmdCertFP = &commands.FullHandler{
		Func: fnCertFP,
		Name: "certfp",
		Help: commands.HelpMeta{
			Section:     commands.HelpSectionAuth,
			Description: "Show the fingerprints of your login's client certificate (made by `login certfp`), e.g. to check them against `/msg NickServ CERT LIST`.",
			Args:        "[_network_]",
		},
		RequiresLogin: true,
	}
	cmdRequests = &commands.FullHandler{
		Func: fnRequests,
		Name: "requests",
		Help: commands.HelpMeta{
			Section:     commands.HelpSectionChats,
			Description: "List the private messages from people you have no chat with that wait as message requests; `pm <nick>` opens a chat and delivers theirs, `requests clear [nick]` drops them.",
			Args:        "[_network_] [clear [_nick_]]",
		},
		RequiresLogin: true,
	}
	cmdNetworks = &commands.FullHandler{
		Func: fnNetworks,
		Name: "networks",
		Help: commands.HelpMeta{
			Section:     commands.HelpSectionAuth,
			Description: "List the IRC networks you can log in to, and your logins on them.",
		},
	}
)

func registerCommands(br *bridgev2.Bridge, c *IRCConnector) {
	proc, ok := br.Commands.(*commands.Processor)
	if !ok {
		return
	}
	proc.AddHandlers(cmdJoin, cmdPart, cmdNetworks, cmdCertFP, cmdMediaLinks, cmdRequests, cmdLogins, cmdReconnect, cmdLogoutLogin,
		cmdWhois, cmdNick, cmdList, cmdTopic, cmdInvite, cmdMode, cmdIgnore, cmdUnignore, cmdAway, cmdRaw)
}

// loginForArgs picks the login a command acts on: the network named by the first argument when it is
// one of the user's networks, otherwise the user's only (or default) login.
func loginForArgs(ce *commands.Event) (*IRCClient, []string, error) {
	args := ce.Args
	logins := ce.User.GetUserLogins()
	if len(args) > 0 {
		for _, ul := range logins {
			if cl, ok := ul.Client.(*IRCClient); ok && strings.EqualFold(cl.network.ID, args[0]) {
				return cl, args[1:], nil
			}
		}
	}
	var clients []*IRCClient
	for _, ul := range logins {
		if cl, ok := ul.Client.(*IRCClient); ok {
			clients = append(clients, cl)
		}
	}
	switch len(clients) {
	case 0:
		return nil, nil, fmt.Errorf("you are not logged in to any IRC network; use `$cmdprefix login` first")
	case 1:
		return clients[0], args, nil
	}
	if ce.Portal != nil {
		if network, _, ok := ParsePortalID(ce.Portal.ID); ok {
			for _, cl := range clients {
				if cl.network.ID == network {
					return cl, args, nil
				}
			}
		}
	}
	names := make([]string, len(clients))
	for i, cl := range clients {
		names[i] = cl.network.ID
	}
	return nil, nil, fmt.Errorf("you have logins on several networks; name one first: %s", strings.Join(names, ", "))
}

// safeArg rejects anything that could smuggle a second IRC command or parameter.
func safeArg(s string) error {
	if s == "" || strings.ContainsAny(s, " ,\r\n\x00\x07") {
		return fmt.Errorf("%q is not a valid channel name or key", s)
	}
	return nil
}

func fnJoin(ce *commands.Event) {
	cl, args, err := loginForArgs(ce)
	if err != nil {
		ce.Reply("%v", err)
		return
	}
	if len(args) == 2 {
		// The command carries a channel key: take it out of the room, like a password.
		ce.Redact()
	}
	if len(args) < 1 || len(args) > 2 {
		ce.Reply("Usage: `$cmdprefix join [network] <#channel> [key]`")
		return
	}
	channel, key := args[0], ""
	if len(args) == 2 {
		key = args[1]
		if err = safeArg(key); err != nil {
			ce.Reply("That channel key cannot be sent to IRC (it contains a space, comma or control character).")
			return
		}
	}
	if err = safeArg(channel); err != nil || !cl.ircConn.IsChannel(channel) {
		ce.Reply("%q is not a channel name on %s (channels start with one of `%s`)", channel, cl.network.DisplayName(), cl.ircConn.ISupport().ChanTypes)
		return
	}
	folded := cl.fold(channel)
	limit := cl.connector.limits().MaxChannels
	cl.mu.Lock()
	_, known := cl.meta.Channels[folded]
	full := !known && len(cl.meta.Channels) >= limit
	cl.mu.Unlock()
	if full {
		ce.Reply("You are in %d channels on %s, the most this bridge allows; `part` one first.", limit, cl.network.DisplayName())
		return
	}
	sealed := ""
	if key != "" {
		if sealed, err = cl.connector.sealSecret(key, string(cl.loginID), cl.meta); err != nil {
			ce.Reply("Failed to seal the channel key: %v", err)
			return
		}
	}
	// Stored before the JOIN goes out: the channel is one the user asked for (admitChannel), and
	// the key is kept for reconnects. A JOIN the server refuses removes it again.
	cl.rememberChannel(channel, sealed, key != "")
	if err = cl.join(channel, key); err != nil {
		ce.Reply("Failed to join %s: %v", channel, err)
		return
	}
	ce.Reply("Joining %s on %s; you will be invited to its room.", channel, cl.network.DisplayName())
}

func fnPart(ce *commands.Event) {
	cl, args, err := loginForArgs(ce)
	if err != nil {
		ce.Reply("%v", err)
		return
	}
	if len(args) < 1 {
		ce.Reply("Usage: `$cmdprefix part [network] <#channel> [reason]`")
		return
	}
	channel := args[0]
	if err = safeArg(channel); err != nil || !cl.ircConn.IsChannel(channel) {
		ce.Reply("%q is not a channel name", channel)
		return
	}
	reason := strings.Join(args[1:], " ")
	if strings.ContainsAny(reason, "\r\n\x00") {
		ce.Reply("The reason must be one line")
		return
	}
	if reason == "" {
		err = cl.ircConn.Send("PART", channel)
	} else {
		err = cl.ircConn.Send("PART", channel, reason)
	}
	if err != nil {
		ce.Reply("Failed to leave %s: %v", channel, err)
		return
	}
	ce.Reply("Leaving %s.", channel)
}

func fnRequests(ce *commands.Event) {
	cl, args, err := loginForArgs(ce)
	if err != nil {
		ce.Reply("%v", err)
		return
	}
	switch {
	case len(args) == 0:
		if list := cl.requestList(); list != "" {
			ce.Reply("%s", list)
		} else {
			ce.Reply("No message requests wait on %s.", cl.network.DisplayName())
		}
	case strings.EqualFold(args[0], "clear") && len(args) <= 2:
		folded := ""
		if len(args) == 2 {
			folded = cl.fold(args[1])
		}
		ce.Reply("Dropped %d waiting message(s).", cl.clearRequests(folded))
	default:
		ce.Reply("Usage: `$cmdprefix requests [network] [clear [nick]]`")
	}
}

func fnCertFP(ce *commands.Event) {
	cl, _, err := loginForArgs(ce)
	if err != nil {
		ce.Reply("%v", err)
		return
	}
	cl.mu.Lock()
	fp, ok := certFingerprints(cl.meta)
	account := cl.meta.SASLAccount
	cl.mu.Unlock()
	if !ok {
		ce.Reply("Your login on %s has no client certificate. `$cmdprefix relogin %s certfp` makes one and adds it to your account.", cl.network.DisplayName(), cl.loginID)
		return
	}
	ce.Reply("Your login on %s logs in to the account %s with a client certificate. Its fingerprints:\n\n* SHA-256 `%s`\n* SHA-1 `%s`\n* SHA-512 `%s`", cl.network.DisplayName(), account, fp.SHA256, fp.SHA1, fp.SHA512)
}

func fnNetworks(ce *commands.Event) {
	conn, ok := ce.Bridge.Network.(*IRCConnector)
	if !ok {
		return
	}
	var b strings.Builder
	b.WriteString("IRC networks on this bridge:\n\n")
	for _, id := range conn.Config.NetworkIDs() {
		n := conn.Config.Networks[id]
		tls := "TLS"
		if !n.UseTLS() {
			tls = "no TLS"
		}
		fmt.Fprintf(&b, "* `%s` - %s (%s, port %d, %s)", id, n.DisplayName(), n.Address, n.Port, tls)
		for _, ul := range ce.User.GetUserLogins() {
			if cl, ok := ul.Client.(*IRCClient); ok && cl.network.ID == id {
				state := "disconnected"
				if cl.ircConn.Connected() {
					state = "connected"
				}
				fmt.Fprintf(&b, " - you are logged in as %s, %s", cl.ircConn.Nick(), state)
			}
		}
		b.WriteString("\n")
	}
	for _, ul := range ce.User.GetUserLogins() {
		if cl, ok := ul.Client.(*IRCClient); ok && cl.network.UserAdded {
			fmt.Fprintf(&b, "* `%s` - a server of your choice (port %d) - you are logged in as %s, %s\n", cl.network.ID, cl.network.Port, cl.ircConn.Nick(), cl.state())
		}
	}
	b.WriteString(conn.userNetworksHelp())
	ce.Reply("%s", b.String())
}
