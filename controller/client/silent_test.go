package client

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/metalog"
	"github.com/skein-io/skein/internal/wire"
)

// TestSendLeavesASilentController: a controller that stops answering
// without closing the connection (its host cut from the network: packets
// dropped, no reset) is left for the next one once a request to it ran
// out of time, so the next heartbeat reaches the controller that answers.
// Before, every request went back to the silent one until franz-go gave
// the connection up (its 10 s read timeout): the brokers' heartbeats
// failed for that long after the active controller's host was isolated,
// nearly the controllers' session timeout (found by TestComposeFaultsLong,
// fault ctrl-isolate).
func TestSendLeavesASilentController(t *testing.T) {
	c := silentThenLive(t, 0)

	// Heartbeats, each bounded as heartbeat() bounds them (shorter here).
	const attempts, each = 3, 700 * time.Millisecond
	for i := range attempts {
		ctx, cancel := context.WithTimeout(context.Background(), each)
		start := time.Now()
		_, err := c.send(ctx, kmsg.NewPtrBrokerHeartbeatRequest())
		cancel()
		if err == nil {
			t.Logf("heartbeat %d answered after %v", i+1, time.Since(start).Round(time.Millisecond))
			if i == 0 {
				t.Fatalf("the first heartbeat was answered: it should have gone to the silent controller")
			}
			return
		}
		t.Logf("heartbeat %d: %v", i+1, err)
	}
	t.Fatalf("%d heartbeats of %v each all failed: the client keeps asking the silent controller", attempts, each)
}

// TestMetadataPollLeavesASilentController: a metadata long poll that a
// controller does not answer within MetadataMaxWait and some slack is
// given up, and the next poll goes to the next controller. Before, the
// poll waited for franz-go to give the connection up (MaxWait plus its 10
// s read timeout): a broker whose poll sat on a controller that dropped
// off the network (a voter answers metadata polls from its own state)
// learned nothing for 15 s, also after the network healed, when a
// controller's address had changed (found by TestComposeFaultsLong, fault
// minority).
func TestMetadataPollLeavesASilentController(t *testing.T) {
	const maxWait = 100 * time.Millisecond
	c := silentThenLive(t, maxWait)
	type result struct {
		ups    int
		active *int32
		err    error
	}
	poll := func() result {
		done := make(chan result, 1)
		go func() {
			ups, active, _, err := c.fetchUpdates(0)
			done <- result{len(ups), active, err}
		}()
		limit := maxWait + metadataPollSlack + 2*time.Second
		select {
		case r := <-done:
			return r
		case <-time.After(limit):
			t.Fatalf("a metadata poll with MaxWait %v still waits after %v", maxWait, limit)
		}
		return result{}
	}
	if r := poll(); r.err == nil {
		t.Fatalf("the first poll, to the silent controller, was answered")
	} else {
		t.Logf("first poll: %v", r.err)
	}
	r := poll()
	if r.err != nil {
		t.Fatalf("the second poll: %v; want it answered by the next controller", r.err)
	}
	if r.active == nil || *r.active != 2 {
		t.Fatalf("the second poll names active controller %v, want 2", r.active)
	}
}

// silentThenLive returns a client of two controllers: the first accepts
// connections and never answers, the second answers BrokerHeartbeat
// (without error) and metadata polls (no records, active controller 2).
func silentThenLive(t *testing.T, maxWait time.Duration) *Client {
	t.Helper()
	silent := silentListener(t)
	reg := wire.NewRegistry()
	reg.Register(kmsg.BrokerHeartbeat.Int16(), 0, 1, func(_ context.Context, req *wire.Request) (kmsg.Response, error) {
		return req.Body.ResponseKind(), nil
	})
	reg.Register(kmsg.Fetch.Int16(), 4, 12, func(_ context.Context, req *wire.Request) (kmsg.Response, error) {
		resp := req.Body.ResponseKind().(*kmsg.FetchResponse)
		rt := kmsg.NewFetchResponseTopic()
		rt.Topic = metalog.Topic
		rp := kmsg.NewFetchResponseTopicPartition()
		rp.CurrentLeader.LeaderID, rp.CurrentLeader.LeaderEpoch = 2, 1
		rt.Partitions = append(rt.Partitions, rp)
		resp.Topics = append(resp.Topics, rt)
		return resp, nil
	})
	live, err := wire.NewServer(wire.DefaultConfig(), reg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	live.Serve(ln)
	t.Cleanup(func() { _ = live.Close() })

	c, err := New(Config{Controllers: []string{silent, ln.Addr().String()}, NodeID: 101,
		AdvertisedHost: "127.0.0.1", AdvertisedPort: 9092, MetadataMaxWait: maxWait})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// silentListener accepts connections and reads them, never answering.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(io.Discard, c) })
		}
	})
	return ln.Addr().String()
}
