// Package reassign holds the pure logic of partition reassignment, shared by
// the `skein reassign`, `skein broker decommission` and `skein cluster
// rebalance` commands: the plan file (kafka-reassign-partitions' JSON
// format), the planners that compute new replica lists (Generate,
// Decommission, Rebalance), the --throttle rate parser and Kafka's
// throttled-replicas config strings. Nothing here talks to a cluster: the
// commands read the cluster's state, hand it to these functions and send
// what they return.
package reassign

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
)

// PlanVersion is the only plan format version (kafka-reassign-partitions'
// "version": 1).
const PlanVersion = 1

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func (tp TopicPartition) String() string { return fmt.Sprintf("%s-%d", tp.Topic, tp.Partition) }

// Less orders partitions by topic, then partition.
func (tp TopicPartition) Less(o TopicPartition) bool {
	if tp.Topic != o.Topic {
		return tp.Topic < o.Topic
	}
	return tp.Partition < o.Partition
}

// PlanPartition is one entry of a plan: the replicas a partition should
// have, the first being its preferred leader.
type PlanPartition struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Replicas  []int32 `json:"replicas"`
	// LogDirs is accepted for compatibility with Kafka's files and ignored.
	LogDirs []string `json:"log_dirs,omitempty"`
}

// TP is the entry's partition.
func (p PlanPartition) TP() TopicPartition { return TopicPartition{p.Topic, p.Partition} }

// Plan is a reassignment plan in kafka-reassign-partitions' JSON format:
// {"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2,3]}]}.
type Plan struct {
	Version    int             `json:"version"`
	Partitions []PlanPartition `json:"partitions"`
}

// Assignment maps partitions to their replica lists (preferred leader
// first).
type Assignment map[TopicPartition][]int32

// Sorted returns the assignment's partitions by topic, then partition.
func (a Assignment) Sorted() []TopicPartition {
	tps := make([]TopicPartition, 0, len(a))
	for tp := range a {
		tps = append(tps, tp)
	}
	sort.Slice(tps, func(i, j int) bool { return tps[i].Less(tps[j]) })
	return tps
}

// Plan returns the assignment as a plan, sorted by topic and partition.
func (a Assignment) Plan() Plan {
	p := Plan{Version: PlanVersion, Partitions: []PlanPartition{}}
	for _, tp := range a.Sorted() {
		p.Partitions = append(p.Partitions, PlanPartition{Topic: tp.Topic, Partition: tp.Partition,
			Replicas: slices.Clone(a[tp])})
	}
	return p
}

// Assignment returns the plan's partitions as a map.
func (p Plan) Assignment() Assignment {
	a := make(Assignment, len(p.Partitions))
	for _, pp := range p.Partitions {
		a[pp.TP()] = slices.Clone(pp.Replicas)
	}
	return a
}

// Format prints the plan as one line of JSON, as kafka-reassign-partitions
// does, sorted by topic and partition, without log_dirs.
func (p Plan) Format() string {
	out := Plan{Version: PlanVersion, Partitions: make([]PlanPartition, 0, len(p.Partitions))}
	for _, pp := range p.Partitions {
		out.Partitions = append(out.Partitions, PlanPartition{Topic: pp.Topic, Partition: pp.Partition, Replicas: pp.Replicas})
	}
	sort.SliceStable(out.Partitions, func(i, j int) bool { return out.Partitions[i].TP().Less(out.Partitions[j].TP()) })
	for i := range out.Partitions {
		if out.Partitions[i].Replicas == nil {
			out.Partitions[i].Replicas = []int32{}
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		panic(err) // plain structs of strings and ints always marshal
	}
	return string(b)
}

// ParsePlan reads a plan file's bytes and validates it: the version is 1,
// there is at least one partition, every entry names a topic, a partition
// >= 0 and a non-empty replica list without duplicates, and no partition is
// listed twice. The errors say what is wrong and where.
func ParsePlan(data []byte) (Plan, error) {
	var p Plan
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&p); err != nil {
		return Plan{}, jsonError(data, err)
	}
	if dec.More() {
		return Plan{}, errors.New("malformed plan: unexpected data after the JSON object")
	}
	if p.Version != PlanVersion {
		return Plan{}, fmt.Errorf("plan version %d is not supported: want \"version\": %d", p.Version, PlanVersion)
	}
	if len(p.Partitions) == 0 {
		return Plan{}, errors.New(`the plan lists no partitions ("partitions": []): nothing to reassign; ` +
			"make one with `skein reassign generate`")
	}
	seen := make(map[TopicPartition]int, len(p.Partitions))
	for i, pp := range p.Partitions {
		where := fmt.Sprintf("partitions[%d]", i)
		if pp.Topic == "" {
			return Plan{}, fmt.Errorf("%s has no \"topic\"", where)
		}
		where = fmt.Sprintf("%s (%s-%d)", where, pp.Topic, pp.Partition)
		if pp.Partition < 0 {
			return Plan{}, fmt.Errorf("%s: partition %d is negative", where, pp.Partition)
		}
		if len(pp.Replicas) == 0 {
			return Plan{}, fmt.Errorf("%s has no \"replicas\": list the broker ids the partition should be on", where)
		}
		if err := CheckBrokerList(pp.Replicas); err != nil {
			return Plan{}, fmt.Errorf("%s: %w", where, err)
		}
		if len(pp.LogDirs) > 0 && len(pp.LogDirs) != len(pp.Replicas) {
			return Plan{}, fmt.Errorf("%s has %d log_dirs for %d replicas (log_dirs are ignored, but must match when given)",
				where, len(pp.LogDirs), len(pp.Replicas))
		}
		if j, dup := seen[pp.TP()]; dup {
			return Plan{}, fmt.Errorf("partition %s is listed twice (partitions[%d] and partitions[%d]): keep one entry per partition",
				pp.TP(), j, i)
		}
		seen[pp.TP()] = i
	}
	return p, nil
}

// CheckBrokerList fails when a broker id is negative or listed twice.
func CheckBrokerList(ids []int32) error {
	seen := make(map[int32]bool, len(ids))
	for _, id := range ids {
		if id < 0 {
			return fmt.Errorf("broker id %d is negative", id)
		}
		if seen[id] {
			return fmt.Errorf("broker %d is listed twice in %s: a partition has at most one replica per broker",
				id, FormatIDs(ids))
		}
		seen[id] = true
	}
	return nil
}

// jsonError turns a decoding error into one with a line and column.
func jsonError(data []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		line, col := position(data, syn.Offset)
		return fmt.Errorf("malformed plan JSON at line %d, column %d: %v (want {\"version\":1,\"partitions\":[{\"topic\":\"t\",\"partition\":0,\"replicas\":[1,2,3]}]})",
			line, col, syn)
	case errors.As(err, &typ):
		line, col := position(data, typ.Offset)
		return fmt.Errorf("malformed plan JSON at line %d, column %d: %q must be %s, not a JSON %s",
			line, col, typ.Field, typ.Type, typ.Value)
	case errors.Is(err, io.EOF):
		return errors.New("the plan file is empty: give a plan made by `skein reassign generate`")
	}
	return fmt.Errorf("malformed plan JSON: %w", err)
}

// position returns the 1-based line and column of byte offset off.
func position(data []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(off) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// FormatIDs prints broker ids comma-separated.
func FormatIDs(ids []int32) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprint(id)
	}
	return strings.Join(parts, ",")
}
