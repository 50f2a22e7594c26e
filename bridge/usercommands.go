package bridge

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
	"maunium.net/go/mautrix/bridgev2/commands"
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

// whoisNumerics are the replies a WHOIS gathers; 318 ends it.
var whoisNumerics = map[string]bool{
	"311": true, "312": true, "313": true, "317": true, "318": true, "319": true, "301": true,
	"330": true, "338": true, "671": true, "276": true, "320": true, "378": true, "379": true, "401": true,
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
		return true, m.Command == "318"
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
		case "401":
			return fmt.Sprintf("%s is not on IRC now.", nick)
		case "311": // me nick user host * :realname
			if len(p) >= 6 {
				fmt.Fprintf(&b, "**%s** is %s@%s (%s)\n", p[1], p[2], p[3], last(m))
			}
		case "319":
			fmt.Fprintf(&b, "* channels: %s\n", last(m))
		case "312": // me nick server :info
			if len(p) >= 3 {
				fmt.Fprintf(&b, "* server: %s (%s)\n", p[2], last(m))
			}
		case "330": // me nick account :is logged in as
			if len(p) >= 3 {
				fmt.Fprintf(&b, "* account: %s\n", p[2])
			}
		case "317": // me nick idle signon :...
			if len(p) >= 3 {
				if idle, err := strconv.Atoi(p[2]); err == nil {
					fmt.Fprintf(&b, "* idle: %s\n", time.Duration(idle)*time.Second)
				}
			}
		case "301":
			fmt.Fprintf(&b, "* away: %s\n", last(m))
		case "318":
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
		case "432", "433", "436", "437", "484", "447":
			return true, len(m.Params) < 2 || cl.fold(m.Params[1]) == folded || m.Command == "484" || m.Command == "447"
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
	case lines[0].Command == "433" || lines[0].Command == "436":
		ce.Reply("%s is in use on %s; you are still %s. If it is your registered nick, your services may let you take it back (e.g. `/msg NickServ REGAIN %s`).", nick, cl.network.DisplayName(), old, nick)
	default:
		ce.Reply("%s refused the nick %s: %s", cl.network.DisplayName(), nick, lines[0].Params[len(lines[0].Params)-1])
	}
}

func fnList(ce *commands.Event) {
	cl, args, err := loginForArgs(ce)
	if err != nil || len(args) > 1 {
		replyUsage(ce, err, "list [network] [pattern]")
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
		case "322":
			return true, false
		case "323", "416":
			return m.Command == "416", true
		}
		return false, false
	}, func() error { return cl.ircConn.Send("LIST", params...) })
	if err != nil {
		ce.Reply("%v", err)
		return
	}
	ce.Reply("%s", formatList(lines, more, complete))
}

// formatList shows the largest channels of a LIST answer, at most maxListShown.
func formatList(lines []*ircmsg.Message, more int, complete bool) string {
	type entry struct {
		name  string
		users int
		topic string
	}
	var entries []entry
	for _, m := range lines {
		if m.Command == "416" {
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
	if len(entries) > maxListShown {
		fmt.Fprintf(&b, ", the %d largest", maxListShown)
		entries = entries[:maxListShown]
	}
	b.WriteString(":\n")
	for _, e := range entries {
		topic := e.topic
		if len(topic) > 80 {
			topic = topic[:77] + "..."
		}
		fmt.Fprintf(&b, "\n* %s (%d) %s", e.name, e.users, topic)
	}
	if !complete {
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
	if err = cl.ircConn.Send("MODE", args...); err != nil {
		ce.Reply("Failed to send the mode change: %v", err)
		return
	}
	ce.Reply("Sent `MODE %s`; the server shows the change in the room, or tells you why not.", strings.Join(args, " "))
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
