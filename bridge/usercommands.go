package bridge

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ergochat/irc-go/ircevent"
	"github.com/ergochat/irc-go/ircmsg"
	"maunium.net/go/mautrix/bridgev2/commands"

	"github.com/sealbridge/sealbridge/bridge/irc"
)

// The IRC commands a user reaches for, from the management room (or a portal room): whois, nick,
// list, topic, invite, mode, ignore/unignore, and raw for bridge admins. Each goes over the
// user's own connection, so the IRC server decides what is allowed; answers the server sends back
// are gathered by a collector (collect.go) and shown as one reply.

var (
	cmdWhois = &commands.FullHandler{Func: fnWhois, Name: "whois", RequiresLogin: true, Help: commands.HelpMeta{
		Section: commands.HelpSectionChats, Description: "Show who an IRC user is: user@host, real name, account, channels, server, idle time, away message.",
		Args: "[_network_] <_nick_>"}}
	cmdNick = &commands.FullHandler{Func: fnNick, Name: "nick", RequiresLogin: true, Help: commands.HelpMeta{
		Section: commands.HelpSectionAuth, Description: "Change your IRC nick on the live connection (kept for reconnects).",
		Args: "[_network_] <_new nick_>"}}
	cmdList = &commands.FullHandler{Func: fnList, Name: "list", RequiresLogin: true, Help: commands.HelpMeta{
		Section: commands.HelpSectionChats, Description: "List the network's public channels, largest first; a pattern (`*linux*`) narrows the list.",
		Args: "[_network_] [_pattern_]"}}
	cmdTopic = &commands.FullHandler{Func: fnTopic, Name: "topic", RequiresLogin: true, Help: commands.HelpMeta{
		Section: commands.HelpSectionChats, Description: "Show a channel's topic, or set it.",
		Args: "[_network_] <_#channel_> [_new topic_]"}}
	cmdInvite = &commands.FullHandler{Func: fnInvite, Name: "invite", RequiresLogin: true, Help: commands.HelpMeta{
		Section: commands.HelpSectionChats, Description: "Invite an IRC user to a channel (IRC INVITE).",
		Args: "[_network_] <_nick_> <_#channel_>"}}
	cmdMode = &commands.FullHandler{Func: fnMode, Name: "mode", RequiresLogin: true, Help: commands.HelpMeta{
		Section: commands.HelpSectionChats, Description: "Set or show channel or user modes (IRC MODE), e.g. `mode #chan +m`.",
		Args: "[_network_] <_target_> [_modes_] [_arguments_...]"}}
	cmdIgnore = &commands.FullHandler{Func: fnIgnore, Name: "ignore", RequiresLogin: true, Help: commands.HelpMeta{
		Section: commands.HelpSectionChats, Description: "Stop bridging an IRC nick's private messages and typing, and their channel lines where only you bridge the channel (until `unignore`); without a nick, list who is ignored. In a channel room others share, ignore their Matrix user in your client.",
		Args: "[_network_] [_nick_]"}}
	cmdUnignore = &commands.FullHandler{Func: fnUnignore, Name: "unignore", RequiresLogin: true, Help: commands.HelpMeta{
		Section: commands.HelpSectionChats, Description: "Bridge an ignored IRC nick again.",
		Args: "[_network_] <_nick_>"}}
	cmdAway = &commands.FullHandler{Func: fnAway, Name: "away", RequiresLogin: true, Help: commands.HelpMeta{
		Section: commands.HelpSectionChats, Description: "Mark yourself away on IRC with a message (others see it in WHOIS and when they message you); without a message, back again.",
		Args: "[_network_] [_message_]"}}
	cmdRaw = &commands.FullHandler{Func: fnRaw, Name: "raw", RequiresLogin: true, RequiresAdmin: true, Help: commands.HelpMeta{
		Section: commands.HelpSectionAdmin, Description: "Send one raw IRC line over your own connection (bridge admins only).",
		Args: "[_network_] <_IRC line_>"}}
)

// whoisNumerics are the replies a WHOIS gathers; RPL_ENDOFWHOIS ends it.
var whoisNumerics = map[string]bool{
	ircevent.RPL_WHOISUSER:     true,
	ircevent.RPL_WHOISSERVER:   true,
	ircevent.RPL_WHOISOPERATOR: true,
	ircevent.RPL_WHOISIDLE:     true,
	ircevent.RPL_ENDOFWHOIS:    true,
	ircevent.RPL_WHOISCHANNELS: true,
	ircevent.RPL_AWAY:          true,
	ircevent.RPL_WHOISACCOUNT:  true,
	ircevent.RPL_WHOISACTUALLY: true,
	ircevent.RPL_WHOISSECURE:   true,
	ircevent.RPL_WHOISCERTFP:   true,
	irc.RPL_WHOISSPECIAL:       true,
	irc.RPL_WHOISHOST:          true,
	ircevent.RPL_WHOISMODES:    true,
	ircevent.ERR_NOSUCHNICK:    true,
}

