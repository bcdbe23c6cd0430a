package controller

// The controller's metrics beyond the request metrics (internal/metrics),
// and its readiness. Everything is read when Prometheus scrapes: Raft's
// own counters, the active controller's view of the quorum (quorum.go),
// the applied metadata image and the snapshot store.

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/skein-io/skein/internal/metrics"
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(metrics.Namespace, "controller", name), help, labels, nil)
}

var (
	descRaftState = desc("raft_state",
		"1 for this controller's Raft state (follower, candidate, leader, shutdown), 0 for the others.", "state")
	descRaftTerm        = desc("raft_term", "Current Raft term.")
	descRaftCommitIndex = desc("raft_commit_index", "Raft commit index.")
	descRaftApplied     = desc("raft_applied_index", "Raft index last applied to the metadata image.")
	descRaftLastIndex   = desc("raft_last_log_index", "Index of the last entry in this controller's Raft log.")
	descActive          = desc("active", "1 on the active controller (the Raft leader, once its term's entries are applied).")
	descLeaderContact   = desc("leader_last_contact_seconds",
		"Seconds since this controller last heard from the Raft leader (followers only).")
	descVoterContact = desc("voter_last_contact_seconds",
		"Seconds since a voter last answered the active controller's progress poll (on the active controller).", "voter")
	descVoterLag = desc("voter_lag",
		"Metadata records a voter's applied index is behind the active controller's, as of its last answer (on the active controller).", "voter")
	descMetadataOffset = desc("metadata_offset", "Offset (Raft index) of the last record in the applied metadata image.")
	descSnapshotAge    = desc("snapshot_age_seconds", "Seconds since the newest metadata snapshot was taken.")
	descBrokers        = desc("registered_brokers", "Brokers registered in the metadata.")
	descFenced         = desc("fenced_brokers", "Registered brokers that are fenced.")
	descTopics         = desc("topics", "Topics in the metadata.")
	descPartitions     = desc("partitions", "Partitions in the metadata.")
	descOffline        = desc("offline_partitions", "Partitions without a leader (every controller reports the cluster's count).")
	descImbalance      = desc("preferred_leader_imbalance",
		"Partitions not led by their preferred leader, the first replica (every controller reports the cluster's count).")
)

var raftStates = []raft.RaftState{raft.Follower, raft.Candidate, raft.Leader, raft.Shutdown}

// controllerCollector collects a controller's state.
type controllerCollector struct{ c *Controller }

func (cc *controllerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descRaftState, descRaftTerm, descRaftCommitIndex, descRaftApplied, descRaftLastIndex, descActive,
		descLeaderContact, descVoterContact, descVoterLag, descMetadataOffset, descSnapshotAge,
		descBrokers, descFenced, descTopics, descPartitions, descOffline, descImbalance,
	} {
		ch <- d
	}
}

func gauge(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func (cc *controllerCollector) Collect(ch chan<- prometheus.Metric) {
	c := cc.c
	if !c.started.Load() {
		return
	}
	now := c.now()
	r := c.raft
	state := r.State()
	for _, s := range raftStates {
		v := 0.0
		if s == state {
			v = 1
		}
		ch <- gauge(descRaftState, v, strings.ToLower(s.String()))
	}
	ch <- gauge(descRaftTerm, float64(r.CurrentTerm()))
	ch <- gauge(descRaftCommitIndex, float64(r.CommitIndex()))
	ch <- gauge(descRaftApplied, float64(r.AppliedIndex()))
	ch <- gauge(descRaftLastIndex, float64(r.LastIndex()))
	active := c.active.Load() != nil
	if active {
		ch <- gauge(descActive, 1)
	} else {
		ch <- gauge(descActive, 0)
	}
	if state == raft.Follower {
		if last := r.LastContact(); !last.IsZero() {
			ch <- gauge(descLeaderContact, now.Sub(last).Seconds())
		}
	}
	img := c.fsm.current()
	if active {
		if conf, _, err := c.raftConfiguration(); err == nil {
			for _, s := range conf.Servers {
				id, ok := serverNodeID(s.ID)
				if !ok || id == c.cfg.NodeID {
					continue
				}
				p, ok := c.quorum.get(id)
				if !ok || p.Contact.IsZero() {
					continue
				}
				voter := strconv.Itoa(int(id))
				ch <- gauge(descVoterContact, now.Sub(p.Contact).Seconds(), voter)
				lag := 0.0
				if img.Index > p.Index {
					lag = float64(img.Index - p.Index)
				}
				ch <- gauge(descVoterLag, lag, voter)
			}
		}
	}
	ch <- gauge(descMetadataOffset, float64(img.Index))
	if taken, ok := c.lastSnapshotTime(); ok {
		ch <- gauge(descSnapshotAge, now.Sub(taken).Seconds())
	}
	fenced := 0
	for _, b := range img.Brokers {
		if b != nil && b.Fenced {
			fenced++
		}
	}
	ch <- gauge(descBrokers, float64(len(img.Brokers)))
	ch <- gauge(descFenced, float64(fenced))
	var partitions, offline, imbalance int
	for _, t := range img.Topics {
		if t == nil {
			continue
		}
		for _, p := range t.Partitions {
			if p == nil {
				continue
			}
			partitions++
			if p.Leader < 0 {
				offline++
			}
			if len(p.Replicas) > 0 && p.Leader != p.Replicas[0] {
				imbalance++
			}
		}
	}
	ch <- gauge(descTopics, float64(len(img.Topics)))
	ch <- gauge(descPartitions, float64(partitions))
	ch <- gauge(descOffline, float64(offline))
	ch <- gauge(descImbalance, float64(imbalance))
}

// lastSnapshotTime is when the newest snapshot in the store was taken:
// hashicorp/raft's file store names a snapshot term-index-milliseconds.
func (c *Controller) lastSnapshotTime() (time.Time, bool) {
	metas, err := c.snaps.List()
	if err != nil || len(metas) == 0 {
		return time.Time{}, false
	}
	id := metas[0].ID
	ms, err := strconv.ParseInt(id[strings.LastIndexByte(id, '-')+1:], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}

// Ready says whether the controller takes part in the metadata quorum: it
// is a voter of the latest Raft configuration and knows the leader.
// Otherwise it says why not.
func (c *Controller) Ready() (bool, string) {
	if !c.started.Load() {
		return false, "starting"
	}
	if c.ctx.Err() != nil || c.raft.State() == raft.Shutdown {
		return false, "shutting down"
	}
	conf, _, err := c.raftConfiguration()
	if err != nil {
		return false, "raft configuration: " + err.Error()
	}
	self := raftServerID(c.cfg.NodeID)
	i := slices.IndexFunc(conf.Servers, func(s raft.Server) bool { return s.ID == self })
	switch {
	case i < 0:
		return false, "not in the controller quorum (waiting to be added)"
	case conf.Servers[i].Suffrage != raft.Voter:
		return false, "a non-voter of the quorum, catching up before promotion"
	}
	if _, leader := c.raft.LeaderWithID(); leader == "" {
		return false, "no known quorum leader (election in progress)"
	}
	return true, ""
}
