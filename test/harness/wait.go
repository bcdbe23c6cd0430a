package harness

import (
	"testing"
	"time"
)

// pollInterval is how often WaitFor re-evaluates its condition.
const pollInterval = 50 * time.Millisecond

// WaitFor polls cond until it returns true or timeout passes; on timeout it
// fails the test (t.Fatalf) with cond's last reason. cond returns whether
// the condition holds and, when it does not, why (for the failure message).
func WaitFor(t testing.TB, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	if err := Poll(timeout, cond); err != nil {
		t.Fatalf("%v", err)
	}
}

// Poll is WaitFor without a test: it returns an error carrying cond's last
// reason when timeout passes first.
func Poll(timeout time.Duration, cond func() (bool, string)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return &TimeoutError{After: timeout, Reason: why}
		}
		time.Sleep(pollInterval)
	}
}

// TimeoutError is returned by Poll when its condition did not hold in time.
type TimeoutError struct {
	After  time.Duration
	Reason string
}

func (e *TimeoutError) Error() string {
	return "condition not met after " + e.After.String() + ": " + e.Reason
}
