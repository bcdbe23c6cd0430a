package client

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

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
	silent := silentListener(t)

	reg := wire.NewRegistry()
	reg.Register(kmsg.BrokerHeartbeat.Int16(), 0, 1, func(_ context.Context, req *wire.Request) (kmsg.Response, error) {
		return req.Body.ResponseKind(), nil
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
		AdvertisedHost: "127.0.0.1", AdvertisedPort: 9092})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.kcl.Close)

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
