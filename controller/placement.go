package controller

import (
	"sort"

	"github.com/skein-io/skein/controller/image"
)

// placeReplicas assigns replicas to count new partitions numbered from
// first, round-robin over brokers: partition q gets rf consecutive brokers of
// the placement order starting at (start+q). The first replica is the
// preferred leader. When brokers have racks, the order alternates racks so
// consecutive brokers sit in different racks where possible. It is a pure
// function; brokers must be non-empty and rf <= len(brokers).
func placeReplicas(brokers []*image.Broker, first, count int32, rf int, start int) [][]int32 {
	order := placementOrder(brokers)
	n := len(order)
	out := make([][]int32, 0, count)
	for q := first; q < first+count; q++ {
		replicas := make([]int32, rf)
		for r := range rf {
			replicas[r] = order[(start+int(q)+r)%n]
		}
		out = append(out, replicas)
	}
	return out
}

// placementOrder lists broker ids sorted, or, when any broker has a rack,
// interleaved across racks: the first broker of each rack, then the second
// of each, and so on (racks and brokers in sorted order).
func placementOrder(brokers []*image.Broker) []int32 {
	sorted := append([]*image.Broker(nil), brokers...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })
	racks := map[string][]int32{}
	var names []string
	for _, b := range sorted {
		if _, ok := racks[b.Rack]; !ok {
			names = append(names, b.Rack)
		}
		racks[b.Rack] = append(racks[b.Rack], b.ID)
	}
	out := make([]int32, 0, len(sorted))
	if len(names) == 1 {
		for _, b := range sorted {
			out = append(out, b.ID)
		}
		return out
	}
	sort.Strings(names)
	for i := 0; len(out) < len(sorted); i++ {
		for _, r := range names {
			if i < len(racks[r]) {
				out = append(out, racks[r][i])
			}
		}
	}
	return out
}
