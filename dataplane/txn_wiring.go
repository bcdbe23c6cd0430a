package dataplane

// The broker's side of the transaction coordinator: the connections it
// sends WriteTxnMarkers (and KIP-890 verifications) over, one kgo client
// per destination broker, dialled on the inter-broker listener.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/dataplane/partition"
	"github.com/skein-io/skein/dataplane/txn"
	"github.com/skein-io/skein/internal/security"
	"github.com/skein-io/skein/storage"
)

// interBrokerClients are kgo clients to the other brokers (and this one),
// each seeded with one broker's inter-broker endpoint; a request goes to
// that seed alone.
type interBrokerClients struct {
	listener string
	image    func() *image.Image
	// dial connects over TLS when the inter-broker listener speaks it
	// (nil: plain TCP), as the replica fetchers do.
	dial security.Dialer
	// opts log in when the inter-broker listener is SASL_* (saslOpts).
	opts []kgo.Opt

	mu      sync.Mutex
	clients map[int32]*brokerClient
	closed  bool
}

type brokerClient struct {
	addr string
	cl   *kgo.Client
}

var errNoBroker = errors.New("broker not in the metadata or without the inter-broker listener")

// request sends req to broker id.
func (c *interBrokerClients) request(ctx context.Context, id int32, req kmsg.Request) (kmsg.Response, error) {
	cl, err := c.client(id)
	if err != nil {
		return nil, err
	}
	seeds := cl.SeedBrokers()
	if len(seeds) == 0 {
		return nil, errNoBroker
	}
	return seeds[0].Request(ctx, req)
}

func (c *interBrokerClients) client(id int32) (*kgo.Client, error) {
	b := c.image().Brokers[id]
	if b == nil {
		return nil, errNoBroker
	}
	host, port, ok := b.Endpoint(c.listener)
	if !ok {
		return nil, errNoBroker
	}
	addr := net.JoinHostPort(host, strconv.Itoa(int(port)))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("closed")
	}
	if c.clients == nil {
		c.clients = map[int32]*brokerClient{}
	}
	if bc := c.clients[id]; bc != nil {
		if bc.addr == addr {
			return bc.cl, nil
		}
		bc.cl.Close()
		delete(c.clients, id)
	}
	opts := []kgo.Opt{kgo.SeedBrokers(addr), kgo.ClientID(fmt.Sprintf("skein-broker-%d-txn", id))}
	if c.dial != nil {
		opts = append(opts, kgo.Dialer(c.dial))
	}
	opts = append(opts, c.opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	c.clients[id] = &brokerClient{addr: addr, cl: cl}
	return cl, nil
}

func (c *interBrokerClients) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for _, bc := range c.clients {
		bc.cl.Close()
	}
	c.clients = nil
}

// markerLeader is the txn.SenderConfig.Leader of an image source.
func markerLeader(img func() *image.Image) func(tp txn.TopicPartition) (int32, bool) {
	return func(tp txn.TopicPartition) (int32, bool) {
		t := img().Topics[tp.Topic]
		if t == nil {
			return -1, false
		}
		p := t.Partitions[tp.Partition]
		if p == nil {
			return -1, false
		}
		return p.Leader, true
	}
}

// sendMarkers is the txn.SenderConfig.Send over the clients.
func (c *interBrokerClients) sendMarkers(ctx context.Context, broker int32, req *kmsg.WriteTxnMarkersRequest) (*kmsg.WriteTxnMarkersResponse, error) {
	resp, err := c.request(ctx, broker, req)
	if err != nil {
		return nil, err
	}
	out, ok := resp.(*kmsg.WriteTxnMarkersResponse)
	if !ok {
		return nil, fmt.Errorf("unexpected response %T", resp)
	}
	return out, nil
}

// verifyTxn is the partitions' KIP-890 hook: the coordinator of
// transactionalID (this broker, or another asked with AddPartitionsToTxn
// v4 VerifyOnly) says whether the partition is in the producer's ongoing
// transaction. Coordinator trouble (moving, loading, unreachable) is
// answered NOT_ENOUGH_REPLICAS, which producers retry, as Kafka does.
func (b *Broker) verifyTxn(ctx context.Context, transactionalID, topic string, part int32, producerID int64, epoch int16) error {
	if transactionalID == "" {
		return partition.ErrInvalidTxnState
	}
	img := b.partitions.Image()
	t := img.Topics[txn.StateTopic]
	if t == nil || len(t.Partitions) == 0 {
		return partition.ErrNotEnoughReplicas
	}
	sp := t.Partitions[txn.PartitionFor(transactionalID, int32(len(t.Partitions)))]
	if sp == nil || sp.Leader < 0 {
		return partition.ErrNotEnoughReplicas
	}
	tp := txn.TopicPartition{Topic: topic, Partition: part}
	var code int16
	if sp.Leader == b.cfg.NodeID {
		code = b.txns.AddPartitions(ctx, transactionalID, producerID, epoch, []txn.TopicPartition{tp}, true)[0]
	} else {
		req := kmsg.NewPtrAddPartitionsToTxnRequest()
		tr := kmsg.NewAddPartitionsToTxnRequestTransaction()
		tr.TransactionalID, tr.ProducerID, tr.ProducerEpoch, tr.VerifyOnly = transactionalID, producerID, epoch, true
		rt := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
		rt.Topic, rt.Partitions = topic, []int32{part}
		tr.Topics = append(tr.Topics, rt)
		req.Transactions = append(req.Transactions, tr)
		rctx, cancel := context.WithTimeout(ctx, verifyTimeout)
		defer cancel()
		resp, err := b.peers.request(rctx, sp.Leader, req)
		if err != nil {
			return partition.ErrNotEnoughReplicas
		}
		code = verifyAnswer(resp.(*kmsg.AddPartitionsToTxnResponse), transactionalID, tp)
	}
	if code != 0 {
		b.log.Debug("transactional produce not verified", "transactional_id", transactionalID, "topic", topic,
			"partition", part, "producer_id", producerID, "producer_epoch", epoch, "error", kerr.ErrorForCode(code))
	}
	switch code {
	case 0:
		return nil
	case kerr.ProducerFenced.Code, kerr.InvalidProducerEpoch.Code:
		return storage.ErrInvalidProducerEpoch
	case kerr.InvalidTxnState.Code, kerr.InvalidProducerIDMapping.Code, kerr.TransactionalIDAuthorizationFailed.Code:
		return partition.ErrInvalidTxnState
	default:
		return partition.ErrNotEnoughReplicas
	}
}

// verifyTimeout bounds a verification round trip to another broker.
const verifyTimeout = 5 * time.Second

// verifyAnswer is the code of tp in a v4 AddPartitionsToTxn answer.
func verifyAnswer(resp *kmsg.AddPartitionsToTxnResponse, id string, tp txn.TopicPartition) int16 {
	if resp.ErrorCode != 0 {
		return resp.ErrorCode
	}
	for _, t := range resp.Transactions {
		if t.TransactionalID != id {
			continue
		}
		for _, rt := range t.Topics {
			if rt.Topic != tp.Topic {
				continue
			}
			for _, p := range rt.Partitions {
				if p.Partition == tp.Partition {
					return p.ErrorCode
				}
			}
		}
	}
	return kerr.UnknownServerError.Code
}
