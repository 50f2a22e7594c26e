//go:build !linux

package bridge

import "syscall"

// freeBind is Linux's; elsewhere the bind address must be on an interface.
func freeBind(syscall.RawConn) error { return nil }
