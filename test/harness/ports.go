package harness

import (
	"net"
	"strconv"
	"sync"
	"testing"
)

// handedOut holds every port this test binary has allocated, so two nodes
// of one run never get the same port even after the first one's listener
// is closed.
var handedOut struct {
	sync.Mutex
	ports map[int]bool
}

// FreeAddr returns "127.0.0.1:PORT" for a loopback port that was free a
// moment ago and that this test binary has not handed out before. Another
// process may still take it before the node binds it; the node then fails
// to start and the test says so.
func FreeAddr(t testing.TB) string {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	if handedOut.ports == nil {
		handedOut.ports = make(map[int]bool)
	}
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("allocate a loopback port: %v", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
		if !handedOut.ports[port] {
			handedOut.ports[port] = true
			return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		}
	}
	t.Fatalf("no fresh loopback port after 100 tries")
	return ""
}
