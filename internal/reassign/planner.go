package reassign

import (
	"errors"
	"fmt"
	"slices"
	"sort"
)

// Broker is a broker a replica may be placed on.
type Broker struct {
	ID   int32
	Rack string // "" when the broker has no rack
}

// Generate plans the partitions of current (the topics to move) onto
// brokers, keeping each partition's replication factor. Replicas already on
// one of brokers stay where they are (unless rackAware and two of them
// share a rack); the others go to the least loaded of brokers, counting the
// replicas of current only. Preferred leaders (first replicas) are spread
// within one of each other where the replica sets allow it. With rackAware
// every broker must have a rack and a partition's replicas go to distinct
// racks (as evenly as possible when there are fewer racks than replicas).
// It returns the target of every partition of current (unchanged ones
// included: see Changes); the same input always gives the same plan.
func Generate(current Assignment, brokers []Broker, rackAware bool) (Assignment, error) {
	if len(current) == 0 {
		return nil, errors.New("no partitions to plan: the topics have no partitions")
	}
	p, err := newPlanner(current, nil, brokers, rackAware, -1)
	if err != nil {
		return nil, err
	}
	if err := p.place(); err != nil {
		return nil, err
	}
	p.assignLeaders(true)
	return p.target, nil
}

// Decommission plans moving every replica off broker id: the partitions of
// current with a replica on id get, in its place, the least loaded live
// broker (counting every replica of current) that does not hold one yet,
// on a rack the partition does not use yet when every live broker has a
// rack. The other replicas stay where they are, even when they share a
// rack or their broker is not live. Where id was the preferred leader, the remaining replica with the
// fewest preferred leaderships leads. live lists the live brokers (id among
// them or not); the result holds only the partitions that move.
func Decommission(current Assignment, live []Broker, id int32) (Assignment, error) {
	var others []Broker
	found := false
	for _, b := range live {
		if b.ID == id {
			found = true
			continue
		}
		others = append(others, b)
	}
	planned, fixed := Assignment{}, Assignment{}
	for tp, r := range current {
		if slices.Contains(r, id) {
			planned[tp] = r
		} else {
			fixed[tp] = r
		}
	}
	if len(planned) == 0 {
		if !found {
			return nil, fmt.Errorf("broker %d is not a live broker and holds no replica: nothing to move", id)
		}
		return Assignment{}, nil
	}
	p, err := newPlanner(planned, fixed, others, allHaveRacks(others), id)
	if err != nil {
		return nil, err
	}
	if err := p.place(); err != nil {
		return nil, err
	}
	p.assignLeaders(false)
	return Changes(planned, p.target), nil
}

// Rebalance plans evening out current over the live brokers: replicas on
// brokers that are not live move to live ones, then replicas move from the
// most to the least loaded brokers until the replica counts are within one
// of each other, choosing each time the move that adds the least data to
// the plan; then preferred leaders are evened out the same way (a leader
// change moves no data). Rack-aware when every live broker has a rack. The
// result holds only the partitions that change: empty when the cluster is
// already balanced.
func Rebalance(current Assignment, live []Broker) (Assignment, error) {
	if len(current) == 0 {
		return Assignment{}, nil
	}
	p, err := newPlanner(current, nil, live, allHaveRacks(live), -1)
	if err != nil {
		return nil, err
	}
	if err := p.place(); err != nil {
		return nil, err
	}
	p.balanceReplicas()
	p.assignLeaders(true)
	return Changes(current, p.target), nil
}

// Changes returns the partitions of target whose replica list (order
// included: the first replica is the preferred leader) differs from
// current.
func Changes(current, target Assignment) Assignment {
	out := Assignment{}
	for tp, r := range target {
		if !slices.Equal(current[tp], r) {
			out[tp] = slices.Clone(r)
		}
	}
	return out
}

// Moves counts the replicas target adds to current: the replicas to copy.
func Moves(current, target Assignment) int {
	n := 0
	for tp, r := range target {
		n += len(Diff(r, current[tp]))
	}
	return n
}

// Loads counts the replicas and the preferred leaders per broker.
func Loads(a Assignment) (replicas, leaders map[int32]int) {
	replicas, leaders = map[int32]int{}, map[int32]int{}
	for _, r := range a {
		for i, id := range r {
			replicas[id]++
			if i == 0 {
				leaders[id]++
			}
		}
	}
	return replicas, leaders
}

