//go:build !invariants

package storage

// invariants turns on the checks of invariants.go (off: build with -tags
// invariants to check them).
const invariants = false
