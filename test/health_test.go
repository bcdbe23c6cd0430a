package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/skein-io/skein/test/harness"
)

// TestHealth checks `skein health` (the containers' health check): it
// exits 0 for a registered broker and for a controller whose quorum has a
// leader, and fails for a broker that is gone and for a controller left
// without a quorum.
func TestHealth(t *testing.T) {
	c := harness.StartCluster(t, harness.Options{Controllers: 3, Brokers: 1})
	health := func(addr string) harness.CLIResult {
		return harness.RunCommand(t, 20*time.Second, nil, harness.Binary(t), "health", "--bootstrap-server", addr, "--timeout", "2s")
	}
	b := c.Brokers[0]
	if r := health(b.Addr); r.Err != nil || !strings.Contains(r.Stdout, fmt.Sprintf("broker %d ready", b.ID)) {
		t.Fatalf("broker: %v\n%s%s", r.Err, r.Stdout, r.Stderr)
	}
	for _, n := range c.Controllers {
		// Right after start a follower may not know the leader yet.
		harness.WaitFor(t, 20*time.Second, func() (bool, string) {
			r := health(n.Addr)
			return r.Err == nil && strings.Contains(r.Stdout, "controller ready"), r.Stdout + r.Stderr
		})
	}

	b.MustKill()
	if r := health(b.Addr); r.Err == nil || !strings.Contains(r.Stderr, "not answering") {
		t.Fatalf("killed broker: %v\n%s%s", r.Err, r.Stdout, r.Stderr)
	}

	// Two of three controllers gone: the last one has no quorum.
	c.Controllers[0].MustKill()
	c.Controllers[1].MustKill()
	last := c.Controllers[2]
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		r := health(last.Addr)
		return r.Err != nil, "still healthy: " + r.Stdout
	})
}