// maxListShown bounds the channels `list` shows.
const maxListShown = 50

// maxIgnored bounds a login's ignore list.
const maxIgnored = 100

func fnWhois(ce *commands.Event) {
	cl, args, err := loginForArgs(ce)
	if err != nil || len(args) != 1 {
		replyUsage(ce, err, "whois [network] <nick>")
		return
	}
	nick, err := validateNick(args[0])
	if err != nil {
		ce.Reply("%v", err)
		return
	}
	folded := cl.fold(nick)
	lines, _, complete, err := cl.collect(ce.Ctx, func(m *ircmsg.Message) (bool, bool) {
		if !whoisNumerics[m.Command] || len(m.Params) < 2 || cl.fold(m.Params[1]) != folded {
			return false, false
		}
		return true, m.Command == ircevent.RPL_ENDOFWHOIS
	}, func() error { return cl.ircConn.Send("WHOIS", nick) })
	if err != nil {
		ce.Reply("%v", err)
		return
	}
	ce.Reply("%s", formatWhois(nick, lines, complete))
}

// formatWhois turns WHOIS replies into a few lines for the user.
func formatWhois(nick string, lines []*ircmsg.Message, complete bool) string {
	var b strings.Builder
	last := func(m *ircmsg.Message) string { return m.Params[len(m.Params)-1] }
	for _, m := range lines {
		p := m.Params
		switch m.Command {
		case ircevent.ERR_NOSUCHNICK:
			return fmt.Sprintf("%s is not on IRC now.", nick)
		case ircevent.RPL_WHOISUSER: // me nick user host * :realname
			if len(p) >= 6 {
				fmt.Fprintf(&b, "**%s** is %s@%s (%s)\n", p[1], p[2], p[3], last(m))
			}
		case ircevent.RPL_WHOISCHANNELS:
			fmt.Fprintf(&b, "* channels: %s\n", last(m))
		case ircevent.RPL_WHOISSERVER: // me nick server :info
			if len(p) >= 3 {
				fmt.Fprintf(&b, "* server: %s (%s)\n", p[2], last(m))
			}
		case ircevent.RPL_WHOISACCOUNT: // me nick account :is logged in as
			if len(p) >= 3 {
				fmt.Fprintf(&b, "* account: %s\n", p[2])
			}
		case ircevent.RPL_WHOISIDLE: // me nick idle signon :...
			if len(p) >= 3 {
				if idle, err := strconv.Atoi(p[2]); err == nil {
					fmt.Fprintf(&b, "* idle: %s\n", time.Duration(idle)*time.Second)
				}
			}
		case ircevent.RPL_AWAY:
			fmt.Fprintf(&b, "* away: %s\n", last(m))
		case ircevent.RPL_ENDOFWHOIS:
		default:
			fmt.Fprintf(&b, "* %s\n", last(m))
		}
	}
	if b.Len() == 0 {
		return fmt.Sprintf("The IRC server said nothing about %s.", nick)
	}
	if !complete {
		b.WriteString("(the server's answer was cut short)\n")
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func fnNick(ce *commands.Event) {
	cl, args, err := loginForArgs(ce)
	if err != nil || len(args) != 1 {
		replyUsage(ce, err, "nick [network] <new nick>")
		return
	}
	nick, err := validateNick(args[0])
	if err != nil {
		ce.Reply("%v", err)
		return
	}
	old := cl.ircConn.Nick()
	if nick == old {
		ce.Reply("You are %s already.", nick)
		return
	}
	folded, oldFolded := cl.fold(nick), cl.fold(old)
	lines, _, complete, err := cl.collect(ce.Ctx, func(m *ircmsg.Message) (bool, bool) {
		switch m.Command {
		case "NICK":
			return cl.fold(m.Nick()) == oldFolded, cl.fold(m.Nick()) == oldFolded
		case ircevent.ERR_ERRONEUSNICKNAME, ircevent.ERR_NICKNAMEINUSE, ircevent.ERR_NICKCOLLISION, ircevent.ERR_UNAVAILRESOURCE, ircevent.ERR_RESTRICTED, irc.ERR_NONICKCHANGE:
			return true, len(m.Params) < 2 || cl.fold(m.Params[1]) == folded || m.Command == ircevent.ERR_RESTRICTED || m.Command == irc.ERR_NONICKCHANGE
		}
		return false, false
	}, func() error { return cl.ircConn.Send("NICK", nick) })
	switch {
	case err != nil:
		ce.Reply("%v", err)
	case !complete || len(lines) == 0:
		ce.Reply("The IRC server did not answer the nick change; your nick is %s.", cl.ircConn.Nick())
	case lines[0].Command == "NICK":
		ce.Reply("You are now %s on %s.", cl.ircConn.Nick(), cl.network.DisplayName())
	case (lines[0].Command == ircevent.ERR_NICKNAMEINUSE || lines[0].Command == ircevent.ERR_NICKCOLLISION) && cl.ownsNick(nick):
		if ok, said := cl.regainNick(ce.Ctx, nick); ok {
			ce.Reply("%s was in use; the network's services gave it back: you are now %s on %s.", nick, cl.ircConn.Nick(), cl.network.DisplayName())
		} else {
			ce.Reply("%s is in use on %s and the network's services did not give it back (%s); you are still %s.", nick, cl.network.DisplayName(), said, cl.ircConn.Nick())
		}
	case lines[0].Command == ircevent.ERR_NICKNAMEINUSE || lines[0].Command == ircevent.ERR_NICKCOLLISION:
		ce.Reply("%s is in use on %s; you are still %s. If it is your registered nick, your services may let you take it back (e.g. `/msg NickServ REGAIN %s`).", nick, cl.network.DisplayName(), old, nick)
	default:
		ce.Reply("%s refused the nick %s: %s", cl.network.DisplayName(), nick, lines[0].Params[len(lines[0].Params)-1])
	}
}

func fnList(ce *commands.Event) {
	cl, args, err := loginForArgs(ce)
	page, asked := 1, ce.Args // asked: the command's arguments but the page, for the next page's hint
	if err == nil && len(args) > 0 {
		if n, nerr := strconv.Atoi(args[len(args)-1]); nerr == nil {
			page, args, asked = n, args[:len(args)-1], asked[:len(asked)-1]
		}
	}
	if err != nil || len(args) > 1 || page < 1 {
		replyUsage(ce, err, "list [network] [pattern] [page]")
		return
	}
	params := []string{}
	if len(args) == 1 {
		if err = safeArg(args[0]); err != nil {
			ce.Reply("%v", err)
			return
		}
		params = append(params, args[0])
	}
	lines, more, complete, err := cl.collect(ce.Ctx, func(m *ircmsg.Message) (bool, bool) {
		switch m.Command {
		case ircevent.RPL_LIST:
			return true, false
		case ircevent.RPL_LISTEND, irc.ERR_TOOMANYMATCHES:
			return m.Command == irc.ERR_TOOMANYMATCHES, true
		}
		return false, false
	}, func() error { return cl.ircConn.Send("LIST", params...) })
	if err != nil {
		ce.Reply("%v", err)
		return
	}
	ce.Reply("%s", formatList(lines, more, complete, page, strings.Join(asked, " ")))
}

// formatList shows one page (maxListShown channels) of a LIST answer, largest channels first;
// asked is what the user gave the command but the page, for the hint to the next page.
func formatList(lines []*ircmsg.Message, more int, complete bool, page int, asked string) string {
	type entry struct {
		name  string
		users int
		topic string
	}
	var entries []entry
	for _, m := range lines {
		if m.Command == irc.ERR_TOOMANYMATCHES {
			return "The IRC server refused the list: " + m.Params[len(m.Params)-1]
		}
		if len(m.Params) >= 4 { // me channel users :topic
			n, _ := strconv.Atoi(m.Params[2])
			entries = append(entries, entry{m.Params[1], n, m.Params[3]})
		}
	}
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].users != entries[j].users {
			return entries[i].users > entries[j].users
		}
		return entries[i].name < entries[j].name
	})
	var b strings.Builder
	fmt.Fprintf(&b, "%d channel(s)", len(entries)+more)
	pages := (len(entries) + maxListShown - 1) / maxListShown
	if pages > 1 || page > 1 {
		if page > pages {
			fmt.Fprintf(&b, "; there is no page %d, the last is %d", page, pages)
			return b.String()
		}
		fmt.Fprintf(&b, ", largest first, page %d of %d", page, pages)
		end := min(page*maxListShown, len(entries))
		entries = entries[(page-1)*maxListShown : end]
	}
	b.WriteString(":\n")
	for _, e := range entries {
		topic := e.topic
		if len(topic) > 80 {
			topic = topic[:77] + "..."
		}
		fmt.Fprintf(&b, "\n* %s (%d) %s", e.name, e.users, topic)
	}
	if page < pages {
		next := strings.TrimSpace(asked + " " + strconv.Itoa(page+1))
		fmt.Fprintf(&b, "\n\nThe next page: `list %s`", next)
	}
	if !complete || more > 0 {
		b.WriteString("\n\n(the server's answer was cut short; a pattern such as `*linux*` narrows it)")
	}
	return b.String()
}

