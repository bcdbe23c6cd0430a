package controller

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/client"
	"github.com/skein-io/skein/controller/image"
)

// TestBrokerRegistersEveryListener: a broker's listeners reach the image
// whole, by name and in order; the first is also Host and Port.
func TestBrokerRegistersEveryListener(t *testing.T) {
	ctl := startController(t, testConfig(t, t.TempDir()))
	want := []image.Endpoint{{Name: "INTERNAL", Host: "broker-1", Port: 9092}, {Name: "EXTERNAL", Host: "127.0.0.1", Port: 19092}}
	cl := startClientConfig(t, client.Config{Controllers: []string{ctl.Addr()}, NodeID: 101, Listeners: want})
	b := waitImage(t, ctl, "broker 101 registered", func(img *image.Image) bool { return img.Brokers[101] != nil }).Brokers[101]
	if !slices.Equal(b.Listeners, want) || b.Host != "broker-1" || b.Port != 9092 {
		t.Fatalf("registered %+v, want listeners %+v", b, want)
	}
	if !slices.Equal(cl.Image().Brokers[101].Listeners, want) {
		t.Fatalf("the broker's own image: %+v", cl.Image().Brokers[101])
	}
	// The image survives a snapshot (JSON) with its listeners.
	data, err := image.Marshal(ctl.fsm.current())
	if err != nil {
		t.Fatal(err)
	}
	img, err := image.Unmarshal(data)
	if err != nil || !slices.Equal(img.Brokers[101].Listeners, want) {
		t.Fatalf("after a snapshot: %+v %v", img.Brokers[101], err)
	}
}

func TestBrokerRegistrationListenerErrors(t *testing.T) {
	listener := func(name, host string, port uint16) kmsg.BrokerRegistrationRequestListener {
		l := kmsg.NewBrokerRegistrationRequestListener()
		l.Name, l.Host, l.Port = name, host, port
		return l
	}
	ok := listener("INTERNAL", "h", 9092)
	for _, ls := range [][]kmsg.BrokerRegistrationRequestListener{
		nil,
		{listener("", "h", 9092)},
		{ok, listener("EXTERNAL", "", 9092)},
		{ok, listener("EXTERNAL", "h", 0)},
		{ok, listener("internal", "h2", 9093)},
	} {
		req := kmsg.NewPtrBrokerRegistrationRequest()
		req.BrokerID, req.Listeners = 101, ls
		if _, err := registrationRecord("c", req); err == nil {
			t.Errorf("listeners %+v accepted", ls)
		} else if code, _ := kafkaError(err); code != kerr.InvalidRequest.Code {
			t.Errorf("listeners %+v: %v, want INVALID_REQUEST", ls, err)
		}
	}
	req := kmsg.NewPtrBrokerRegistrationRequest()
	req.BrokerID, req.Listeners = 101, []kmsg.BrokerRegistrationRequestListener{listener("internal", "h", 9092), listener("External", "e", 19092)}
	rec, err := registrationRecord("c", req)
	if err != nil {
		t.Fatal(err)
	}
	want := []image.Endpoint{{Name: "INTERNAL", Host: "h", Port: 9092}, {Name: "EXTERNAL", Host: "e", Port: 19092}}
	if !slices.Equal(rec.Listeners, want) || rec.Host != "h" || rec.Port != 9092 {
		t.Fatalf("record %+v, want listeners %+v (names in upper case)", rec, want)
	}
}
