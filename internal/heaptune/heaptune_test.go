package heaptune

import "testing"

func TestPercent(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		live, headroom uint64
		want           int
	}{
		{5 * mb, 64 * mb, 1280},  // small heap: goal live + 64 MB
		{64 * mb, 64 * mb, 100},  // default already gives the headroom
		{512 * mb, 64 * mb, 100}, // never below the default
		{0, 64 * mb, 1600},       // no live heap yet: counts as Go's 4 MB minimum
		{1 * mb, 64 * mb, 1600},
	} {
		if got := Percent(c.live, c.headroom); got != c.want {
			t.Errorf("Percent(%d, %d) = %d, want %d", c.live, c.headroom, got, c.want)
		}
	}
}