func fnTopic(ce *commands.Event) {
	cl, args, err := loginForArgs(ce)
	if err != nil || len(args) < 1 {
		replyUsage(ce, err, "topic [network] <#channel> [new topic]")
		return
	}
	channel := args[0]
	if safeArg(channel) != nil || !cl.ircConn.IsChannel(channel) {
		ce.Reply("%q is not a channel name", channel)
		return
	}
	if len(args) == 1 {
		var topic string
		if !cl.withChannel(channel, func(ch *channelState) { topic = ch.Topic }) {
			ce.Reply("You are not in %s on %s.", channel, cl.network.DisplayName())
		} else if topic == "" {
			ce.Reply("%s has no topic.", channel)
		} else {
			ce.Reply("The topic of %s: %s", channel, topic)
		}
		return
	}
	topic := strings.Join(args[1:], " ")
	if strings.ContainsAny(topic, "\r\n\x00") {
		ce.Reply("The topic must be one line")
		return
	}
	if err = cl.ircConn.Send("TOPIC", channel, topic); err != nil {
		ce.Reply("Failed to set the topic: %v", err)
		return
	}
	ce.Reply("Setting the topic of %s.", channel)
}

func fnInvite(ce *commands.Event) {
	cl, args, err := loginForArgs(ce)
	if err != nil || len(args) != 2 {
		replyUsage(ce, err, "invite [network] <nick> <#channel>")
		return
	}
	nick, err := validateNick(args[0])
	if err != nil {
		ce.Reply("%v", err)
		return
	}
	if safeArg(args[1]) != nil || !cl.ircConn.IsChannel(args[1]) {
		ce.Reply("%q is not a channel name", args[1])
		return
	}
	if err = cl.ircConn.Send("INVITE", nick, args[1]); err != nil {
		ce.Reply("Failed to invite: %v", err)
		return
	}
	ce.Reply("Inviting %s to %s.", nick, args[1])
}

