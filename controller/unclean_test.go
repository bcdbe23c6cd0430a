package controller

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/client"
	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/internal/wire"
)

// startClientPrev is startClient for a broker restarting with
// previousEpoch from its clean-shutdown marker (-1: none).
func startClientPrev(t *testing.T, ctl *Controller, brokerID int32, previousEpoch int64) *client.Client {
	t.Helper()
	return startClientConfig(t, client.Config{
		Controllers: []string{ctl.Addr()}, NodeID: brokerID, PreviousBrokerEpoch: previousEpoch,
	})
}

// TestUncleanRegistration is the scenario at the controller: RF 2,
// min.insync.replicas=2, ISR {1,2}. Broker 2 shuts down cleanly (ISR {1},
// ELR {2}); broker 1 then restarts without a clean shutdown: its
// registration takes it out of the ISR in the same entry, and it is not
// elected although it is the only live replica. Broker 2 returns cleanly
// (its marker's epoch) and is elected from the ELR.
func TestUncleanRegistration(t *testing.T) {
	ctl := startController(t, testConfig(t, t.TempDir()))
	cl1 := startClient(t, ctl, 1)
	cl2 := startClient(t, ctl, 2)
	both := func(img *image.Image) bool {
		b1, b2 := img.Brokers[1], img.Brokers[2]
		return b1 != nil && !b1.Fenced && b2 != nil && !b2.Fenced
	}
	waitClient(t, cl1, "brokers unfenced", both)
	forward[*kmsg.CreateTopicsResponse](t, cl1, createTopic("t", 1, 2, "min.insync.replicas", "2"))
	part := func(img *image.Image) *image.Partition { return img.Partition("t", 0) }
	waitImage(t, ctl, "topic", func(img *image.Image) bool { return part(img) != nil })

	// Broker 2 shuts down cleanly, remembering its epoch.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl2.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	epoch2 := cl2.BrokerEpoch()
	_ = cl2.Close()
	img := waitImage(t, ctl, "ISR {1} ELR {2}", func(img *image.Image) bool {
		p := part(img)
		return p.Leader == 1 && slices.Equal(p.ISR, []int32{1}) && slices.Equal(p.ELR, []int32{2})
	})

	// Broker 1 crashes and restarts without a clean-shutdown marker.
	_ = cl1.Close()
	cl1 = startClientPrev(t, ctl, 1, -1)
	img = ctl.fsm.current()
	if p := part(img); p.Leader != -1 || len(p.ISR) != 0 || !slices.Equal(p.ELR, []int32{2}) {
		t.Fatalf("after broker 1's unclean registration: %+v", p)
	}
	waitImage(t, ctl, "broker 1 unfenced", func(img *image.Image) bool { return !img.Brokers[1].Fenced })
	ctl.decideMu.Lock()
	ctl.electOfflineLocked(ctl.active.Load(), "test")
	ctl.decideMu.Unlock()
	if p := part(ctl.fsm.current()); p.Leader != -1 {
		t.Fatalf("broker 1 elected after an unclean restart: %+v", p)
	}

	// Broker 2 returns cleanly: elected from the ELR; 1 may follow.
	cl2 = startClientPrev(t, ctl, 2, epoch2)
	img = waitImage(t, ctl, "broker 2 leads", func(img *image.Image) bool { return part(img).Leader == 2 })
	if p := part(img); !slices.Equal(p.ISR, []int32{2}) || len(p.ELR) != 0 {
		t.Fatalf("after broker 2's clean return: %+v", p)
	}

	// A process re-registering with the epoch it has (it lost its session)
	// is a clean restart: fenced, it moves from the ISR to the ELR, and is
	// not dropped from it. (The client is closed first so that it does not
	// re-register itself after this registration replaces its epoch.)
	epoch2 = cl2.BrokerEpoch()
	_ = cl2.Close()
	req := kmsg.NewPtrBrokerRegistrationRequest()
	req.SetVersion(4)
	req.BrokerID, req.PreviousBrokerEpoch = 2, epoch2
	l := kmsg.NewBrokerRegistrationRequestListener()
	l.Name, l.Host, l.Port = "PLAINTEXT", "127.0.0.1", 9092
	req.Listeners = append(req.Listeners, l)
	resp := ctl.handleBrokerRegistration(ctx, ctl.active.Load(), &wire.Request{Body: req}).(*kmsg.BrokerRegistrationResponse)
	if resp.ErrorCode != 0 || resp.BrokerEpoch <= epoch2 {
		t.Fatalf("re-registration: %+v", resp)
	}
	if p := part(ctl.fsm.current()); p.Leader != -1 || len(p.ISR) != 0 || !slices.Equal(p.ELR, []int32{2}) {
		t.Fatalf("after broker 2's clean re-registration: %+v", p)
	}
}
