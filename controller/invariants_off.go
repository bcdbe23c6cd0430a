//go:build !invariants

package controller

import "github.com/skein-io/skein/controller/image"

// checkApplied is a no-op without the invariants build tag; see
// invariants_on.go.
func checkApplied(before, after *image.Image) {}
