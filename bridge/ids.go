package bridge

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"time"

	"maunium.net/go/mautrix/bridgev2/networkid"
	"maunium.net/go/mautrix/id"
)

// The ID scheme (design rule: IDs are casemapped so that #Foo and #foo are one portal):
//   login  = network + ":" + Matrix user ID (one login per Matrix user and network)
//   portal = network + "/" + casefolded channel, shared by every login (no receiver)
//   DM     = network + "/" + casefolded nick, with the login as receiver
//   ghost  = network + "/" + casefolded nick
//   message = the server's msgid tag, else a hash of what identifies the line
// Network IDs (configured keys, or a user network's host) contain no "/" or ":" (config validation,
// config.ParseUserServer), so the first separator splits them.

// MakeUserLoginID is the ID of userID's login on network.
func MakeUserLoginID(network string, userID id.UserID) networkid.UserLoginID {
	return networkid.UserLoginID(network + ":" + string(userID))
}

// MakeUserID is the ghost ID of a casefolded nick.
func MakeUserID(network, foldedNick string) networkid.UserID {
	return networkid.UserID(network + "/" + foldedNick)
}

// ParseUserID splits a ghost ID into network and casefolded nick.
func ParseUserID(userID networkid.UserID) (network, foldedNick string, ok bool) {
	return splitID(string(userID))
}

// MakeChannelPortalKey is the shared portal of a casefolded channel.
func MakeChannelPortalKey(network, foldedChannel string) networkid.PortalKey {
	return networkid.PortalKey{ID: networkid.PortalID(network + "/" + foldedChannel)}
}

// MakeDMPortalKey is login's private chat with a casefolded nick.
func MakeDMPortalKey(network, foldedNick string, login networkid.UserLoginID) networkid.PortalKey {
	return networkid.PortalKey{ID: networkid.PortalID(network + "/" + foldedNick), Receiver: login}
}

// ParsePortalID splits a portal ID into network and casefolded channel or nick.
func ParsePortalID(portalID networkid.PortalID) (network, target string, ok bool) {
	return splitID(string(portalID))
}

func splitID(s string) (string, string, bool) {
	network, rest, ok := strings.Cut(s, "/")
	return network, rest, ok && network != "" && rest != ""
}

// MakeMessageID is the server's msgid when it sent one. Otherwise it is a deterministic keyed hash
// (HMAC-SHA256 under key, which the bridge derives from its credentials key) of the network,
// target, sender, time and text, so that the same line seen twice maps to the same ID, while the
// ID, which the homeserver and its database see in the clear, does not let anyone check a guess
// of the text.
func MakeMessageID(key []byte, network, foldedTarget, foldedSender, msgid string, at time.Time, text string) networkid.MessageID {
	if msgid != "" {
		return networkid.MessageID(network + "/" + msgid)
	}
	h := hmac.New(sha256.New, key)
	for _, part := range []string{network, foldedTarget, foldedSender, at.UTC().Format(time.RFC3339Nano), text} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return networkid.MessageID(network + "/h:" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:18]))
}

// MakeMatrixMessageID is the ID of a message sent from Matrix, before any echo names it.
func MakeMatrixMessageID(network string, eventID id.EventID) networkid.MessageID {
	return networkid.MessageID(network + "/mx:" + string(eventID))
}
