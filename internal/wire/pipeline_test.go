package wire

import (
	"context"
	"encoding/binary"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// pipeServer serves Produce (acks=-1: a Deferred whose wait returns when
// the test opens the request's gate, or when the connection's context
// ends; any other acks: answered at once) and Metadata. It logs the order
// in which requests are handled, by correlation id.
type pipeServer struct {
	addr  string
	srv   *Server
	mu    sync.Mutex
	order []int32
	gates map[int32]chan struct{}
	// waited counts the waits that have returned; atMetadata is its
	// value when Metadata was handled.
	waited     atomic.Int32
	atMetadata atomic.Int32
	// logged gets each line the server logs.
	logged chan string
}

type lineWriter chan string

func (w lineWriter) Write(p []byte) (int, error) {
	select {
	case w <- string(p):
	default:
	}
	return len(p), nil
}

func newPipeServer(t *testing.T) *pipeServer {
	t.Helper()
	ps := &pipeServer{gates: map[int32]chan struct{}{}, logged: make(chan string, 16)}
	ps.atMetadata.Store(-1)
	r := NewRegistry()
	r.Register(0, 3, 12, func(ctx context.Context, req *Request) (kmsg.Response, error) {
		pr := req.Body.(*kmsg.ProduceRequest)
		corr := req.Header.CorrelationID
		ps.mu.Lock()
		ps.order = append(ps.order, corr)
		gate := make(chan struct{})
		ps.gates[corr] = gate
		ps.mu.Unlock()
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		if pr.Acks != -1 {
			return resp, nil
		}
		return Defer(resp, func() {
			select {
			case <-gate:
			case <-ctx.Done():
			}
			ps.waited.Add(1)
		}), nil
	})
	r.Register(3, 0, 12, func(_ context.Context, req *Request) (kmsg.Response, error) {
		ps.mu.Lock()
		ps.order = append(ps.order, req.Header.CorrelationID)
		ps.mu.Unlock()
		ps.atMetadata.Store(ps.waited.Load())
		return req.Body.ResponseKind(), nil
	})
	cfg := DefaultConfig()
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Output: lineWriter(ps.logged)})
	ps.srv, ps.addr = serveTest(t, cfg, r)
	return ps
}

func (ps *pipeServer) handled() []int32 {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return append([]int32(nil), ps.order...)
}

func (ps *pipeServer) open(corr int32) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	close(ps.gates[corr])
}

// waitHandled waits until n requests have been handled.
func (ps *pipeServer) waitHandled(t *testing.T, n int) []int32 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got := ps.handled(); len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("handled %v, want %d requests", ps.handled(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// send writes a request frame with correlation id corr and no client id.
func (c *testConn) send(req kmsg.Request, v int16, corr int32) {
	c.t.Helper()
	req.SetVersion(v)
	w := binary.BigEndian.AppendUint16(nil, uint16(req.Key()))
	w = binary.BigEndian.AppendUint16(w, uint16(v))
	w = binary.BigEndian.AppendUint32(w, uint32(corr))
	w = binary.BigEndian.AppendUint16(w, 0xffff)
	if req.IsFlexible() {
		w = append(w, 0)
	}
	if err := c.frame(req.AppendTo(w)); err != nil {
		c.t.Fatal(err)
	}
}

// recvCorrelation reads a response frame and returns its correlation id.
func (c *testConn) recvCorrelation() int32 {
	c.t.Helper()
	b, err := c.readFrame()
	if err != nil {
		c.t.Fatal(err)
	}
	return int32(binary.BigEndian.Uint32(b))
}

func produceAcks(acks int16) *kmsg.ProduceRequest {
	pr := kmsg.NewPtrProduceRequest()
	pr.Acks, pr.TimeoutMillis = acks, 30_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "t"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = []byte("records")
	rt.Partitions = append(rt.Partitions, rp)
	pr.Topics = append(pr.Topics, rt)
	return pr
}

// TestPipelinedProduce: while an acks=all Produce waits, the connection
// reads and handles the Produce requests after it; the responses leave
// in request order whatever order the waits end in; a request of another
// API is handled only once every response before it has been written.
func TestPipelinedProduce(t *testing.T) {
	ps := newPipeServer(t)
	c := dialTest(t, ps.addr)
	c.send(produceAcks(-1), 9, 1)
	c.send(produceAcks(-1), 9, 2)
	c.send(produceAcks(1), 9, 3)
	c.send(kmsg.NewPtrMetadataRequest(), 12, 4)

	// 2 and 3 are handled while 1 still waits.
	if got := ps.waitHandled(t, 3); got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Fatalf("handled %v, want 1, 2, 3 first", got)
	}
	ps.open(2) // the second wait ends first: its answer still follows 1's
	ps.open(1)
	for want := int32(1); want <= 4; want++ {
		if got := c.recvCorrelation(); got != want {
			t.Fatalf("response %d arrived in place of %d", got, want)
		}
	}
	if got := ps.handled(); len(got) != 4 || got[3] != 4 {
		t.Fatalf("handled %v", got)
	}
	if n := ps.atMetadata.Load(); n != 2 {
		t.Fatalf("Metadata handled with %d of the 2 Produce waits over, want after both", n)
	}
}

// TestPipelinedProduceClosed: a client that goes away while responses
// wait ends them (the connection's context) and the connection's
// goroutines; the server closes.
func TestPipelinedProduceClosed(t *testing.T) {
	ps := newPipeServer(t)
	c := dialTest(t, ps.addr)
	for corr := int32(1); corr <= 3; corr++ {
		c.send(produceAcks(-1), 9, corr)
	}
	ps.waitHandled(t, 3)
	_ = c.nc.Close()
	deadline := time.Now().Add(10 * time.Second)
	for ps.waited.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 3 waits ended after the client left", ps.waited.Load())
		}
		time.Sleep(time.Millisecond)
	}
	closed := make(chan error, 1)
	go func() { closed <- ps.srv.Close() }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("server did not close")
	}
}

// TestPipelinedProduceBadFrame: a bad frame behind a waiting Produce
// closes the connection only once the Produce's answer is out, as when the
// connection read the frame only after answering.
func TestPipelinedProduceBadFrame(t *testing.T) {
	ps := newPipeServer(t)
	c := dialTest(t, ps.addr)
	c.send(produceAcks(-1), 9, 1)
	ps.waitHandled(t, 1)
	if _, err := c.nc.Write([]byte{0, 0, 0, 3}); err != nil { // a frame too short for a header
		t.Fatal(err)
	}
	for seen := false; !seen; {
		select {
		case line := <-ps.logged:
			seen = strings.Contains(line, "bad request frame size")
		case <-time.After(10 * time.Second):
			t.Fatal("the server never read the bad frame")
		}
	}
	ps.open(1)
	if got := c.recvCorrelation(); got != 1 {
		t.Fatalf("response %d, want 1", got)
	}
	if _, err := c.readFrame(); err == nil {
		t.Fatal("the connection stayed open after a bad frame")
	}
}
