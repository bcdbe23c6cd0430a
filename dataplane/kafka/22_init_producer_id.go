package kafka

// InitProducerId (API key 22), versions 0-5, for idempotent producers.
//
//   - Without a TransactionalID: a fresh producer id with epoch 0, taken from
//     a block the controller allocates (AllocateProducerIDs; a new block is
//     requested when this one is used up, one request at a time).
//   - v3+ with ProducerID/ProducerEpoch set (KIP-360, a producer recovering
//     from UNKNOWN_PRODUCER_ID / OUT_OF_ORDER_SEQUENCE_NUMBER): the same id
//     with epoch+1, or a fresh id when the epoch would overflow. (Kafka hands
//     an idempotent producer a fresh id either way; both are valid answers.)
//     The sequence state itself lives in each partition's log (storage), so
//     it survives restarts; a new epoch restarts sequences at 0.
//   - With a TransactionalID: the transaction coordinator (dataplane/txn)
//     answers: a producer id allocated here on the id's first use, then a
//     new epoch at each call that fences the previous instance (its
//     ongoing transaction is aborted first: CONCURRENT_TRANSACTIONS until
//     done); NOT_COORDINATOR when this broker is not the id's coordinator;
//     INVALID_TRANSACTION_TIMEOUT above transaction.max.timeout.ms.
//     PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v4 (KIP-588).
//   - Controller unreachable: COORDINATOR_NOT_AVAILABLE (retriable).

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/internal/wire"
)

// producerIDAllocator hands out producer ids from controller-allocated
// blocks. Its zero value is ready; mu is held across a block request so only
// one is in flight.
type producerIDAllocator struct {
	mu    sync.Mutex
	next  int64
	left  int64
	fetch func(ctx context.Context) (first int64, count int32, err error) // tests set it
}

var errNoController = errors.New("no controller client")

func (a *producerIDAllocator) allocate(ctx context.Context, fetch func(context.Context) (int64, int32, error)) (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.left <= 0 {
		if a.fetch != nil {
			fetch = a.fetch
		}
		if fetch == nil {
			return -1, errNoController
		}
		first, count, err := fetch(ctx)
		if err != nil {
			return -1, err
		}
		if first < 0 || count <= 0 {
			return -1, errors.New("controller returned an empty producer id block")
		}
		a.next, a.left = first, int64(count)
	}
	id := a.next
	a.next++
	a.left--
	return id, nil
}

func (h *Handlers) handleInitProducerID(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.InitProducerIDRequest)
	resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if r.TransactionalID != nil && *r.TransactionalID != "" {
		if h.Txns == nil {
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
			return resp, nil
		}
		pid, epoch, code := h.Txns.InitProducerID(ctx, *r.TransactionalID,
			time.Duration(r.TransactionTimeoutMillis)*time.Millisecond, r.ProducerID, r.ProducerEpoch, h.allocateProducerID)
		if code == kerr.ProducerFenced.Code && r.Version < 4 {
			code = kerr.InvalidProducerEpoch.Code
		}
		resp.ProducerID, resp.ProducerEpoch, resp.ErrorCode = pid, epoch, code
		return resp, nil
	}
	if r.ProducerID >= 0 && r.ProducerEpoch >= 0 && r.ProducerEpoch < math.MaxInt16-1 {
		resp.ProducerID, resp.ProducerEpoch = r.ProducerID, r.ProducerEpoch+1
		return resp, nil
	}
	id, err := h.allocateProducerID(ctx)
	if err != nil {
		h.dataLog().Warn("cannot allocate a producer id", "error", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp, nil
}

// allocateProducerID takes a fresh producer id from the current block.
func (h *Handlers) allocateProducerID(ctx context.Context) (int64, error) {
	var fetch func(context.Context) (int64, int32, error)
	if h.Controller != nil {
		fetch = h.Controller.AllocateProducerIDs
	}
	return h.producerIDs.allocate(ctx, fetch)
}
