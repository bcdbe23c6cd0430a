package metrics

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Namespace is the prefix of every Skein metric name.
const Namespace = "skein"

// NodeLabel is the label every series of a node carries: its node id. A
// process running several nodes (`skein dev`) serves them all on one
// endpoint, told apart by it.
const NodeLabel = "node_id"

// NewRegistry returns a registry holding the Go runtime and process
// collectors (go_*, process_*): one per process, whatever nodes it runs.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// ForNode returns a Registerer that adds node_id=id to every series
// registered through it (nil for a nil reg).
func ForNode(reg prometheus.Registerer, id int32) prometheus.Registerer {
	if reg == nil {
		return nil
	}
	return prometheus.WrapRegistererWith(prometheus.Labels{NodeLabel: strconv.Itoa(int(id))}, reg)
}

// Registrations registers a node's collectors and unregisters them all at
// once when the node closes, so a node can be started again in the same
// process (tests, `skein dev`) on the same registry.
type Registrations struct {
	reg prometheus.Registerer

	mu   sync.Mutex
	done []prometheus.Collector
}

// NewRegistrations registers into reg; with nil, registering does nothing
// (the node still counts, nobody reads it).
func NewRegistrations(reg prometheus.Registerer) *Registrations {
	return &Registrations{reg: reg}
}

// Register registers every collector, or none: on an error the ones
// registered by this call are unregistered again.
func (r *Registrations) Register(cs ...prometheus.Collector) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reg == nil {
		return nil
	}
	for i, c := range cs {
		if err := r.reg.Register(c); err != nil {
			for _, prev := range cs[:i] {
				r.reg.Unregister(prev)
			}
			return err
		}
	}
	r.done = append(r.done, cs...)
	return nil
}

// UnregisterAll unregisters everything registered so far. Idempotent.
func (r *Registrations) UnregisterAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reg == nil {
		return
	}
	for _, c := range r.done {
		r.reg.Unregister(c)
	}
	r.done = nil
}
