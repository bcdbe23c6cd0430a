package partition

// hwInput is what the leader's high watermark rule looks at.
type hwInput struct {
	// Current is the high watermark now; the rule never moves it back.
	Current int64
	// LocalID and LocalLEO are the leader itself and its log end offset.
	LocalID  int32
	LocalLEO int64
	// CommittedISR is the ISR the controller committed (the image's, or an
	// AlterPartition answer adopted since); min.insync.replicas is checked
	// against it.
	CommittedISR []int32
	// MaximalISR is the ISR the minimum log end is taken over: the
	// committed one while no change is pending, the committed one plus the
	// newcomer of a pending expansion, the committed (larger) one during a
	// pending shrink (isr.go).
	MaximalISR []int32
	// FollowerLEO is each follower's log end offset as its last fetch
	// reported it; a follower absent from it has not reported (counts 0).
	FollowerLEO map[int32]int64
	// MinInsyncReplicas is the topic's min.insync.replicas.
	MinInsyncReplicas int
}

// highWatermark is the leader's whole high watermark rule, a pure
// function. It returns the new high watermark and whether it advanced:
//   - strict min-ISR (KIP-966): while the committed ISR is smaller than
//     min.insync.replicas the high watermark does not move;
//   - otherwise the candidate is the minimum log end offset over the
//     maximal ISR (the leader's own, and each follower's last report);
//   - the high watermark only moves forward: a candidate at or below the
//     current one leaves it where it is.
func highWatermark(in hwInput) (hw int64, advanced bool) {
	if len(in.CommittedISR) < in.MinInsyncReplicas {
		return in.Current, false
	}
	candidate := in.LocalLEO
	for _, r := range in.MaximalISR {
		if r == in.LocalID {
			continue
		}
		candidate = min(candidate, in.FollowerLEO[r])
	}
	if candidate <= in.Current {
		return in.Current, false
	}
	return candidate, true
}
