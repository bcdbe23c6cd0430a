package wire

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/internal/security"
	"github.com/skein-io/skein/internal/security/sasl"
)

// saslServer serves Metadata (answering with the request's principal as
// the cluster id) on a listener of protocol p; user alice, password
// alice-secret, has a SCRAM-SHA-512 credential.
func saslServer(t *testing.T, p security.Protocol, maxReauth time.Duration) string {
	t.Helper()
	cred, err := sasl.NewCredential(sasl.ScramSHA512, "alice-secret", sasl.NewSalt(), sasl.MinIterations)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sasl.NewServer(sasl.Mechanisms, func(user string, m sasl.Mechanism) (sasl.Credential, bool) {
		return cred, user == "alice" && m == sasl.ScramSHA512
	})
	if err != nil {
		t.Fatal(err)
	}
	r := NewRegistry()
	r.Register(3, 0, 12, func(_ context.Context, req *Request) (kmsg.Response, error) {
		resp := req.Body.ResponseKind().(*kmsg.MetadataResponse)
		resp.ClusterID = kmsg.StringPtr(req.Principal)
		return resp, nil
	})
	cfg := DefaultConfig()
	cfg.Protocol, cfg.SASL, cfg.MaxReauth = p, srv, maxReauth
	_, addr := serveTest(t, cfg, r)
	return addr
}

// serveTest serves r with cfg on a loopback port until the test ends.
func serveTest(t *testing.T, cfg Config, r *Registry) (*Server, string) {
	t.Helper()
	s, err := NewServer(cfg, r)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Serve(ln)
	t.Cleanup(func() { _ = s.Close() })
	return s, ln.Addr().String()
}

type testConn struct {
	t    *testing.T
	nc   net.Conn
	br   *bufio.Reader
	corr int32
}

