// Package irc is sealbridge's IRC connection engine.
//
// A Client owns at most one connection to an IRC server at a time. Each
// connection runs at most two goroutines, modelled on the soju bouncer:
//
//   - the reader goroutine reads lines with ircreader, parses them with
//     ircmsg, drives the registration state machine (CAP LS 302, CAP REQ,
//     SASL PLAIN or EXTERNAL, NICK/USER, ISUPPORT), answers PING at once, tracks our own
//     nick and user@host, and then hands every line to Handler.OnMessage in
//     order;
//   - the writer goroutine, while lines wait, drains two queues: a priority queue (PONG, CAP,
//     AUTHENTICATE, registration and anything sent with SendPriority) that is
//     written immediately, and a normal queue paced by a token bucket
//     (FloodConfig, by default a burst of 5 then 1 line per second).
//
// Every outgoing line is built from a command and parameters and validated
// before it is queued: no CR, LF or NUL can reach the socket, and a line that
// would exceed 512 bytes (tags apart) is refused with ErrLineTooLong rather
// than truncated. The writer checks every line once more before writing it.
//
// Client.Connect makes one connection attempt; Client.Run keeps the
// connection up, reconnecting with exponential backoff and full jitter, and
// stops on fatal errors (bad SASL credentials, bad server password, bans).
// Client.Start is Run in the background. A connection holds one goroutine
// (its reader) while idle: the writer runs only while lines wait, and
// Start's loop runs only while connecting or waiting to reconnect.
package irc
