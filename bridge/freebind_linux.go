package bridge

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// freeBind lets a socket bind an address no interface has (IP_FREEBIND, IPV6_FREEBIND): a login's
// own address out of a prefix routed to the host.
func freeBind(rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		if serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1); serr == nil {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_FREEBIND, 1) // IPv6 sockets only
		}
	})
	if err != nil {
		return err
	}
	return serr
}