// Merge returns current with the partitions of changes replaced.
func Merge(current, changes Assignment) Assignment {
	out := make(Assignment, len(current))
	for tp, r := range current {
		out[tp] = r
	}
	for tp, r := range changes {
		out[tp] = r
	}
	return out
}

func allHaveRacks(brokers []Broker) bool {
	if len(brokers) == 0 {
		return false
	}
	for _, b := range brokers {
		if b.Rack == "" {
			return false
		}
	}
	return true
}

// planner places the partitions of orig over the allowed brokers; fixed
// partitions do not move but count towards the brokers' loads.
type planner struct {
	orig, fixed, target Assignment
	order               []TopicPartition // orig's partitions, sorted
	// tgt and org are target and orig by index in order (the same
	// slices: no map look-ups in the balancing loops).
	tgt, org  [][]int32
	ids       []int32 // allowed brokers, sorted
	rack      map[int32]string
	racks     int // distinct racks of the allowed brokers
	rackAware bool
	// keepAll keeps every replica that is not on removed, even two on
	// one rack or one on a broker that is not live (decommission moves
	// only what it must).
	keepAll       bool
	removed       int32
	load, leaders map[int32]int // over target and fixed, allowed brokers only
}

// newPlanner plans orig over brokers. removed >= 0 sets keepAll: only the
// replicas on removed move.
func newPlanner(orig, fixed Assignment, brokers []Broker, rackAware bool, removed int32) (*planner, error) {
	p := &planner{orig: orig, fixed: fixed, target: Assignment{}, rack: map[int32]string{},
		rackAware: rackAware, load: map[int32]int{}, leaders: map[int32]int{},
		keepAll: removed >= 0, removed: removed}
	if len(brokers) == 0 {
		return nil, errors.New("no broker to place replicas on")
	}
	racks := map[string]bool{}
	for _, b := range brokers {
		if _, dup := p.rack[b.ID]; dup {
			return nil, fmt.Errorf("broker %d is listed twice: list each broker once", b.ID)
		}
		if b.ID < 0 {
			return nil, fmt.Errorf("broker id %d is negative", b.ID)
		}
		if rackAware && b.Rack == "" {
			return nil, fmt.Errorf("rack-aware placement needs a rack on every broker, and broker %d has none: "+
				"start it with --rack, or plan without --rack-aware", b.ID)
		}
		p.rack[b.ID] = b.Rack
		racks[b.Rack] = true
		p.ids = append(p.ids, b.ID)
		p.load[b.ID], p.leaders[b.ID] = 0, 0
	}
	slices.Sort(p.ids)
	p.racks = len(racks)
	p.order = orig.Sorted()
	for _, tp := range p.order {
		r := orig[tp]
		if len(r) == 0 {
			return nil, fmt.Errorf("partition %s has no replicas", tp)
		}
		if err := CheckBrokerList(r); err != nil {
			return nil, fmt.Errorf("partition %s: %w", tp, err)
		}
		// The brokers must hold every replica, except with keepAll those
		// kept on brokers that are not among them.
		need := len(r)
		if p.keepAll {
			need -= len(Diff(Diff(r, p.ids), []int32{p.removed}))
		}
		if need > len(p.ids) {
			return nil, fmt.Errorf("partition %s has %d replicas but only %d broker(s) (%s) may hold them: "+
				"give at least %d brokers, or lower the topic's replication factor first",
				tp, len(r), len(p.ids), FormatIDs(p.ids), len(r))
		}
	}
	for _, r := range fixed {
		for i, id := range r {
			if _, ok := p.load[id]; ok {
				p.load[id]++
				if i == 0 {
					p.leaders[id]++
				}
			}
		}
	}
	return p, nil
}

func (p *planner) allowed(id int32) bool { _, ok := p.load[id]; return ok }

// maxPerRack is how many replicas of a partition of rf replicas one rack
// may hold: 1 when there are enough racks, else as evenly as possible.
func (p *planner) maxPerRack(rf int) int {
	if !p.rackAware || p.racks == 0 {
		return rf
	}
	return (rf + p.racks - 1) / p.racks
}

