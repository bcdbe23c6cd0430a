//go:build invariants

package partition

// invariantsEnabled: built with the invariants tag (make test), the checks
// in invariants.go run and a violation panics.
const invariantsEnabled = true

// assertInvariant panics when err (a broken invariant) is not nil.
func assertInvariant(err error) {
	if err != nil {
		panic(err)
	}
}
