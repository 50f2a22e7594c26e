package stack

import (
	"fmt"
	"net"
	"testing"
)

// Ports for the servers of a test are distinct, free, and outside the kernel's ephemeral range
// (where one may be handed to another test's listener or connection before its server binds it).
func TestFreePortsAvoidEphemeralRange(t *testing.T) {
	lo, hi := portsOutsideEphemeral()
	ports, err := freePorts(50)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, port := range ports {
		if seen[port] {
			t.Errorf("port %d given twice", port)
		}
		seen[port] = true
		if hi > lo && (port < lo || port >= hi) {
			t.Errorf("port %d is outside [%d, %d)", port, lo, hi)
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Errorf("port %d is not free: %v", port, err)
			continue
		}
		l.Close()
	}
	if hi-lo < 4096 && hi != lo {
		t.Errorf("range [%d, %d) is narrower than 4,096 ports", lo, hi)
	}
}
