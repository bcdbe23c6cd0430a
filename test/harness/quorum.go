package harness

import (
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// AddController starts one more controller with its own ports and empty
// data directory and WITHOUT --initial-controllers, so it waits to be added
// to the quorum (`skein controller add-voter`). Its node id is the next
// after the existing controllers'. It is appended to c.Controllers (stopped
// at cleanup like the others) but not given to already running brokers.
func (c *Cluster) AddController() *Node {
	c.t.Helper()
	id := FirstControllerID
	for _, n := range c.Controllers {
		id = max(id, n.ID+1)
	}
	n := &Node{Role: RoleController, ID: id, Addr: FreeAddr(c.t), RaftAddr: FreeAddr(c.t), cluster: c}
	n.DataDir = filepath.Join(c.dir, n.name())
	args := []string{"controller",
		"--node-id", strconv.Itoa(int(n.ID)),
		"--data-dir", n.DataDir,
		"--listen", n.Addr,
		"--raft-listen", n.RaftAddr,
		"--log-level", logLevel(),
	}
	n.Process = newProcess(n.name(), filepath.Join(c.dir, n.name()+".log"), c.bin, append(args, c.opts.ControllerArgs...))
	c.Controllers = append(c.Controllers, n)
	if err := n.Start(); err != nil {
		c.t.Fatalf("start %s: %v", n.Name, err)
	}
	c.waitReady(n)
	return n
}

// RunControllerCLI runs `skein args...` with --bootstrap-controller set to
// the Kafka listeners of the running controllers, bounded by timeout.
func (c *Cluster) RunControllerCLI(t testing.TB, timeout time.Duration, stdin io.Reader, args ...string) CLIResult {
	t.Helper()
	var addrs []string
	for _, n := range c.Controllers {
		if n.Running() {
			addrs = append(addrs, n.Addr)
		}
	}
	return RunCommand(t, timeout, stdin, c.bin, append(args, "--bootstrap-controller", strings.Join(addrs, ","))...)
}
