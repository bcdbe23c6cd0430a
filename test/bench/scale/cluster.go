package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

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