func fnMode(ce *commands.Event) {
	cl, args, err := loginForArgs(ce)
	if err != nil || len(args) < 1 {
		replyUsage(ce, err, "mode [network] <target> [modes] [arguments...]")
		return
	}
	for _, a := range args {
		if safeArg(a) != nil {
			ce.Reply("%q cannot be sent to IRC", a)
			return
		}
	}
	if len(args) == 1 {
		showModes(ce, cl, args[0])
		return
	}
	if err = cl.ircConn.Send("MODE", args...); err != nil {
		ce.Reply("Failed to send the mode change: %v", err)
		return
	}
	ce.Reply("Sent `MODE %s`; the server shows the change in the room, or tells you why not.", strings.Join(args, " "))
}

// showModes asks the server for a channel's or the user's own modes and shows its answer.
func showModes(ce *commands.Event, cl *IRCClient, target string) {
	lines, _, complete, err := cl.collect(ce.Ctx, func(m *ircmsg.Message) (bool, bool) {
		if len(m.Params) < 2 {
			return false, false
		}
		switch m.Command {
		case ircevent.RPL_CHANNELMODEIS, ircevent.RPL_UMODEIS:
			return m.Command == ircevent.RPL_UMODEIS || cl.fold(m.Params[1]) == cl.fold(target), true
		case ircevent.ERR_NOSUCHNICK, ircevent.ERR_NOSUCHCHANNEL, ircevent.ERR_NOTONCHANNEL, ircevent.ERR_NOPRIVILEGES, ircevent.ERR_CHANOPRIVSNEEDED: // no such nick/channel, not on it, not allowed
			return cl.fold(m.Params[1]) == cl.fold(target), cl.fold(m.Params[1]) == cl.fold(target)
		case ircevent.ERR_USERSDONTMATCH: // another user's modes
			return true, true
		}
		return false, false
	}, func() error { return cl.ircConn.Send("MODE", target) })
	switch {
	case err != nil:
		ce.Reply("%v", err)
	case !complete || len(lines) == 0:
		ce.Reply("%s did not answer.", cl.network.DisplayName())
	case lines[0].Command == ircevent.RPL_CHANNELMODEIS && len(lines[0].Params) >= 3:
		ce.Reply("Modes of %s: %s", lines[0].Params[1], strings.Join(lines[0].Params[2:], " "))
	case lines[0].Command == ircevent.RPL_UMODEIS:
		ce.Reply("Your modes: %s", strings.Join(lines[0].Params[1:], " "))
	default:
		ce.Reply("%s refused: %s", cl.network.DisplayName(), lines[0].Params[len(lines[0].Params)-1])
	}
}

