// Package bridge is sealbridge's bridgev2 network connector: the connector itself, the login flows,
// the per-login IRC client, the IRC->Matrix and Matrix->IRC handlers, chat and user info, the ID scheme
// and the bot commands. The IRC protocol itself lives in bridge/irc, formatting in bridge/format.
package bridge
