// Package benchcluster starts a skein cluster as separate processes for the
// benchmark programs under test/bench (`make bench-scale`, `make
// bench-reassign`): controllers 1..n and brokers 101.., each on its own
// loopback ports with its own data directory and log file. Unlike
// test/harness it needs no testing.TB, so a plain main program can use it.
package benchcluster

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Node is one skein controller or broker process. Its ports, data
// directory and command line stay the same across restarts.
type Node struct {
	Name     string
	Role     string // "controller" or "broker"
	ID       int32
	Addr     string // Kafka listener
	RaftAddr string // controllers only
	DataDir  string
	LogPath  string
	Args     []string
	// PprofAddr serves the node's pprof profiles (Layout.Pprof); empty:
	// off.
	PprofAddr string

	// cmd is the running process; nil before the first start. exited is
	// closed when it has been reaped.
	cmd    *exec.Cmd
	exited chan struct{}
}

// Layout describes a cluster to lay out.
type Layout struct {
	Bin         string // the skein binary
	Dir         string // data directories and logs go under it
	LogLevel    string
	Controllers int
	Brokers     int
	// ControllerArgs and BrokerArgs are appended to every controller's and
	// broker's command line.
	ControllerArgs []string
	BrokerArgs     []string
	// Pprof starts every node with --pprof on a port of its own.
	Pprof bool
}

// freeAddr returns a loopback host:port that was free a moment ago and
// that this run has not handed out before.
func freeAddr(used map[string]bool) (string, error) {
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", fmt.Errorf("allocate a loopback port: %w", err)
		}
		a := ln.Addr().String()
		_ = ln.Close()
		if !used[a] {
			used[a] = true
			return a, nil
		}
	}
	return "", errors.New("no fresh loopback port after 100 tries")
}

// New lays out controllers 1..l.Controllers and brokers 101.. under l.Dir
// (not started).
func New(l Layout) (ctrls, brokers []*Node, err error) {
	used := map[string]bool{}
	var voters, ctrlAddrs []string
	for i := range l.Controllers {
		n := &Node{Role: "controller", ID: int32(1 + i)}
		if n.Addr, err = freeAddr(used); err != nil {
			return nil, nil, err
		}
		if n.RaftAddr, err = freeAddr(used); err != nil {
			return nil, nil, err
		}
		voters = append(voters, fmt.Sprintf("%d@%s", n.ID, n.RaftAddr))
		ctrlAddrs = append(ctrlAddrs, n.Addr)
		ctrls = append(ctrls, n)
	}
	for _, n := range ctrls {
		n.Name = fmt.Sprintf("controller-%d", n.ID)
		n.DataDir = filepath.Join(l.Dir, n.Name)
		n.LogPath = filepath.Join(l.Dir, n.Name+".log")
		n.Args = append([]string{l.Bin, "controller", "--node-id", strconv.Itoa(int(n.ID)), "--data-dir", n.DataDir,
			"--listen", n.Addr, "--raft-listen", n.RaftAddr, "--initial-controllers", strings.Join(voters, ","),
			"--log-level", l.LogLevel}, l.ControllerArgs...)
	}
	for i := range l.Brokers {
		n := &Node{Role: "broker", ID: int32(101 + i)}
		if n.Addr, err = freeAddr(used); err != nil {
			return nil, nil, err
		}
		n.Name = fmt.Sprintf("broker-%d", n.ID)
		n.DataDir = filepath.Join(l.Dir, n.Name)
		n.LogPath = filepath.Join(l.Dir, n.Name+".log")
		n.Args = append([]string{l.Bin, "broker", "--node-id", strconv.Itoa(int(n.ID)), "--data-dir", n.DataDir,
			"--listen", n.Addr, "--controllers", strings.Join(ctrlAddrs, ","), "--log-level", l.LogLevel}, l.BrokerArgs...)
		brokers = append(brokers, n)
	}
	if l.Pprof {
		for _, n := range append(append([]*Node{}, ctrls...), brokers...) {
			if n.PprofAddr, err = freeAddr(used); err != nil {
				return nil, nil, err
			}
			n.Args = append(n.Args, "--pprof", n.PprofAddr)
		}
	}
	return ctrls, brokers, nil
}

// Start starts the process, appending its output to its log file.
func (n *Node) Start() error {
	logf, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s log: %w", n.Name, err)
	}
	cmd := exec.Command(n.Args[0], n.Args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("start %s: %w", n.Name, err)
	}
	n.cmd = cmd
	n.exited = make(chan struct{})
	go func(done chan struct{}) {
		_ = cmd.Wait()
		_ = logf.Close()
		close(done)
	}(n.exited)
	return nil
}

// Running reports whether the process was started and has not exited.
func (n *Node) Running() bool {
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// Pid is the process id of the last start.
func (n *Node) Pid() int { return n.cmd.Process.Pid }

// Kill sends SIGKILL and waits until the process is reaped.
func (n *Node) Kill() {
	if !n.Running() {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
}

// Stop sends SIGTERM and waits up to timeout, then SIGKILLs.
func (n *Node) Stop(timeout time.Duration) {
	if !n.Running() {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(timeout):
		n.Kill()
	}
}

// Dialable reports whether something accepts TCP connections on addr.
func Dialable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// Teardown stops the brokers, then the controllers (each given 15 s), and
// removes dir unless keep, saying where the data is when kept.
func Teardown(dir string, keep bool, ctrls, brokers []*Node) {
	for _, n := range brokers {
		n.Stop(15 * time.Second)
	}
	for _, n := range ctrls {
		n.Stop(15 * time.Second)
	}
	if keep {
		fmt.Fprintf(os.Stderr, "data and node logs kept under %s\n", dir)
	} else {
		_ = os.RemoveAll(dir)
	}
}