// rackOK: replicas (-1 entries are empty slots) respect maxPerRack.
func (p *planner) rackOK(replicas []int32, rf int) bool {
	if !p.rackAware {
		return true
	}
	limit := p.maxPerRack(rf)
	count := map[string]int{}
	for _, id := range replicas {
		rack, known := p.rack[id]
		if id < 0 || !known {
			continue // an empty slot, or a broker kept though not allowed
		}
		count[rack]++
		if count[rack] > limit {
			return false
		}
	}
	return true
}

// place keeps every replica that is on an allowed broker (and within its
// rack's share), then fills the empty slots with the least loaded allowed
// brokers, partition by partition in topic-partition order.
func (p *planner) place() error {
	slots := make(map[TopicPartition][]int32, len(p.order))
	for _, tp := range p.order {
		r := p.orig[tp]
		s := slices.Repeat([]int32{-1}, len(r))
		for i, id := range r {
			switch {
			case p.keepAll && id != p.removed:
				s[i] = id
			case p.allowed(id):
				s[i] = id
				if !p.rackOK(s, len(r)) {
					s[i] = -1
				}
			}
			if s[i] >= 0 && p.allowed(id) {
				p.load[id]++
			}
		}
		slots[tp] = s
	}
	for _, tp := range p.order {
		s := slots[tp]
		for i := range s {
			if s[i] >= 0 {
				continue
			}
			id, ok := p.pick(s, true)
			if !ok {
				// Too few brokers on the other racks: share a rack rather
				// than fail.
				id, ok = p.pick(s, false)
			}
			if !ok {
				return fmt.Errorf("partition %s: no broker left for replica %d of %d", tp, i+1, len(s))
			}
			s[i] = id
			p.load[id]++
		}
		p.target[tp] = s
	}
	p.tgt, p.org = make([][]int32, len(p.order)), make([][]int32, len(p.order))
	for i, tp := range p.order {
		p.tgt[i], p.org[i] = p.target[tp], p.orig[tp]
	}
	return nil
}

// pick returns the least loaded allowed broker not in s (lowest id among
// equals), on a rack with room when racks is set.
func (p *planner) pick(s []int32, racks bool) (int32, bool) {
	best, found := int32(-1), false
	for _, id := range p.ids {
		if slices.Contains(s, id) {
			continue
		}
		if racks {
			if !p.rackOK(append(slices.Clone(s), id), len(s)) {
				continue
			}
		}
		if !found || p.load[id] < p.load[best] {
			best, found = id, true
		}
	}
	return best, found
}

// balanceReplicas moves replicas from the most to the least loaded brokers
// until the loads are within one of each other or no move can help (rack
// constraints). Each move takes the replica whose move adds the least to
// the plan: one already planned to move (undoing it costs nothing) before
// one in its original place. Every move lowers the sum of squared loads, so
// this ends.
func (p *planner) balanceReplicas() {
	// held[b]: the indexes in p.order of the partitions with a replica on
	// b, ascending, so a move looks at b's partitions only.
	held := map[int32][]int{}
	for i, r := range p.tgt {
		for _, id := range r {
			held[id] = append(held[id], i)
		}
	}
	for p.balanceStep(held) {
	}
}

func (p *planner) balanceStep(held map[int32][]int) bool {
	byLoad := slices.Clone(p.ids)
	sort.SliceStable(byLoad, func(i, j int) bool { return p.load[byLoad[i]] > p.load[byLoad[j]] })
	for hi := 0; hi < len(byLoad); hi++ {
		h := byLoad[hi]
		for li := len(byLoad) - 1; li > hi; li-- {
			l := byLoad[li]
			if p.load[l] >= p.load[h]-1 {
				break
			}
			if i, at, ok := p.bestMove(held[h], h, l); ok {
				p.tgt[i][at] = l
				p.load[h]--
				p.load[l]++
				pos, _ := slices.BinarySearch(held[h], i)
				held[h] = slices.Delete(held[h], pos, pos+1)
				pos, _ = slices.BinarySearch(held[l], i)
				held[l] = slices.Insert(held[l], pos, i)
				return true
			}
		}
	}
	return false
}

