package kafka

// AlterConfigs (API key 33), versions 0-2: the legacy, non-incremental form.
// A resource's listed configs replace its whole set of dynamic configs: each
// listed key is set (a null value removes it), every dynamic config not
// listed is removed, back to its default.
//
//   - Translated into ONE IncrementalAlterConfigs (44) for the controller:
//     SET for each listed key with a value, DELETE for each listed key with
//     a null value and for each key the resource has in this broker's
//     metadata image but the request does not list. The controller then
//     validates and applies it exactly as for key 44 (INVALID_CONFIG,
//     UNKNOWN_TOPIC_OR_PARTITION, INVALID_REQUEST for broker names that are
//     not a registered broker's id and other resource types; each resource
//     all or nothing), and the broker
//     waits for its own image as for key 44.
//   - Race: the set of keys to delete comes from this broker's image, read
//     before forwarding. A config that another request sets meanwhile (or
//     that the controller applied but this broker has not seen yet) is not
//     deleted. Kafka's legacy AlterConfigs is last-writer-wins as well; a
//     client that needs a clean slate in a race retries.
//   - A key named twice in a resource, or a resource named twice in the
//     request -> INVALID_REQUEST for it (as Kafka does).
//   - Controller unreachable: REQUEST_TIMED_OUT / NOT_CONTROLLER per
//     resource.

import (
	"context"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/controller/metalog"
	"github.com/skein-io/skein/internal/wire"
)

func (h *Handlers) handleAlterConfigs(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.AlterConfigsRequest)
	out := kmsg.NewPtrAlterConfigsResponse()
	out.SetVersion(r.Version)
	out.Resources = make([]kmsg.AlterConfigsResponseResource, len(r.Resources))

	type resource struct {
		typ  kmsg.ConfigResourceType
		name string
	}
	count := map[resource]int{}
	for _, rr := range r.Resources {
		count[resource{rr.ResourceType, rr.ResourceName}]++
	}

	img := h.image()
	inc := kmsg.NewPtrIncrementalAlterConfigsRequest()
	inc.ValidateOnly = r.ValidateOnly
	var pos []int // out index of each resource in inc
	for i := range r.Resources {
		rr := &r.Resources[i]
		rs := &out.Resources[i]
		*rs = kmsg.NewAlterConfigsResponseResource()
		rs.ResourceType, rs.ResourceName = rr.ResourceType, rr.ResourceName
		if count[resource{rr.ResourceType, rr.ResourceName}] > 1 {
			rs.ErrorCode = kerr.InvalidRequest.Code
			rs.ErrorMessage = stringPtr(fmt.Sprintf("resource %s %q is named more than once", rr.ResourceType, rr.ResourceName))
			continue
		}
		ir, err := incrementalFromLegacy(img, rr)
		if err != nil {
			rs.ErrorCode = kerr.InvalidRequest.Code
			rs.ErrorMessage = stringPtr(err.Error())
			continue
		}
		inc.Resources = append(inc.Resources, ir)
		pos = append(pos, i)
	}
	if len(inc.Resources) == 0 {
		return out, nil
	}

	ar, err := h.forwardIncrementalAlterConfigs(ctx, inc)
	if err != nil {
		h.dataLog().Warn("alter configs: forwarding to the controller failed", "error", err)
		for _, i := range pos {
			out.Resources[i].ErrorCode = forwardErrorCode(err)
			out.Resources[i].ErrorMessage = stringPtr(err.Error())
		}
		return out, nil
	}
	// Each resource is answered by type and name: they are unique here.
	answered := map[resource]*kmsg.IncrementalAlterConfigsResponseResource{}
	for j := range ar.Resources {
		a := &ar.Resources[j]
		answered[resource{a.ResourceType, a.ResourceName}] = a
	}
	for _, i := range pos {
		rs := &out.Resources[i]
		a := answered[resource{rs.ResourceType, rs.ResourceName}]
		if a == nil {
			rs.ErrorCode = kerr.UnknownServerError.Code
			rs.ErrorMessage = stringPtr("the controller did not answer for this resource")
			continue
		}
		rs.ErrorCode, rs.ErrorMessage = a.ErrorCode, a.ErrorMessage
	}
	if r.ValidateOnly {
		return out, nil
	}
	h.waitConfigChanges(ctx, "alter configs", appliedConfigChanges(inc, ar))
	return out, nil
}

// incrementalFromLegacy turns one AlterConfigs resource into the
// IncrementalAlterConfigs resource that makes the resource's dynamic configs
// exactly the listed ones, given the configs it has in img (a broker id's
// resource: that broker's own configs, image.BrokerOverrides). Resources the
// image holds no configs for (unknown topics, names that are not broker
// ids, other types) get only the listed operations: the controller answers
// for them.
func incrementalFromLegacy(img *image.Image, rr *kmsg.AlterConfigsRequestResource) (kmsg.IncrementalAlterConfigsRequestResource, error) {
	ir := kmsg.NewIncrementalAlterConfigsRequestResource()
	ir.ResourceType, ir.ResourceName = rr.ResourceType, rr.ResourceName
	listed := make(map[string]bool, len(rr.Configs))
	for _, c := range rr.Configs {
		if listed[c.Name] {
			return ir, fmt.Errorf("config %s is named twice", c.Name)
		}
		listed[c.Name] = true
		ic := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		ic.Name, ic.Value = c.Name, c.Value
		ic.Op = kmsg.IncrementalAlterConfigOpSet
		if c.Value == nil {
			ic.Op = kmsg.IncrementalAlterConfigOpDelete
		}
		ir.Configs = append(ir.Configs, ic)
	}
	var current map[string]string
	switch {
	case rr.ResourceType == kmsg.ConfigResourceTypeTopic:
		if t := img.Topics[rr.ResourceName]; t != nil {
			current = t.Configs
		}
	case rr.ResourceType == kmsg.ConfigResourceTypeBroker && rr.ResourceName == "":
		current = img.BrokerConfigs
	case rr.ResourceType == kmsg.ConfigResourceTypeBroker:
		if id, err := metalog.BrokerResourceID(rr.ResourceName); err == nil {
			current = img.BrokerOverrides[id]
		}
	}
	var drop []string
	for k := range current {
		if !listed[k] {
			drop = append(drop, k)
		}
	}
	sort.Strings(drop) // a deterministic request
	for _, k := range drop {
		ic := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		ic.Name, ic.Op = k, kmsg.IncrementalAlterConfigOpDelete
		ir.Configs = append(ir.Configs, ic)
	}
	return ir, nil
}