func dialTest(t *testing.T, addr string) *testConn {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	return &testConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (c *testConn) frame(b []byte) error {
	_, err := c.nc.Write(binary.BigEndian.AppendUint32(nil, uint32(len(b))))
	if err == nil {
		_, err = c.nc.Write(b)
	}
	return err
}

func (c *testConn) readFrame() ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(c.br, size[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(size[:]))
	_, err := io.ReadFull(c.br, b)
	return b, err
}

func (c *testConn) do(req kmsg.Request, v int16) (kmsg.Response, error) {
	req.SetVersion(v)
	c.corr++
	w := binary.BigEndian.AppendUint16(nil, uint16(req.Key()))
	w = binary.BigEndian.AppendUint16(w, uint16(v))
	w = binary.BigEndian.AppendUint32(w, uint32(c.corr))
	w = binary.BigEndian.AppendUint16(w, 0xffff) // null client id
	if req.IsFlexible() {
		w = append(w, 0)
	}
	if err := c.frame(req.AppendTo(w)); err != nil {
		return nil, err
	}
	b, err := c.readFrame()
	if err != nil {
		return nil, err
	}
	resp := req.ResponseKind()
	resp.SetVersion(v)
	skip := 4
	if resp.IsFlexible() && req.Key() != 18 {
		skip = 5
	}
	return resp, resp.ReadFrom(b[skip:])
}

func (c *testConn) handshake(mech string, v int16) *kmsg.SASLHandshakeResponse {
	req := kmsg.NewPtrSASLHandshakeRequest()
	req.Mechanism = mech
	resp, err := c.do(req, v)
	if err != nil {
		c.t.Fatalf("handshake: %v", err)
	}
	return resp.(*kmsg.SASLHandshakeResponse)
}

func (c *testConn) authenticate(token string) *kmsg.SASLAuthenticateResponse {
	req := kmsg.NewPtrSASLAuthenticateRequest()
	req.SASLAuthBytes = []byte(token)
	resp, err := c.do(req, 1)
	if err != nil {
		c.t.Fatalf("authenticate: %v", err)
	}
	return resp.(*kmsg.SASLAuthenticateResponse)
}

func (c *testConn) principal() (string, error) {
	resp, err := c.do(kmsg.NewPtrMetadataRequest(), 12)
	if err != nil {
		return "", err
	}
	return *resp.(*kmsg.MetadataResponse).ClusterID, nil
}

func TestSASLState(t *testing.T) {
	plainAddr := saslServer(t, security.Plaintext, 0)
	addr := saslServer(t, security.SASLPlaintext, 0)

	// PLAINTEXT: SASL requests are out of place; requests run anonymous.
	c := dialTest(t, plainAddr)
	if r := c.handshake("PLAIN", 1); r.ErrorCode != kerr.IllegalSaslState.Code {
		t.Errorf("handshake on PLAINTEXT: %d", r.ErrorCode)
	}
	if p, err := c.principal(); err != nil || p != AnonymousPrincipal {
		t.Errorf("PLAINTEXT principal %q %v", p, err)
	}

	// Not enabled mechanism: refused with the list, then closed.
	c = dialTest(t, addr)
	if r := c.handshake("GSSAPI", 1); r.ErrorCode != kerr.UnsupportedSaslMechanism.Code || len(r.SupportedMechanisms) != 3 {
		t.Errorf("GSSAPI: %+v", r)
	}
	if _, err := c.principal(); err == nil {
		t.Error("connection open after an unsupported mechanism")
	}

	// SaslAuthenticate without a handshake.
	c = dialTest(t, addr)
	if r := c.authenticate("\x00alice\x00alice-secret"); r.ErrorCode != kerr.IllegalSaslState.Code {
		t.Errorf("authenticate without handshake: %d", r.ErrorCode)
	}

	// v1: PLAIN succeeds; the principal follows.
	c = dialTest(t, addr)
	c.handshake("PLAIN", 1)
	if r := c.authenticate("\x00alice\x00alice-secret"); r.ErrorCode != 0 || r.SessionLifetimeMillis != 0 {
		t.Fatalf("PLAIN: %+v", r)
	}
	if p, err := c.principal(); err != nil || p != "User:alice" {
		t.Errorf("principal %q %v", p, err)
	}

	// v0: raw tokens; a wrong password closes without an answer.
	c = dialTest(t, addr)
	c.handshake("PLAIN", 0)
	if err := c.frame([]byte("\x00alice\x00alice-secret")); err != nil {
		t.Fatal(err)
	}
	if b, err := c.readFrame(); err != nil || len(b) != 0 {
		t.Fatalf("raw PLAIN answer %q %v", b, err)
	}
	if p, err := c.principal(); err != nil || p != "User:alice" {
		t.Errorf("principal after v0 %q %v", p, err)
	}
	c = dialTest(t, addr)
	c.handshake("PLAIN", 0)
	_ = c.frame([]byte("\x00alice\x00wrong"))
	if b, err := c.readFrame(); err == nil {
		t.Errorf("raw PLAIN with a wrong password answered %q", b)
	}
}

func TestSASLReauthentication(t *testing.T) {
	addr := saslServer(t, security.SASLPlaintext, 300*time.Millisecond)
	login := func(c *testConn, user, pass string) *kmsg.SASLAuthenticateResponse {
		c.handshake("PLAIN", 1)
		return c.authenticate("\x00" + user + "\x00" + pass)
	}
	c := dialTest(t, addr)
	if r := login(c, "alice", "alice-secret"); r.SessionLifetimeMillis != 300 {
		t.Fatalf("session lifetime %d ms, want 300", r.SessionLifetimeMillis)
	}
	deadline := time.Now().Add(300 * time.Millisecond)
	// Re-authenticating renews the session; a request after the end of
	// a session that was not renewed closes the connection.
	for time.Now().Before(deadline.Add(500 * time.Millisecond)) {
		if r := login(c, "alice", "alice-secret"); r.ErrorCode != 0 {
			t.Fatalf("re-authentication: %d", r.ErrorCode)
		}
		if _, err := c.principal(); err != nil {
			t.Fatalf("request after re-authentication: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(350 * time.Millisecond) // past the session's end: the condition under test is time itself
	if _, err := c.principal(); err == nil {
		t.Error("a request after the session ended was served")
	}
}
