package stack

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	ports, err := freePorts(1)
	if err != nil {
		return 0, err
	}
	return ports[0], nil
}

// freePorts returns n distinct ports on 127.0.0.1 that were free a moment ago. They are drawn at
// random below the kernel's range of ephemeral ports: a port from that range, once closed here,
// may be handed to a listener on port 0 or to an outgoing connection of another test running
// alongside (the suites of two packages run at once) before the server it was meant for binds
// it. That once gave the bridge's appservice port to a hostile IRC server's listener.
func freePorts(n int) ([]int, error) {
	lo, hi := portsOutsideEphemeral()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries == 1000 {
			return nil, errors.New("stack: no free port found")
		}
		port := 0 // no room outside the ephemeral range: the kernel chooses
		if hi > lo {
			port = lo + rand.IntN(hi-lo)
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue // taken
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// portsOutsideEphemeral is a range [lo, hi) of at least 4,096 ports the kernel does not hand out
// as ephemeral ports (/proc/sys/net/ipv4/ip_local_port_range, 32768-60999 by default): below the
// range, else above it; lo == hi if neither has room.
func portsOutsideEphemeral() (lo, hi int) {
	ephLo, ephHi := 32768, 60999
	if data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var l, h int
		if _, err := fmt.Sscan(string(data), &l, &h); err == nil && l > 0 && h >= l {
			ephLo, ephHi = l, h
		}
	}
	const room = 4096
	switch {
	case ephLo-10000 >= room:
		return 10000, ephLo
	case ephLo-1024 >= room:
		return 1024, ephLo
	case 65536-(ephHi+1) >= room:
		return ephHi + 1, 65536
	}
	return 0, 0
}
