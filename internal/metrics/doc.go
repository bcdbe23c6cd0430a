// Package metrics holds the Prometheus plumbing that the broker and the
// controller share: the process registry (with the Go runtime and process
// collectors), a per-node Registerer that labels every series with the
// node's id, and the request metrics of the Kafka listener (Requests, a
// wire.Observer).
//
// Conventions (Prometheus'): every name starts with "skein_", values are in
// base units (seconds, bytes), counters end in "_total", latencies are
// histograms. Label values come from bounded sets only: API names, Kafka
// error names, topic names, broker ids, group states; per-partition series
// are opt-in (the broker's MetricsPerPartition) except the consumer groups'
// committed offsets and lag, which Kafka's tooling reports per partition
// too.
//
// Cost: the request path touches only series resolved when the node
// started (Requests keeps one set per API key in a fixed array), so a
// request costs a few atomic adds and one clock read; gauges that need a
// scan of the node's state (partition counts, log sizes, lag) are computed
// when Prometheus scrapes, by prometheus.Collector implementations that read
// the state the node keeps anyway.
package metrics
