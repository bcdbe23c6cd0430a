//go:build invariants

package partition

import (
	"errors"
	"testing"
)

// TestInvariantsPanicOnTheRealPath: under the invariants tag, applying an
// image whose leader is not in the ISR panics, as does an image that moves
// the leader epoch back.
func TestInvariantsPanicOnTheRealPath(t *testing.T) {
	m, _ := newTestManager(t)
	m.ApplyImage(testImage(1, testTopic("t", 1, 1, testNode, 3, []int32{1, 2}, nil)))
	mustPanic := func(what string, f func()) {
		t.Helper()
		defer func() {
			r := recover()
			err, _ := r.(error)
			if !errors.Is(err, errInvariant) {
				t.Fatalf("%s: recovered %v, want an invariant violation", what, r)
			}
		}()
		f()
	}
	bad := testTopic("t", 1, 1, testNode, 4, []int32{2}, nil) // leader 1 not in ISR {2}
	mustPanic("leader outside the ISR", func() { m.ApplyImage(testImage(2, bad)) })
	m2, _ := newTestManager(t)
	m2.ApplyImage(testImage(1, testTopic("t", 1, 1, 2, 3, []int32{1, 2}, nil)))
	mustPanic("leader epoch back", func() { m2.ApplyImage(testImage(2, testTopic("t", 1, 1, 2, 2, []int32{1, 2}, nil))) })
}
