package wire

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/internal/security"
)

// TestFileResponseOverTCP serves a Fetch whose record data comes from a file
// (sendfile) at a non-flexible and a flexible version, with several
// partitions, and checks that a client decodes exactly the file's bytes.
func TestFileResponseOverTCP(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seg.log")
	data := make([]byte, 300_000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	large := []FileRange{{f, 0, 100}, {f, 1000, 200_000}, {f, 250_000, 50_000}}
	small := []FileRange{{f, 0, 100}, {f, 1000, 2_000}, {f, 250_000, 5_000}}
	// Large ranges go out with sendfile on a plain connection, streamed
	// through user space on a TLS one; small ones copied in one write.
	for _, c := range []struct {
		name   string
		tls    bool
		ranges []FileRange
		path   *atomic.Uint64
	}{
		{"sendfile", false, large, &responsesSendfile},
		{"copied", false, small, &responsesCopied},
		{"tls-streamed", true, large, &responsesStreamed},
		{"tls-copied", true, small, &responsesCopied},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := c.path.Load()
			var serverTLS, clientTLS *tls.Config
			if c.tls {
				serverTLS, clientTLS = testTLS(t)
			}
			testFileResponseOverTCP(t, data, c.ranges, serverTLS, clientTLS)
			// Four responses (one per version) took the expected path.
			if got := c.path.Load() - before; got < 4 {
				t.Fatalf("%d responses took the %s path, want 4", got, c.name)
			}
		})
	}
}

// testTLS is a server configuration with a certificate for 127.0.0.1 and
// a client configuration trusting its CA.
func testTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	ca, err := security.NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	issued, err := ca.Issue(security.CertRequest{Subject: pkix.Name{CommonName: "broker"}, Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(issued.CertPEM, issued.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

func testFileResponseOverTCP(t *testing.T, data []byte, ranges []FileRange, serverTLS, clientTLS *tls.Config) {
	r := NewRegistry()
	r.Register(1, 4, 16, func(_ context.Context, req *Request) (kmsg.Response, error) {
		resp := req.Body.ResponseKind().(*kmsg.FetchResponse)
		fr := NewFileResponse(resp)
		topic := kmsg.NewFetchResponseTopic()
		topic.Topic = "t"
		for i, rg := range ranges {
			p := kmsg.NewFetchResponseTopicPartition()
			p.Partition = int32(i)
			p.RecordBatches = fr.Add(rg)
			topic.Partitions = append(topic.Partitions, p)
			empty := kmsg.NewFetchResponseTopicPartition()
			empty.Partition = int32(100 + i)
			empty.RecordBatches = []byte{}
			topic.Partitions = append(topic.Partitions, empty)
		}
		resp.Topics = append(resp.Topics, topic)
		return fr, nil
	})
	cfg := DefaultConfig()
	if serverTLS != nil {
		cfg.Protocol, cfg.TLS = security.SSL, serverTLS
	}
	_, addr := serveTest(t, cfg, r)
	var conn net.Conn
	var err error
	if clientTLS != nil {
		conn, err = tls.Dial("tcp", addr, clientTLS)
	} else {
		conn, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))

	for _, v := range []int16{4, 11, 12, 16} {
		req := kmsg.NewPtrFetchRequest()
		req.SetVersion(v)
		frame := appendRequestFrame(nil, req, int32(v), "test")
		frame = append(binary.BigEndian.AppendUint32(nil, uint32(len(frame))), frame...)
		if _, err := conn.Write(frame); err != nil {
			t.Fatal(err)
		}
		var size [4]byte
		if _, err := io.ReadFull(conn, size[:]); err != nil {
			t.Fatal(err)
		}
		body := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(conn, body); err != nil {
			t.Fatal(err)
		}
		if cid := int32(binary.BigEndian.Uint32(body)); cid != int32(v) {
			t.Fatalf("v%d: correlation id %d", v, cid)
		}
		body = body[4:]
		if v >= 12 {
			body = body[1:] // empty header tags
		}
		resp := kmsg.NewPtrFetchResponse()
		resp.SetVersion(v)
		if err := resp.ReadFrom(body); err != nil {
			t.Fatalf("v%d: decode: %v", v, err)
		}
		parts := resp.Topics[0].Partitions
		if len(parts) != 2*len(ranges) {
			t.Fatalf("v%d: %d partitions", v, len(parts))
		}
		for i, rg := range ranges {
			if got, want := parts[2*i].RecordBatches, data[rg.Pos:rg.Pos+rg.Size]; !bytes.Equal(got, want) {
				t.Fatalf("v%d partition %d: %d bytes differ from the file's %d", v, i, len(got), len(want))
			}
			if got := parts[2*i+1].RecordBatches; got == nil || len(got) != 0 {
				t.Fatalf("v%d: empty partition decoded as %v", v, got)
			}
		}
	}
}
