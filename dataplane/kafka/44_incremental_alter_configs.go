package kafka

// IncrementalAlterConfigs (API key 44), versions 0-1.
//
//   - Forwarded to the active controller, which validates each key and value
//     (INVALID_CONFIG, UNKNOWN_TOPIC_OR_PARTITION, INVALID_REQUEST, ...) and
//     answers per resource once the change is in the metadata log.
//   - Then, unless ValidateOnly, the broker waits (at most adminWaitMax: the
//     request has no timeout) until its own image shows the SET and DELETE
//     operations of the successful TOPIC resources and of the cluster-wide
//     BROKER resource (name ""). APPEND and SUBTRACT are not waited for.
//   - Controller unreachable: REQUEST_TIMED_OUT / NOT_CONTROLLER per
//     resource.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/controller/metalog"
	"github.com/skein-io/skein/internal/wire"
)

func (h *Handlers) handleIncrementalAlterConfigs(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.IncrementalAlterConfigsRequest)
	version := r.Version
	ar, err := h.forwardIncrementalAlterConfigs(ctx, r)
	if err != nil {
		h.dataLog().Warn("incremental alter configs: forwarding to the controller failed", "error", err)
		out := kmsg.NewPtrIncrementalAlterConfigsResponse()
		out.SetVersion(version)
		for _, rr := range r.Resources {
			rs := kmsg.NewIncrementalAlterConfigsResponseResource()
			rs.ResourceType, rs.ResourceName = rr.ResourceType, rr.ResourceName
			rs.ErrorCode = forwardErrorCode(err)
			rs.ErrorMessage = stringPtr(err.Error())
			out.Resources = append(out.Resources, rs)
		}
		return out, nil
	}
	ar.SetVersion(version)
	if r.ValidateOnly {
		return ar, nil
	}
	h.waitConfigChanges(ctx, "incremental alter configs", appliedConfigChanges(r, ar))
	return ar, nil
}

// forwardIncrementalAlterConfigs sends r to the active controller.
func (h *Handlers) forwardIncrementalAlterConfigs(ctx context.Context, r *kmsg.IncrementalAlterConfigsRequest) (*kmsg.IncrementalAlterConfigsResponse, error) {
	fctx, cancel := context.WithTimeout(ctx, forwardTimeoutDefault)
	defer cancel()
	resp, err := h.forward(fctx, r)
	if err != nil {
		return nil, err
	}
	ar, ok := resp.(*kmsg.IncrementalAlterConfigsResponse)
	if !ok {
		return nil, errUnexpectedResponse
	}
	return ar, nil
}

// waitConfigChanges waits, bounded by adminWaitMax, until this broker's
// image shows every accepted change, so the client's next DescribeConfigs
// here sees them.
func (h *Handlers) waitConfigChanges(ctx context.Context, what string, changes []configChange) {
	if len(changes) == 0 {
		return
	}
	wctx, wcancel := context.WithTimeout(ctx, adminWaitMax)
	defer wcancel()
	if _, ok := h.waitImage(wctx, func(img *image.Image) bool {
		for _, c := range changes {
			if !c.visible(img) {
				return false
			}
		}
		return true
	}); !ok {
		h.dataLog().Warn(what+": applied, but not yet in this broker's metadata", "changes", len(changes))
	}
}

// configChange is one SET or DELETE the controller accepted, in a form the
// image can be checked against.
type configChange struct {
	topic  string // "" for the cluster-wide broker resource
	broker bool
	// brokerID is the broker of a per-broker config, -1 for the
	// cluster-wide default.
	brokerID int32
	key      string
	value    *string // nil: deleted
}

func (c configChange) visible(img *image.Image) bool {
	var m map[string]string
	switch {
	case c.broker && c.brokerID >= 0:
		m = img.BrokerOverrides[c.brokerID]
	case c.broker:
		m = img.BrokerConfigs
	default:
		t := img.Topics[c.topic]
		if t == nil {
			return true // deleted meanwhile: nothing left to wait for
		}
		m = t.Configs
	}
	v, ok := m[c.key]
	if c.value == nil {
		return !ok
	}
	return ok && v == *c.value
}

// appliedConfigChanges lists the SET and DELETE operations of the resources
// the controller accepted (matched by type and name).
func appliedConfigChanges(r *kmsg.IncrementalAlterConfigsRequest, resp *kmsg.IncrementalAlterConfigsResponse) []configChange {
	type resource struct {
		typ  kmsg.ConfigResourceType
		name string
	}
	ok := map[resource]bool{}
	for _, rs := range resp.Resources {
		if rs.ErrorCode == 0 {
			ok[resource{rs.ResourceType, rs.ResourceName}] = true
		}
	}
	var out []configChange
	for _, rr := range r.Resources {
		if !ok[resource{rr.ResourceType, rr.ResourceName}] {
			continue
		}
		c := configChange{brokerID: -1}
		switch {
		case rr.ResourceType == kmsg.ConfigResourceTypeTopic:
			c.topic = rr.ResourceName
		case rr.ResourceType == kmsg.ConfigResourceTypeBroker && rr.ResourceName == "":
			c.broker = true
		case rr.ResourceType == kmsg.ConfigResourceTypeBroker:
			id, err := metalog.BrokerResourceID(rr.ResourceName)
			if err != nil {
				continue
			}
			c.broker, c.brokerID = true, id
		default:
			continue
		}
		for _, cfg := range rr.Configs {
			c.key = cfg.Name
			switch cfg.Op {
			case kmsg.IncrementalAlterConfigOpSet:
				if cfg.Value == nil {
					continue
				}
				c.value = cfg.Value
			case kmsg.IncrementalAlterConfigOpDelete:
				c.value = nil
			default:
				continue
			}
			out = append(out, c)
		}
	}
	return out
}
