package kafka

// Stubs until each handler's own file lands; delete a stub when its file exists.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/dataplane/wire"
)

var errUnimplemented = errors.New("unimplemented")

func (h *Handlers) handleMetadata(context.Context, *wire.Request) (kmsg.Response, error) {
	return nil, errUnimplemented
}
func (h *Handlers) handleCreateTopics(context.Context, *wire.Request) (kmsg.Response, error) {
	return nil, errUnimplemented
}
func (h *Handlers) handleDeleteTopics(context.Context, *wire.Request) (kmsg.Response, error) {
	return nil, errUnimplemented
}
func (h *Handlers) handleDescribeConfigs(context.Context, *wire.Request) (kmsg.Response, error) {
	return nil, errUnimplemented
}
func (h *Handlers) handleCreatePartitions(context.Context, *wire.Request) (kmsg.Response, error) {
	return nil, errUnimplemented
}
func (h *Handlers) handleIncrementalAlterConfigs(context.Context, *wire.Request) (kmsg.Response, error) {
	return nil, errUnimplemented
}
func (h *Handlers) handleDescribeCluster(context.Context, *wire.Request) (kmsg.Response, error) {
	return nil, errUnimplemented
}
