//go:build invariants

package storage

// invariants turns on the checks of invariants.go; `make test` builds with
// -tags invariants.
const invariants = true