func fnAway(ce *commands.Event) {
	cl, args, err := loginForArgs(ce)
	if err != nil {
		ce.Reply("%v", err)
		return
	}
	message := strings.Join(args, " ")
	if strings.ContainsAny(message, "\r\n\x00") {
		ce.Reply("The away message must be one line")
		return
	}
	if message == "" {
		err = cl.ircConn.Send("AWAY")
	} else {
		err = cl.ircConn.Send("AWAY", message)
	}
	if err == nil {
		// Kept, so that a reconnect (or a restart of the bridge) keeps the user away.
		cl.mu.Lock()
		cl.meta.Away = message
		cl.mu.Unlock()
		cl.saveLogin()
	}
	switch {
	case err != nil:
		ce.Reply("Failed to send: %v", err)
	case message == "":
		ce.Reply("You are back on %s.", cl.network.DisplayName())
	default:
		ce.Reply("You are away on %s: %s", cl.network.DisplayName(), message)
	}
}

func fnRaw(ce *commands.Event) {
	cl, args, err := loginForArgs(ce)
	if err != nil || len(args) < 1 {
		replyUsage(ce, err, "raw [network] <IRC line>")
		return
	}
	line := strings.Join(args, " ")
	msg, err := ircmsg.ParseLineStrict(line, false, 512)
	if err != nil || msg.Command == "" {
		ce.Reply("That is not an IRC line: %v", err)
		return
	}
	// The engine refuses CR, LF and NUL in any parameter, as for every other line.
	if err = cl.ircConn.Send(msg.Command, msg.Params...); err != nil {
		ce.Reply("Failed to send: %v", err)
		return
	}
	ce.Reply("Sent.")
}

func fnIgnore(ce *commands.Event) {
	cl, args, err := loginForArgs(ce)
	if err != nil || len(args) > 1 {
		replyUsage(ce, err, "ignore [network] [nick]")
		return
	}
	if len(args) == 0 {
		cl.mu.Lock()
		var nicks []string
		for _, n := range cl.meta.Ignored {
			nicks = append(nicks, n)
		}
		cl.mu.Unlock()
		sort.Strings(nicks)
		if len(nicks) == 0 {
			ce.Reply("You ignore nobody on %s.", cl.network.DisplayName())
		} else {
			ce.Reply("You ignore on %s: %s", cl.network.DisplayName(), strings.Join(nicks, ", "))
		}
		return
	}
	nick, err := validateNick(args[0])
	if err != nil {
		ce.Reply("%v", err)
		return
	}
	cl.mu.Lock()
	full := len(cl.meta.Ignored) >= maxIgnored
	if !full {
		if cl.meta.Ignored == nil {
			cl.meta.Ignored = map[string]string{}
		}
		cl.meta.Ignored[cl.fold(nick)] = nick
	}
	cl.mu.Unlock()
	if full {
		ce.Reply("You ignore %d nicks already, the most there may be; `unignore` one first.", maxIgnored)
		return
	}
	cl.saveLoginNow()
	ce.Reply("Ignoring %s on %s: their private messages are not bridged, nor their channel lines where only you bridge the channel (in rooms others share, ignore their Matrix user in your client).", nick, cl.network.DisplayName())
}

func fnUnignore(ce *commands.Event) {
	cl, args, err := loginForArgs(ce)
	if err != nil || len(args) != 1 {
		replyUsage(ce, err, "unignore [network] <nick>")
		return
	}
	folded := cl.fold(args[0])
	cl.mu.Lock()
	_, was := cl.meta.Ignored[folded]
	delete(cl.meta.Ignored, folded)
	cl.mu.Unlock()
	if !was {
		ce.Reply("You do not ignore %s.", args[0])
		return
	}
	cl.saveLoginNow()
	ce.Reply("No longer ignoring %s.", args[0])
}

// ignores tells whether the login ignores nick (`ignore`).
func (cl *IRCClient) ignores(nick string) bool {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if len(cl.meta.Ignored) == 0 {
		return false
	}
	_, ok := cl.meta.Ignored[cl.fold(nick)]
	return ok
}

// replyUsage answers a command that could not pick a login, or was given the wrong arguments.
func replyUsage(ce *commands.Event, err error, usage string) {
	if err != nil {
		ce.Reply("%v", err)
		return
	}
	ce.Reply("Usage: `$cmdprefix %s`", usage)
}
