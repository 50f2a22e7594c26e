package irc

import "errors"

var (
	// ErrUnsafeParam is returned by the Send functions when a command, a
	// parameter or a tag could not be sent safely (CR, LF or NUL, an empty or
	// space-containing non-final parameter, a non-final parameter starting
	// with ':', an invalid command or tag name). Nothing is sent.
	ErrUnsafeParam = errors.New("irc: unsafe command, parameter or tag")
	// ErrLineTooLong is returned when the line without tags would exceed 512
	// bytes including CRLF, or the tag section would exceed its limit.
	ErrLineTooLong = errors.New("irc: line too long")
	// ErrNotConnected is returned when sending while not registered.
	ErrNotConnected = errors.New("irc: not connected")
	// ErrQueueFull is returned when the send queue is full.
	ErrQueueFull = errors.New("irc: send queue full")
	// ErrAlreadyConnected is returned by Connect when a connection is
	// already up or being set up.
	ErrAlreadyConnected = errors.New("irc: already connected")
	// ErrClosed is returned by Connect after Close.
	ErrClosed = errors.New("irc: client closed")

	// ErrSASLFailed means SASL authentication failed (904/905/906/902) or
	// was unavailable although credentials were configured. Fatal.
	ErrSASLFailed = errors.New("irc: SASL authentication failed")
	// ErrNickServFailed means NickServ refused IDENTIFY (wrong password, nick
	// not registered). Fatal.
	ErrNickServFailed = errors.New("irc: NickServ refused the password")
	// ErrNickInUse means the nick (and any fallbacks) was in use.
	ErrNickInUse = errors.New("irc: nickname in use")
	// ErrErroneousNick means the server rejected the nick as invalid (432).
	// Fatal.
	ErrErroneousNick = errors.New("irc: erroneous nickname")
	// ErrBadPassword means the server password was wrong (464). Fatal.
	ErrBadPassword = errors.New("irc: bad server password")
	// ErrBanned means we are banned from the server (465, or an ERROR
	// mentioning a K-line, G-line or ban before registration). Fatal.
	ErrBanned = errors.New("irc: banned from server")
	// ErrTimeout means the connection or registration did not complete in
	// time.
	ErrTimeout = errors.New("irc: connection timed out")
	// ErrPingTimeout means the server stopped answering.
	ErrPingTimeout = errors.New("irc: ping timeout")
	// ErrServerError means the server sent ERROR and closed the link.
	ErrServerError = errors.New("irc: server closed the link")
)

// IsFatal reports whether err means that reconnecting with the same
// configuration cannot succeed (bad credentials, bans, invalid nick).
func IsFatal(err error) bool {
	return errors.Is(err, ErrSASLFailed) || errors.Is(err, ErrNickServFailed) || errors.Is(err, ErrBadPassword) ||
		errors.Is(err, ErrBanned) || errors.Is(err, ErrErroneousNick)
}
