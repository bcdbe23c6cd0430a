package main

import (
	"context"
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

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// node is one skein controller or broker process. Its ports, data
// directory and command line stay the same across restarts.
type node struct {
	name     string
	role     string // "controller" or "broker"
	id       int32
	addr     string // Kafka listener
	raftAddr string // controllers only
	dataDir  string
	logPath  string
	args     []string
	// pprofAddr serves the node's pprof profiles (BENCH_PROFILE); empty:
	// off.
	pprofAddr string

	// cmd is the running process; nil before the first start. exited is
	// closed when it has been reaped.
	cmd    *exec.Cmd
	exited chan struct{}
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

// newCluster lays out controllers 1..nc and brokers 101..101+nb-1 under dir
// (not started).
func newCluster(bin, dir, logLevel string, nc, nb int, pprof bool) ([]*node, []*node, error) {
	used := map[string]bool{}
	var ctrls, brokers []*node
	var voters, ctrlAddrs []string
	for i := range nc {
		n := &node{role: "controller", id: int32(1 + i)}
		var err error
		if n.addr, err = freeAddr(used); err != nil {
			return nil, nil, err
		}
		if n.raftAddr, err = freeAddr(used); err != nil {
			return nil, nil, err
		}
		voters = append(voters, fmt.Sprintf("%d@%s", n.id, n.raftAddr))
		ctrlAddrs = append(ctrlAddrs, n.addr)
		ctrls = append(ctrls, n)
	}
	for _, n := range ctrls {
		n.name = fmt.Sprintf("controller-%d", n.id)
		n.dataDir = filepath.Join(dir, n.name)
		n.logPath = filepath.Join(dir, n.name+".log")
		n.args = []string{bin, "controller", "--node-id", strconv.Itoa(int(n.id)), "--data-dir", n.dataDir,
			"--listen", n.addr, "--raft-listen", n.raftAddr, "--initial-controllers", strings.Join(voters, ","),
			"--log-level", logLevel,
			// Snapshot within the run, so the snapshot figures are measured.
			"--snapshot-threshold", "64", "--snapshot-interval", "10s"}
	}
	for i := range nb {
		n := &node{role: "broker", id: int32(101 + i)}
		var err error
		if n.addr, err = freeAddr(used); err != nil {
			return nil, nil, err
		}
		n.name = fmt.Sprintf("broker-%d", n.id)
		n.dataDir = filepath.Join(dir, n.name)
		n.logPath = filepath.Join(dir, n.name+".log")
		n.args = []string{bin, "broker", "--node-id", strconv.Itoa(int(n.id)), "--data-dir", n.dataDir,
			"--listen", n.addr, "--controllers", strings.Join(ctrlAddrs, ","), "--log-level", logLevel}
		brokers = append(brokers, n)
	}
	if pprof {
		for _, n := range append(append([]*node{}, ctrls...), brokers...) {
			var err error
			if n.pprofAddr, err = freeAddr(used); err != nil {
				return nil, nil, err
			}
			n.args = append(n.args, "--pprof", n.pprofAddr)
		}
	}
	return ctrls, brokers, nil
}

// start starts the process, appending its output to its log file.
func (n *node) start() error {
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s log: %w", n.name, err)
	}
	cmd := exec.Command(n.args[0], n.args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("start %s: %w", n.name, err)
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

// running reports whether the process was started and has not exited.
func (n *node) running() bool {
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

func (n *node) pid() int { return n.cmd.Process.Pid }

// kill sends SIGKILL and waits until the process is reaped.
func (n *node) kill() {
	if !n.running() {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
}

// stop sends SIGTERM and waits up to timeout, then SIGKILLs.
func (n *node) stop(timeout time.Duration) {
	if !n.running() {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(timeout):
		n.kill()
	}
}

// procSample is one reading of /proc/<pid>: CPU ticks (utime+stime) and
// resident memory.
type procSample struct {
	ticks int64
	rssKB int64
}

// readProc reads utime+stime (fields 14 and 15 of /proc/<pid>/stat, in
// clock ticks) and VmRSS of pid.
func readProc(pid int) (procSample, error) {
	var s procSample
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// The command name (field 2) may hold spaces; fields after it follow
	// the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return s, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return s, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("/proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	s.ticks = ut + st
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			fs := strings.Fields(rest)
			if len(fs) > 0 {
				s.rssKB, _ = strconv.ParseInt(fs[0], 10, 64)
			}
		}
	}
	return s, nil
}

// clockTicks is sysconf(_SC_CLK_TCK), from getconf; 100 when unknown.
func clockTicks() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if v, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && v > 0 {
			return v
		}
	}
	return 100
}

// loadAvg is the first three fields of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// directClient returns a client that sends requests to addr only (through
// its seed broker, never to other brokers it learns of).
func directClient(addr string) (*kgo.Client, error) {
	return kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID("skein-bench-scale"),
		kgo.DialTimeout(2*time.Second), kgo.RequestRetries(0))
}

// requestTo sends req to the one seed broker of cl.
func requestTo(ctx context.Context, cl *kgo.Client, req kmsg.Request) (kmsg.Response, error) {
	seeds := cl.SeedBrokers()
	if len(seeds) == 0 {
		return nil, errors.New("client has no seed broker")
	}
	return seeds[0].Request(ctx, req)
}

