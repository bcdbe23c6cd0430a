package cli

import (
	"crypto/tls"
	"net"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/skein-io/skein/internal/security"
)

// TestDevTLSFiles: the files `skein dev --tls` writes let a client (from
// client.properties alone) connect to a listener serving the node
// certificate at 127.0.0.1 and at localhost, and refuse another server.
func TestDevTLSFiles(t *testing.T) {
	dir := t.TempDir()
	d, err := makeDevTLS(dir, "127.0.0.1", hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	props, err := security.LoadClientProperties(d.clientProperties)
	if err != nil {
		t.Fatal(err)
	}
	if props.Protocol != security.SSL || props.CALocation != d.caPath {
		t.Fatalf("client.properties: %+v", props)
	}
	clientCfg, err := props.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", d.material.ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			_ = c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	for _, host := range []string{"127.0.0.1", "localhost"} {
		cfg := clientCfg.Clone()
		cfg.ServerName = host
		c, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", port), cfg)
		if err != nil {
			t.Fatalf("as %s: %v", host, err)
		}
		_ = c.Close()
	}
	// A second start makes a new CA: the old client configuration no
	// longer trusts the new certificate (clients re-read ca.pem).
	d2, err := makeDevTLS(dir, "127.0.0.1", hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	ln2, err := tls.Listen("tcp", "127.0.0.1:0", d2.material.ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	go func() {
		c, err := ln2.Accept()
		if err == nil {
			_ = c.(*tls.Conn).Handshake()
			_ = c.Close()
		}
	}()
	cfg := clientCfg.Clone()
	cfg.ServerName = "127.0.0.1"
	if c, err := tls.Dial("tcp", ln2.Addr().String(), cfg); err == nil {
		_ = c.Close()
		t.Fatal("a client trusting the first CA accepted the second one's certificate")
	}
}