// bestMove finds, among the partitions (indexes in p.order) with a replica
// on h, the one whose replica on h is best moved to l.
func (p *planner) bestMove(candidates []int, h, l int32) (int, int, bool) {
	best, bestAt, bestCost, found := 0, 0, 0, false
	for _, i := range candidates {
		r := p.tgt[i]
		at := slices.Index(r, h)
		if at < 0 || slices.Contains(r, l) {
			continue
		}
		if p.rackAware {
			r[at] = l
			ok := p.rackOK(r, len(r))
			r[at] = h
			if !ok {
				continue
			}
		}
		cost := 0
		if !slices.Contains(p.org[i], l) {
			cost++
		}
		if !slices.Contains(p.org[i], h) {
			cost--
		}
		if !found || cost < bestCost {
			best, bestAt, bestCost, found = i, at, cost, true
			if cost < 0 {
				break
			}
		}
	}
	return best, bestAt, found
}

// assignLeaders puts a preferred leader first in every planned partition:
// the original one when it stays a replica, else the replica with the
// fewest preferred leaderships. With balance, leaderships then move from
// the brokers with the most to those with the fewest until they are within
// one of each other or no partition allows it.
func (p *planner) assignLeaders(balance bool) {
	// Kept leaders first, so that the partitions needing a new one see
	// every broker's final count of kept leaderships.
	var orphans []TopicPartition
	for _, tp := range p.order {
		r := p.target[tp]
		if lead := p.orig[tp][0]; slices.Contains(r, lead) {
			p.setLeader(r, lead)
			p.leaders[lead]++
		} else {
			orphans = append(orphans, tp)
		}
	}
	for _, tp := range orphans {
		r := p.target[tp]
		lead := int32(-1)
		for _, id := range r {
			if !p.allowed(id) {
				continue // kept on a broker that is not live: never the leader
			}
			if lead < 0 || p.leaders[id] < p.leaders[lead] || (p.leaders[id] == p.leaders[lead] && id < lead) {
				lead = id
			}
		}
		if lead < 0 {
			continue
		}
		p.setLeader(r, lead)
		p.leaders[lead]++
	}
	if balance {
		for p.leaderStep() {
		}
	}
}

// setLeader swaps lead to the front of r.
func (p *planner) setLeader(r []int32, lead int32) {
	at := slices.Index(r, lead)
	r[0], r[at] = r[at], r[0]
}

func (p *planner) leaderStep() bool {
	byCount := slices.Clone(p.ids)
	sort.SliceStable(byCount, func(i, j int) bool { return p.leaders[byCount[i]] > p.leaders[byCount[j]] })
	for hi := 0; hi < len(byCount); hi++ {
		h := byCount[hi]
		for li := len(byCount) - 1; li > hi; li-- {
			l := byCount[li]
			if p.leaders[l] >= p.leaders[h]-1 {
				break
			}
			var pick []int32
			for i, r := range p.tgt {
				if r[0] != h || !slices.Contains(r, l) {
					continue
				}
				// Prefer giving a partition its original leader back.
				if pick == nil || p.org[i][0] == l {
					pick = r
					if p.org[i][0] == l {
						break
					}
				}
			}
			if pick != nil {
				p.setLeader(pick, l)
				p.leaders[h]--
				p.leaders[l]++
				return true
			}
		}
	}
	// No direct hand-over: shift along a chain h -> x -> ... -> l, each
	// broker handing one leadership to the next (the middle ones keep
	// their counts).
	for _, h := range byCount {
		if p.leaderChain(h) {
			return true
		}
	}
	return false
}

// leaderChain searches breadth-first from h for a broker with at least two
// leaderships fewer, following "u leads a partition that v is a replica
// of" edges, and shifts one leadership along the path found.
func (p *planner) leaderChain(h int32) bool {
	type edge struct {
		from int32
		part int // index in p.order
	}
	parent := map[int32]edge{h: {from: -1}}
	queue := []int32{h}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		for i, r := range p.tgt {
			if r[0] != u {
				continue
			}
			for _, v := range r[1:] {
				if _, seen := parent[v]; seen || !p.allowed(v) {
					continue
				}
				parent[v] = edge{from: u, part: i}
				if p.leaders[v] <= p.leaders[h]-2 {
					for at := v; at != h; {
						e := parent[at]
						p.setLeader(p.tgt[e.part], at)
						at = e.from
					}
					p.leaders[h]--
					p.leaders[v]++
					return true
				}
				queue = append(queue, v)
			}
		}
	}
	return false
}
