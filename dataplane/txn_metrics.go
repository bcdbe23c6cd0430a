package dataplane

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/skein-io/skein/dataplane/txn"
)

// The transaction coordinator's series.
var (
	descTxns = desc("transactions",
		"Transactional ids coordinated by this broker, by the state of their transaction.", "state")
	descTxnsCompleted = desc("transactions_completed_total",
		"Transactions completed on this broker (every marker written), by result (commit, abort).", "result")
	descTxnsTimedOut = desc("transactions_timed_out_total",
		"Transactions this broker aborted because they outlived transaction.timeout.ms.")
	descTxnStatePartitions = desc("transaction_state_partitions",
		"__transaction_state partitions this broker leads (coordinates).")
	descMarkersWritten = desc("transaction_markers_written_total",
		"Transaction markers this broker's coordinator had written (one per partition of an ended transaction).")
	descMarkersPending = desc("transaction_markers_pending",
		"Ended transactions whose markers are not all written yet.")
)

// txnCollector collects the transaction coordinator's state.
type txnCollector struct {
	txns    *txn.Coordinator
	markers *txn.Sender
}

func (c *txnCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTxns, descTxnsCompleted, descTxnsTimedOut, descTxnStatePartitions,
		descMarkersWritten, descMarkersPending} {
		ch <- d
	}
}

func (c *txnCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.txns.Stats()
	for _, s := range txn.AllStates {
		ch <- gauge(descTxns, float64(st.ByState[s]), s.String())
	}
	ch <- counter(descTxnsCompleted, float64(st.Committed), "commit")
	ch <- counter(descTxnsCompleted, float64(st.Aborted), "abort")
	ch <- counter(descTxnsTimedOut, float64(st.TimedOut))
	ch <- gauge(descTxnStatePartitions, float64(st.Partitions))
	ch <- counter(descMarkersWritten, float64(c.markers.MarkersWritten()))
	ch <- gauge(descMarkersPending, float64(c.markers.Pending()))
}
