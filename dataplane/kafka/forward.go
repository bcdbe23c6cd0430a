package kafka

// Helpers shared by the admin handlers (19_, 20_, 37_, 44_) and Metadata's
// auto-creation: forwarding a request to the active controller, and waiting,
// bounded, until this broker's image reflects what the controller did so a
// client's next Metadata request sees the change.

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
)

const (
	// forwardTimeoutDefault bounds a forwarded admin request whose own
	// timeout is zero (Kafka: "do not wait for completion"); the request is
	// still delivered, only the wait for the local image is skipped.
	forwardTimeoutDefault = 30 * time.Second
	// adminWaitMax bounds the wait for the local image after an admin
	// request that carries no timeout of its own (IncrementalAlterConfigs).
	adminWaitMax = 5 * time.Second
	// autoCreateWait bounds Metadata's (and Produce's) auto-creation:
	// forwarding the CreateTopics and waiting for leaders. A topic not ready
	// by then is answered LEADER_NOT_AVAILABLE and clients retry.
	autoCreateWait = 5 * time.Second
)

// image is the metadata image requests are served from: the one the
// partition manager last applied (empty before the first).
func (h *Handlers) image() *image.Image {
	if h.Partitions == nil {
		return image.New()
	}
	return h.Partitions.Image()
}

// errUnexpectedResponse is a controller answer of the wrong type: a bug on
// one side. forwardErrorCode maps it to NOT_CONTROLLER, so clients retry.
var errUnexpectedResponse = errors.New("unexpected response type from the controller")

// forward sends an admin request to the active controller. The answer is at
// the version the controller client negotiated; callers set it back to their
// client's version.
func (h *Handlers) forward(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	if h.Controller == nil {
		return nil, errNoController
	}
	return h.Controller.Forward(ctx, req)
}

// forwardErrorCode is the per-resource code when the controller could not
// be reached: REQUEST_TIMED_OUT when the request's time ran out,
// NOT_CONTROLLER otherwise. Both are retriable.
func forwardErrorCode(err error) int16 {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return kerr.RequestTimedOut.Code
	}
	return kerr.NotController.Code
}

// adminContext bounds a forwarded admin request by its timeout (or
// forwardTimeoutDefault when it has none) and says whether the caller should
// wait for the local image afterwards (Kafka: timeout 0 answers without
// waiting for completion).
func adminContext(ctx context.Context, timeoutMillis int32) (context.Context, context.CancelFunc, bool) {
	if timeoutMillis <= 0 {
		c, cancel := context.WithTimeout(ctx, forwardTimeoutDefault)
		return c, cancel, false
	}
	c, cancel := context.WithTimeout(ctx, time.Duration(timeoutMillis)*time.Millisecond)
	return c, cancel, true
}

// waitImage returns an image for which cond holds, waiting for the
// controller client to apply one until ctx ends. ok is false when ctx ended
// first; the image returned then is the latest one.
//
// The wait is on the client's image; the answer uses the image the wait
// returned, which may be newer than the partition manager's for a moment.
func (h *Handlers) waitImage(ctx context.Context, cond func(*image.Image) bool) (img *image.Image, ok bool) {
	img = h.image()
	if cond(img) {
		return img, true
	}
	if h.Controller == nil {
		return img, false
	}
	got, err := h.Controller.WaitFor(ctx, cond)
	if err != nil || got == nil {
		return h.image(), false
	}
	return got, true
}

// topicReady says every partition of t has a leader.
func topicReady(t *image.Topic) bool {
	if t == nil || len(t.Partitions) == 0 {
		return false
	}
	for _, p := range t.Partitions {
		if p == nil || p.Leader < 0 {
			return false
		}
	}
	return true
}

// partitionSettled says a partition has a leader, or cannot get one now
// because none of its replicas is a live broker (then waiting is futile).
func partitionSettled(img *image.Image, p *image.Partition) bool {
	if p == nil {
		return false
	}
	if p.Leader >= 0 {
		return true
	}
	for _, r := range p.Replicas {
		if b := img.Brokers[r]; b != nil && !b.Fenced {
			return false
		}
	}
	return true
}

// topicSettled says t exists with at least n partitions, each settled.
func topicSettled(img *image.Image, t *image.Topic, n int) bool {
	if t == nil || len(t.Partitions) < n {
		return false
	}
	for _, p := range t.Partitions {
		if !partitionSettled(img, p) {
			return false
		}
	}
	return true
}

// maxTopicNameLength is Kafka's limit (249: room for a partition suffix in a
// 255-byte file name).
const maxTopicNameLength = 249

// validTopicName applies Kafka's topic name rules: 1-249 characters of
// [a-zA-Z0-9._-], and neither "." nor "..".
func validTopicName(name string) bool {
	if name == "" || len(name) > maxTopicNameLength || name == "." || name == ".." {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// internalTopic says a topic is one of the cluster's own (__consumer_offsets,
// __transaction_state, ...): Kafka flags those IsInternal.
func internalTopic(name string) bool {
	return len(name) >= 2 && name[0] == '_' && name[1] == '_'
}

// stringPtr returns a pointer for an optional (nullable) string field.
func stringPtr(s string) *string { return &s }
