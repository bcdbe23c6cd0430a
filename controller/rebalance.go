package controller

import (
	"time"
)

// runLeaderBalance is the active controller's periodic leadership check,
// for as long as the term lasts: every LeaderImbalanceCheckInterval it
// elects leaders for offline partitions that can get one (a late unclean
// election, say) and, when AutoLeaderRebalanceEnable is set, moves
// leadership back to preferred replicas (rebalanceDecision).
func (c *Controller) runLeaderBalance(ls *leaderState) {
	t := time.NewTicker(c.cfg.LeaderImbalanceCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ls.ctx.Done():
			return
		case <-t.C:
			c.balanceLeaders(ls)
		}
	}
}

// balanceLeaders makes one check: one entry for offline partitions, one for
// the rebalance.
func (c *Controller) balanceLeaders(ls *leaderState) {
	c.decideMu.Lock()
	defer c.decideMu.Unlock()
	c.electOfflineLocked(ls, "periodic check")
	if !c.cfg.AutoLeaderRebalanceEnable || ls.ctx.Err() != nil {
		return
	}
	img := c.fsm.current()
	recs := rebalanceDecision(img, ls.live(img, -1), c.cfg.LeaderImbalancePerBrokerPercentage)
	if len(recs) == 0 {
		return
	}
	if _, err := c.propose(ls, recs); err != nil {
		if ls.ctx.Err() == nil {
			c.log.Warn("leader rebalance failed", "partitions", len(recs), "error", err)
		}
		return
	}
	c.log.Info("leaders rebalanced to preferred replicas", "partitions", len(recs),
		"imbalance_percentage_max", c.cfg.LeaderImbalancePerBrokerPercentage)
	c.logElections(img, recs)
}

// electOfflineLocked elects a leader for every offline partition that can
// get one now (electLeaderless), in one entry; why says what prompted the
// check. The caller holds decideMu.
func (c *Controller) electOfflineLocked(ls *leaderState, why string) {
	if ls.ctx.Err() != nil {
		return
	}
	img := c.fsm.current()
	recs := electLeaderless(img, ls.live(img, -1))
	if len(recs) == 0 {
		return
	}
	if _, err := c.propose(ls, recs); err != nil {
		if ls.ctx.Err() == nil {
			c.log.Warn("election of offline partitions failed", "reason", why, "partitions", len(recs), "error", err)
		}
		return
	}
	c.log.Info("offline partitions elected", "reason", why, "partitions", len(recs))
	c.logElections(img, recs)
}
