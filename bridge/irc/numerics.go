package irc

// Numerics the engine and the bridge handle that irc-go's ircevent does not name (it names the
// rest; see ircevent/numerics.go).
const (
	RPL_WHOISSPECIAL   = "320" // a network's own line in WHOIS
	RPL_WHOISHOST      = "378" // the real host in WHOIS
	RPL_HOSTHIDDEN     = "396" // our displayed host changed (a cloak)
	ERR_INVALIDCAPCMD  = "410"
	ERR_TOOMANYMATCHES = "416" // LIST: too many results
	ERR_NONICKCHANGE   = "447" // nick changes are not allowed here now
)
