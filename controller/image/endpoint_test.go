package image

import "testing"

func TestBrokerEndpoint(t *testing.T) {
	named := &Broker{ID: 1, Host: "h", Port: 9092, Listeners: []Endpoint{
		{Name: "INTERNAL", Host: "h", Port: 9092}, {Name: "EXTERNAL", Host: "127.0.0.1", Port: 19092}}}
	older := &Broker{ID: 2, Host: "o", Port: 9093} // registered before named listeners
	cases := []struct {
		b        *Broker
		listener string
		host     string
		port     int32
		ok       bool
	}{
		{named, "INTERNAL", "h", 9092, true},
		{named, "EXTERNAL", "127.0.0.1", 19092, true},
		{named, "external", "127.0.0.1", 19092, true},
		{named, "PLAINTEXT", "", 0, false},
		{named, "", "h", 9092, true},
		{older, "PLAINTEXT", "o", 9093, true},
		{older, "plaintext", "o", 9093, true},
		{older, "INTERNAL", "", 0, false},
		{older, "", "o", 9093, true},
	}
	for _, c := range cases {
		host, port, ok := c.b.Endpoint(c.listener)
		if ok != c.ok || ok && (host != c.host || port != c.port) {
			t.Errorf("broker %d listener %q: %s:%d %v, want %s:%d %v", c.b.ID, c.listener, host, port, ok, c.host, c.port, c.ok)
		}
	}
}

func TestCloneCopiesListeners(t *testing.T) {
	img := New()
	img.Brokers[1] = &Broker{ID: 1, Listeners: []Endpoint{{Name: "A", Host: "h", Port: 1}}}
	c := img.Clone()
	c.Brokers[1].Listeners[0].Host = "changed"
	if img.Brokers[1].Listeners[0].Host != "h" {
		t.Fatal("Clone shares the listeners slice")
	}
}
