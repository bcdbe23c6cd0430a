// Package e2e holds Skein's end-to-end tests: real `skein controller` and
// `skein broker` processes on loopback ports (started by test/harness),
// driven by real clients: franz-go, kcat, and the skein CLI itself.
//
// Every test starts its own cluster, bounds every wait, and on failure
// prints the tail of each node's log. Run with `go test ./test/` (set
// $SKEIN_BIN to test a prebuilt binary). kcat tests skip when kcat is not
// installed, except under CI=true where they fail.
package e2e