// partStats summarises the bench topics of one Metadata response.
type partStats struct {
	brokers    int // brokers listed
	topics     int
	partitions int
	leaderless int           // leader -1 or error
	shortISR   int           // ISR smaller than the replica set
	ledBy      map[int32]int // partitions per leader id
}

// metadataStats asks the broker at addr for the metadata of all topics and
// counts the partitions of topics whose name starts with prefix.
func metadataStats(ctx context.Context, addr, prefix string) (partStats, error) {
	st := partStats{ledBy: map[int32]int{}}
	cl, err := directClient(addr)
	if err != nil {
		return st, err
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = nil // all topics
	kresp, err := requestTo(ctx, cl, req)
	if err != nil {
		return st, fmt.Errorf("metadata from %s: %w", addr, err)
	}
	resp := kresp.(*kmsg.MetadataResponse)
	st.brokers = len(resp.Brokers)
	for _, t := range resp.Topics {
		if t.Topic == nil || !strings.HasPrefix(*t.Topic, prefix) || t.ErrorCode != 0 {
			continue
		}
		st.topics++
		for _, p := range t.Partitions {
			st.partitions++
			if p.ErrorCode != 0 && p.ErrorCode != kerr.ReplicaNotAvailable.Code || p.Leader < 0 {
				st.leaderless++
			} else {
				st.ledBy[p.Leader]++
			}
			if len(p.ISR) < len(p.Replicas) {
				st.shortISR++
			}
		}
	}
	return st, nil
}

// quorumLeader asks the controller at addr (DescribeQuorum) which node
// leads the metadata quorum; -1 when none is known.
func quorumLeader(ctx context.Context, addr string) (int32, error) {
	id, _, err := describeQuorum(ctx, addr)
	return id, err
}

// describeQuorum returns the quorum leader named by the controller at addr
// and the metadata log's high watermark (the applied Raft index + 1).
func describeQuorum(ctx context.Context, addr string) (int32, int64, error) {
	cl, err := directClient(addr)
	if err != nil {
		return -1, -1, err
	}
	defer cl.Close()
	req := kmsg.NewPtrDescribeQuorumRequest()
	t := kmsg.NewDescribeQuorumRequestTopic()
	t.Topic = "__cluster_metadata"
	p := kmsg.NewDescribeQuorumRequestTopicPartition()
	p.Partition = 0
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	kresp, err := requestTo(ctx, cl, req)
	if err != nil {
		return -1, -1, fmt.Errorf("describe quorum at %s: %w", addr, err)
	}
	resp := kresp.(*kmsg.DescribeQuorumResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return -1, -1, fmt.Errorf("describe quorum at %s: %w", addr, err)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return -1, -1, fmt.Errorf("describe quorum at %s: %w", addr, err)
			}
			return p.LeaderID, p.HighWatermark, nil
		}
	}
	return -1, -1, fmt.Errorf("describe quorum at %s: no partition in the answer", addr)
}

// dialable reports whether something accepts TCP connections on addr.
func dialable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// snapshotInfo is the newest Raft snapshot of one controller.
type snapshotInfo struct {
	count int   // snapshots on disk
	bytes int64 // size of the newest one's state.bin (-1: none)
	index string
}

// latestSnapshot looks in <dataDir>/raft/snapshots (hashicorp/raft's file
// snapshot store: one directory per snapshot, term-index-time, holding
// state.bin and meta.json).
func latestSnapshot(dataDir string) snapshotInfo {
	info := snapshotInfo{bytes: -1}
	dir := filepath.Join(dataDir, "raft", "snapshots")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return info
	}
	var newest string
	for _, e := range ents {
		if !e.IsDir() || strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		info.count++
		if e.Name() > newest { // names sort by term, then index
			newest = e.Name()
		}
	}
	if newest == "" {
		return info
	}
	if fi, err := os.Stat(filepath.Join(dir, newest, "state.bin")); err == nil {
		info.bytes = fi.Size()
	}
	info.index = newest
	return info
}

// snapshotDurations reads a controller's log for hashicorp/raft's
// "starting snapshot up to" and "snapshot complete up to" lines and returns
// the time between each pair (hclog's timestamp leads each line).
func snapshotDurations(logPath string) []time.Duration {
	b, err := os.ReadFile(logPath)
	if err != nil {
		return nil
	}
	var out []time.Duration
	var started time.Time
	for _, line := range strings.Split(string(b), "\n") {
		ts, ok := lineTime(line)
		if !ok {
			continue
		}
		switch {
		case strings.Contains(line, "starting snapshot up to"):
			started = ts
		case strings.Contains(line, "snapshot complete up to") && !started.IsZero():
			out = append(out, ts.Sub(started))
			started = time.Time{}
		}
	}
	return out
}

// lineTime parses hclog's leading timestamp (2006-01-02T15:04:05.000Z0700).
func lineTime(line string) (time.Time, bool) {
	f, _, ok := strings.Cut(line, " ")
	if !ok {
		return time.Time{}, false
	}
	for _, layout := range []string{"2006-01-02T15:04:05.000Z0700", time.RFC3339Nano} {
		if t, err := time.Parse(layout, f); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// countLines counts the lines of the file at path that contain substr.
func countLines(path, substr string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return strings.Count(string(b), substr)
}
