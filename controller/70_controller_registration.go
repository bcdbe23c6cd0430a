package controller

// ControllerRegistration (key 70), v0, served by the active controller.
//
// A voter (or a server being added) publishes its Kafka listener: the
// listener named "CONTROLLER" (else the first one) is written as a
// RegisterController record unless the image already holds it. Only servers
// in the Raft configuration may register (VOTER_NOT_FOUND otherwise), so a
// removed controller cannot come back into the image. IncarnationID,
// ZkMigrationReady and Features are ignored. See quorum.go.

import (
	"context"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/internal/wire"
)

func (c *Controller) handleControllerRegistration(_ context.Context, ls *leaderState, req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.ControllerRegistrationRequest)
	resp := r.ResponseKind().(*kmsg.ControllerRegistrationResponse)
	fail := func(err error) kmsg.Response {
		resp.ErrorCode, resp.ErrorMessage = kafkaError(err)
		return resp
	}
	if len(r.Listeners) == 0 {
		return fail(errf(kerr.InvalidRequest, "controller %d registered no listener", r.ControllerID))
	}
	l := r.Listeners[0]
	for _, x := range r.Listeners {
		if strings.EqualFold(x.Name, listenerNameController) {
			l = x
		}
	}
	if l.Host == "" || l.Port == 0 {
		return fail(errf(kerr.InvalidRequest, "controller %d: listener %q has no host or port", r.ControllerID, l.Name))
	}
	conf, _, err := c.raftConfiguration()
	if err != nil {
		return fail(err)
	}
	member := false
	for _, s := range conf.Servers {
		member = member || s.ID == raftServerID(r.ControllerID)
	}
	if !member {
		return fail(errf(kerr.VoterNotFound, "controller %d is not in the quorum's configuration", r.ControllerID))
	}
	want := image.Controller{ID: r.ControllerID, Host: l.Host, Port: int32(l.Port)}

	c.decideMu.Lock()
	defer c.decideMu.Unlock()
	if ls.ctx.Err() != nil {
		return fail(errf(kerr.NotController, "leadership lost"))
	}
	if cur, ok := c.fsm.current().Controllers[want.ID]; ok && cur == want {
		return resp
	}
	if _, err := c.propose(ls, []record{{Type: typeRegisterController, RegisterController: &registerControllerRecord{
		ID: want.ID, Host: want.Host, Port: want.Port}}}); err != nil {
		return fail(err)
	}
	c.quorum.setHint(want.ID, "")
	c.log.Info("controller listener registered", "controller", want.ID, "host", want.Host, "port", want.Port)
	return resp
}
