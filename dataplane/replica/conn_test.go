package replica

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/internal/wire"
)

// fetchServer serves Fetch with answer, on loopback.
func fetchServer(t *testing.T, answer func(ctx context.Context, req *kmsg.FetchRequest) *kmsg.FetchResponse) string {
	t.Helper()
	reg := wire.NewRegistry()
	reg.Register(1, 4, 16, func(ctx context.Context, r *wire.Request) (kmsg.Response, error) {
		return answer(ctx, r.Body.(*kmsg.FetchRequest)), nil
	})
	srv, err := wire.NewServer(wire.DefaultConfig(), reg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Serve(ln)
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func fetchAnswer(req *kmsg.FetchRequest, data []byte) *kmsg.FetchResponse {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	for _, rt := range req.Topics {
		t := kmsg.NewFetchResponseTopic()
		t.Topic, t.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			p := kmsg.NewFetchResponseTopicPartition()
			p.Partition, p.HighWatermark, p.RecordBatches = rp.Partition, rp.FetchOffset, data
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}

func fetchRequest() *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	t := kmsg.NewFetchRequestTopic()
	t.Topic, t.TopicID = "t", [16]byte{1}
	p := kmsg.NewFetchRequestTopicPartition()
	p.FetchOffset = 42
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	return req
}

func TestConnRoundTripsReuseTheReadBuffer(t *testing.T) {
	small, big := bytes.Repeat([]byte{1}, 100), bytes.Repeat([]byte{2}, 300<<10)
	var n int
	addr := fetchServer(t, func(_ context.Context, req *kmsg.FetchRequest) *kmsg.FetchResponse {
		n++
		if n == 2 {
			return fetchAnswer(req, big)
		}
		return fetchAnswer(req, small)
	})
	c, err := dial(context.Background(), addr, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if v := c.versions[1]; v != 16 {
		t.Fatalf("negotiated Fetch v%d, want v16", v)
	}
	var bufs []*byte
	for i, want := range [][]byte{small, big, small, small} {
		resp := kmsg.NewPtrFetchResponse()
		if err := c.request(fetchRequest(), resp, true, time.Second); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		got := resp.Topics[0].Partitions[0]
		if !bytes.Equal(got.RecordBatches, want) || got.HighWatermark != 42 {
			t.Fatalf("request %d: %d bytes, hw %d", i, len(got.RecordBatches), got.HighWatermark)
		}
		bufs = append(bufs, &c.rbuf[:1][0])
	}
	// Grown once for the big answer, then reused.
	if bufs[1] != bufs[2] || bufs[2] != bufs[3] {
		t.Fatal("read buffer not reused")
	}
}

func TestConnRequestTimesOutAndContextEndUnblocks(t *testing.T) {
	release := make(chan struct{})
	addr := fetchServer(t, func(_ context.Context, req *kmsg.FetchRequest) *kmsg.FetchResponse {
		<-release
		return fetchAnswer(req, nil)
	})
	t.Cleanup(func() { close(release) }) // before the server's Close (cleanups run last first)

	c, err := dial(context.Background(), addr, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	err = c.request(fetchRequest(), kmsg.NewPtrFetchResponse(), true, 50*time.Millisecond)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("want a deadline error, got %v", err)
	}
	c.close()

	ctx, cancel := context.WithCancel(context.Background())
	c, err = dial(ctx, addr, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	done := make(chan error, 1)
	go func() { done <- c.request(fetchRequest(), kmsg.NewPtrFetchResponse(), true, time.Minute) }()
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("request succeeded after its context ended")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("request still blocked after its context ended")
	}
}

func TestConnSafeRequestKeepsUnsafeResponse(t *testing.T) {
	first, second := bytes.Repeat([]byte{1}, 1000), bytes.Repeat([]byte{2}, 1000)
	var n int
	addr := fetchServer(t, func(_ context.Context, req *kmsg.FetchRequest) *kmsg.FetchResponse {
		n++
		if n == 1 {
			return fetchAnswer(req, first)
		}
		return fetchAnswer(req, second)
	})
	c, err := dial(context.Background(), addr, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	held := kmsg.NewPtrFetchResponse()
	if err := c.request(fetchRequest(), held, true, time.Second); err != nil {
		t.Fatal(err)
	}
	// A request made while held is in use (as ListOffsets is while a fetch
	// is applied) must not reuse held's buffer.
	if err := c.request(fetchRequest(), kmsg.NewPtrFetchResponse(), false, time.Second); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(held.Topics[0].Partitions[0].RecordBatches, first) {
		t.Fatal("a safe request overwrote the unsafe response's buffer")
	}
}
