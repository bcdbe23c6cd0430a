package partition

// highWatermark is the leader's high watermark rule, a pure function: the
// minimum log end offset over the ISR, where the local replica reports
// localLEO and a follower reports what its last fetch said (absent: 0, not
// yet known). It returns ok=false when the ISR is smaller than
// minInsyncReplicas: then the high watermark must not move at all (strict
// min-ISR, KIP-966). The caller keeps the result only if it is larger than
// the current high watermark (it never moves back).
func highWatermark(localID int32, localLEO int64, isr []int32, followerLEO map[int32]int64, minInsyncReplicas int) (hw int64, ok bool) {
	if len(isr) < minInsyncReplicas {
		return 0, false
	}
	hw = localLEO
	for _, r := range isr {
		if r == localID {
			continue
		}
		hw = min(hw, followerLEO[r])
	}
	return hw, true
}
