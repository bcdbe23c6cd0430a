package controller

// BrokerRegistration (key 62), v0-v4.
//
// Every registration is a new RegisterBroker record; the broker's epoch is
// the Raft index of that entry (as in KRaft), returned as BrokerEpoch. The
// broker starts fenced and is unfenced by a heartbeat showing it applied
// metadata up to its registration. A registration replaces the previous one
// of the same id whatever its incarnation (a restarted broker need not wait
// out its old session). Every listener of the request is kept, by name
// (Kafka's advertised.listeners): a client is given the brokers' addresses
// on the listener it connected through; the first listener's address is
// also the record's Host and Port (what older readers of the log use).
//
// Clean or unclean restart (KIP-966, v3+): PreviousBrokerEpoch is the epoch
// the broker had when it last shut down cleanly (from its clean-shutdown
// marker), or, for a process re-registering after losing its session, the
// epoch it has; -1 (and v0-v2) when it cannot tell. A registration whose
// PreviousBrokerEpoch is -1 or not the epoch of the broker's current
// registration is an unclean restart: the broker may have lost records
// that were only in its page cache, so the same entry takes it out of every
// ISR and every ELR and moves its leaderships (uncleanRestartDecision); it
// becomes eligible again only by rejoining an ISR through its leader's
// AlterPartition once caught up. A clean re-registration of an unfenced
// broker fences it in the same entry (fenceDecision: it leaves ISRs, and
// joins the ELR where that leaves the ISR below min.insync.replicas).
//
// Errors: INCONSISTENT_CLUSTER_ID when the request names another cluster;
// INVALID_REQUEST for a negative id, no listener, a listener without name,
// host or port, or two listeners of the same name.

import (
	"context"
	"net"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/internal/wire"
)

func (c *Controller) handleBrokerRegistration(_ context.Context, ls *leaderState, req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.BrokerRegistrationRequest)
	resp := r.ResponseKind().(*kmsg.BrokerRegistrationResponse)
	resp.BrokerEpoch = -1

	c.decideMu.Lock()
	defer c.decideMu.Unlock()
	img := c.fsm.current()
	reg, err := registrationRecord(img.ClusterID, r)
	if err != nil {
		resp.ErrorCode, _ = kafkaError(err)
		c.log.Warn("broker registration rejected", "broker", r.BrokerID, "error", err)
		return resp
	}
	recs := []record{{Type: typeRegisterBroker, RegisterBroker: reg}}
	old := img.Brokers[reg.ID]
	replaced := int64(-1)
	if old != nil {
		replaced = old.Epoch
	}
	previous := r.PreviousBrokerEpoch
	if r.Version < 3 {
		previous = -1 // not sent: no proof of a clean shutdown
	}
	clean := old != nil && previous != -1 && previous == old.Epoch
	switch {
	case !clean:
		recs = append(recs, uncleanRestartDecision(img, reg.ID, ls.live(img, reg.ID))...)
	case !old.Fenced:
		recs = append(recs, fenceDecision(img, reg.ID, ls.live(img, reg.ID))...)
	}
	index, err := c.propose(ls, recs)
	if err != nil {
		resp.ErrorCode, _ = kafkaError(err)
		c.log.Warn("broker registration failed", "broker", reg.ID, "error", err)
		return resp
	}
	ls.setShuttingDown(reg.ID, false)
	ls.touch(reg.ID, c.now())
	ls.wake()
	resp.BrokerEpoch = int64(index)
	if !clean && old != nil {
		c.log.Warn("broker registered after an unclean shutdown: removed from every ISR and ELR until it catches up",
			"broker", reg.ID, "epoch", index, "previous_broker_epoch", previous, "replaces_epoch", replaced,
			"incarnation", reg.Incarnation, "partition_changes", len(recs)-1)
	} else {
		c.log.Info("broker registered", "broker", reg.ID, "epoch", index, "incarnation", reg.Incarnation,
			"listeners", endpointsString(reg.Listeners), "rack", reg.Rack, "replaces_epoch", replaced,
			"previous_broker_epoch", previous, "clean", clean)
	}
	c.logElections(img, recs)
	return resp
}

func registrationRecord(clusterID string, r *kmsg.BrokerRegistrationRequest) (*registerBrokerRecord, error) {
	if r.ClusterID != "" && clusterID != "" && r.ClusterID != clusterID {
		return nil, errf(kerr.InconsistentClusterID, "broker is for cluster %q, this is cluster %q", r.ClusterID, clusterID)
	}
	if r.BrokerID < 0 {
		return nil, errf(kerr.InvalidRequest, "broker id %d is negative", r.BrokerID)
	}
	if len(r.Listeners) == 0 {
		return nil, errf(kerr.InvalidRequest, "broker %d gave no listener", r.BrokerID)
	}
	seen := map[string]bool{}
	for _, l := range r.Listeners {
		name := strings.ToUpper(l.Name)
		switch {
		case name == "":
			return nil, errf(kerr.InvalidRequest, "broker %d gave a listener without a name", r.BrokerID)
		case l.Host == "" || l.Port == 0:
			return nil, errf(kerr.InvalidRequest, "broker %d gave listener %s without a host and port", r.BrokerID, l.Name)
		case seen[name]:
			return nil, errf(kerr.InvalidRequest, "broker %d gave listener %s twice", r.BrokerID, l.Name)
		}
		seen[name] = true
	}
	l := r.Listeners[0]
	rec := &registerBrokerRecord{
		ID:          r.BrokerID,
		Incarnation: uuid.UUID(r.IncarnationID).String(),
		Host:        l.Host,
		Port:        int32(l.Port),
	}
	for _, l := range r.Listeners {
		rec.Listeners = append(rec.Listeners, image.Endpoint{Name: strings.ToUpper(l.Name), Host: l.Host, Port: int32(l.Port)})
	}
	if r.Rack != nil {
		rec.Rack = *r.Rack
	}
	return rec, nil
}

// endpointsString is NAME://host:port,... for logs.
func endpointsString(ls []image.Endpoint) string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = l.Name + "://" + net.JoinHostPort(l.Host, strconv.Itoa(int(l.Port)))
	}
	return strings.Join(parts, ",")
}
