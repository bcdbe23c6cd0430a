// Package wire is Skein's Kafka protocol edge: it accepts TCP connections,
// reads size-prefixed request frames, decodes them with franz-go's kmsg,
// dispatches them to the handler registered for the API key, and writes the
// encoded responses back in request order.
//
// Both the broker (dataplane) and the controller serve the Kafka protocol
// through this package; it depends on nothing of ours, so either may import
// it.
//
// Threading contract: each connection is served by one goroutine that reads a
// request, calls its handler, writes the response and only then reads the next
// request (Kafka "mutes" a connection the same way), so responses are always
// in request order and a handler may block (long-poll Fetch) without
// reordering anything. Handlers run concurrently across connections. The one
// exception is a Produce handler's Deferred response (pipeline.go): it waits
// for the ISR on the connection's writer goroutine while the next Produce
// requests are read and appended; responses still leave in request order.
//
// Bad input never panics the process: a frame larger than MaxRequestBytes, a
// frame that does not parse, or an unknown API key or version closes that
// connection only (as Kafka does), except ApiVersions at an unsupported
// version, which is answered with UNSUPPORTED_VERSION at v0 as KIP-511 asks.
// A handler panic is recovered, logged and closes only that connection.
package wire

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/internal/security"
	"github.com/skein-io/skein/internal/security/sasl"
)

// DefaultMaxRequestBytes mirrors Kafka's socket.request.max.bytes default.
const DefaultMaxRequestBytes = 100 << 20

// Header is the decoded Kafka request header (v1 or v2).
type Header struct {
	Key           int16
	Version       int16
	CorrelationID int32
	ClientID      string
}

// Request is one decoded request handed to a handler. Received is when its
// frame had been read whole, before it was decoded: request timeouts and
// latency metrics count from it.
type Request struct {
	Header   Header
	Body     kmsg.Request
	Conn     *Conn
	Received time.Time
	// Listener is the name of the listener the request came in on
	// (Config.Listener of the server that accepted the connection).
	Listener string
	// Principal is who the connection authenticated as (Kafka's
	// KafkaPrincipal, "User:alice"); AnonymousPrincipal when it did not.
	Principal string
}

// AnonymousPrincipal is the principal of a connection that has not
// authenticated (a PLAINTEXT or SSL listener without client certificates).
const AnonymousPrincipal = security.AnonymousPrincipal

// Host is the client's IP address as ACLs name hosts ("" when unknown).
func (r *Request) Host() string {
	if r.Conn == nil || r.Conn.Conn == nil {
		return ""
	}
	if a, ok := r.Conn.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, err := net.SplitHostPort(r.Conn.RemoteAddr().String())
	if err != nil {
		return ""
	}
	return host
}

// HandlerFunc serves one request. It returns the response to send, or a nil
// response to send nothing (Produce with acks=0). A non-nil error closes the
// connection; use it only where Kafka would close (protocol violations), and
// report every other failure as a Kafka error code inside the response.
type HandlerFunc func(ctx context.Context, req *Request) (kmsg.Response, error)

// API is one registered API key with the versions its handler implements.
type API struct {
	Key        int16
	MinVersion int16
	MaxVersion int16
	Handle     HandlerFunc
}

// Registry maps API keys to handlers. What is registered is exactly what
// ApiVersions advertises, so advertised and implemented versions never drift.
// Register everything before Serve; the registry is read-only afterwards.
type Registry struct {
	apis map[int16]API
}

// NewRegistry returns a registry with ApiVersions (key 18, v0-v4),
// SaslHandshake (17, v0-v1) and SaslAuthenticate (36, v0-v2) built in
// (sasl.go).
func NewRegistry() *Registry {
	r := &Registry{apis: make(map[int16]API)}
	r.Register(18, 0, 4, r.handleAPIVersions)
	r.Register(17, 0, 1, handleSASLHandshake)
	r.Register(36, 0, 2, handleSASLAuthenticate)
	return r
}

// Register adds (or replaces) the handler of an API key. It panics on a range
// that kmsg cannot encode: that is a programming error caught at start-up.
func (r *Registry) Register(key, minVersion, maxVersion int16, h HandlerFunc) {
	req := kmsg.RequestForKey(key)
	if req == nil || minVersion < 0 || minVersion > maxVersion || maxVersion > req.MaxVersion() {
		panic(fmt.Sprintf("wire: bad registration key=%d v%d-v%d", key, minVersion, maxVersion))
	}
	r.apis[key] = API{Key: key, MinVersion: minVersion, MaxVersion: maxVersion, Handle: h}
}

// Lookup returns the registration of a key.
func (r *Registry) Lookup(key int16) (API, bool) {
	a, ok := r.apis[key]
	return a, ok
}

// Versions lists the registered APIs sorted by key, as ApiVersions reports them.
func (r *Registry) Versions() []kmsg.ApiVersionsResponseApiKey {
	out := make([]kmsg.ApiVersionsResponseApiKey, 0, len(r.apis))
	for _, a := range r.apis {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = a.Key, a.MinVersion, a.MaxVersion
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ApiKey < out[j].ApiKey })
	return out
}

func (r *Registry) handleAPIVersions(_ context.Context, req *Request) (kmsg.Response, error) {
	resp := req.Body.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = r.Versions()
	return resp, nil
}

// Config configures a Server.
type Config struct {
	// Name is used in log lines ("broker", "controller").
	Name string
	// Listener names the listener this server serves (a broker's
	// "INTERNAL", "EXTERNAL", ...): handlers read it from
	// Request.Listener to answer with that listener's addresses. Optional.
	Listener string
	// Protocol is the listener's security protocol (PLAINTEXT when
	// empty).
	Protocol security.Protocol
	// SASL authenticates the connections of a SASL_* listener (required
	// there, unused elsewhere).
	SASL *sasl.Server
	// MaxReauth is connections.max.reauth.ms: an authenticated SASL
	// session lasts that long, and the client must re-authenticate before
	// its next request after it (KIP-368). 0: sessions never expire.
	MaxReauth time.Duration
	// TLS serves the listener over TLS (required when Protocol is SSL or
	// SASL_SSL, refused otherwise): each connection's handshake completes
	// before its first request is read, within HandshakeTimeout.
	TLS              *tls.Config
	HandshakeTimeout time.Duration
	// MaxRequestBytes bounds one request frame (socket.request.max.bytes).
	MaxRequestBytes int32
	// IdleTimeout closes connections idle that long (connections.max.idle.ms).
	IdleTimeout time.Duration
	// Observer, when set, is told about every request served (metrics).
	Observer Observer
	Logger   hclog.Logger
}

// Observer is told about each request served, for metrics. Served is
// called on the connection's goroutine once the response is written (for
// a request answered with nothing, Produce with acks=0, once its handler
// returned), with the time the request was read whole. It is on the
// request path: it must be cheap, must not block, and must not keep resp.
// A request that closes the connection is not reported.
type Observer interface {
	Served(h Header, resp kmsg.Response, received time.Time)
}

// DefaultConfig returns working values.
func DefaultConfig() Config {
	return Config{Name: "kafka", MaxRequestBytes: DefaultMaxRequestBytes, IdleTimeout: 10 * time.Minute,
		HandshakeTimeout: 10 * time.Second, Logger: hclog.NewNullLogger()}
}

// Validate checks the config.
func (c Config) Validate() error {
	if c.MaxRequestBytes < 1024 {
		return fmt.Errorf("wire: MaxRequestBytes %d is below 1024", c.MaxRequestBytes)
	}
	if c.Logger == nil {
		return errors.New("wire: Logger is nil")
	}
	if c.Protocol.SASL() && c.SASL == nil {
		return fmt.Errorf("wire: listener %s is %s but no SASL server is set", c.Listener, c.Protocol)
	}
	if c.MaxReauth < 0 {
		return fmt.Errorf("wire: MaxReauth %s is negative", c.MaxReauth)
	}
	if c.Protocol.TLS() != (c.TLS != nil) {
		return fmt.Errorf("wire: listener %s: protocol %s with TLS configured = %v", c.Listener, c.Protocol, c.TLS != nil)
	}
	return nil
}

// Server serves the Kafka protocol on one listener.
type Server struct {
	cfg      Config
	registry *Registry
	ln       net.Listener
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	mu struct {
		sync.Mutex
		conns  map[*Conn]struct{}
		closed bool
	}
}

// Conn is one client connection.
type Conn struct {
	// Conn is the connection requests are read from and answers written
	// to: a *tls.Conn on a TLS listener.
	net.Conn
	server *Server
	// auth is the connection's SASL state (sasl.go), its goroutine's own.
	auth connAuth
	// principal is who the connection authenticated as ("": anonymous).
	principal atomic.Pointer[string]
	// clientID is the last request's client id (its goroutine's own): the
	// next request's, the same, reuses the string.
	clientID string
}

// Principal is who the connection authenticated as (AnonymousPrincipal
// until it does).
func (c *Conn) Principal() string {
	if c == nil {
		return AnonymousPrincipal
	}
	if p := c.principal.Load(); p != nil {
		return *p
	}
	return AnonymousPrincipal
}

// SetPrincipal records who the connection authenticated as.
func (c *Conn) SetPrincipal(p string) { c.principal.Store(&p) }

// NewServer returns a server for the registry; call Serve with a listener.
func NewServer(cfg Config, registry *Registry) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, registry: registry}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.mu.conns = make(map[*Conn]struct{})
	return s, nil
}

// Serve accepts connections on ln until Close. It returns after starting the
// accept loop; it does not block.
func (s *Server) Serve(ln net.Listener) {
	s.ln = ln
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.acceptLoop()
	}()
}

// Addr is the listening address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops accepting, closes every connection and waits for their
// goroutines. It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return nil
	}
	s.mu.closed = true
	for c := range s.mu.conns {
		_ = c.Conn.Close()
	}
	s.mu.Unlock()
	s.cancel()
	if s.ln != nil {
		_ = s.ln.Close()
	}
	s.wg.Wait()
	return nil
}

func (s *Server) acceptLoop() {
	var delay time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary failure (EMFILE, ...): back off a little, bounded.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.cfg.Logger.Warn("accept failed", "listener", s.cfg.Name, "error", err, "retry_in", delay)
			select {
			case <-time.After(delay):
			case <-s.ctx.Done():
				return
			}
			continue
		}
		delay = 0
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		c := &Conn{Conn: nc, server: s}
		if s.cfg.TLS != nil {
			c.Conn = tls.Server(nc, s.cfg.TLS)
		}
		s.mu.Lock()
		if s.mu.closed {
			s.mu.Unlock()
			_ = nc.Close()
			return
		}
		s.mu.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(c)
		}()
	}
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// produceKey is Produce's API key. Produce request frames are read into
// pooled buffers (see serveConn).
const produceKey = 0

// readBufferBytes is each connection's read buffer: room for a typical
// request whole (an unbatched produce of a few records, a fetch naming a
// few partitions).
const readBufferBytes = 16 << 10

// maxPooledBytes keeps the pools from pinning huge buffers.
const maxPooledBytes = 8 << 20

var requestPool = sync.Pool{New: func() any { return new([]byte) }}

func (s *Server) serveConn(c *Conn) {
	log := s.cfg.Logger
	defer func() {
		if p := recover(); p != nil {
			log.Error("handler panic; closing connection", "listener", s.cfg.Name, "remote", c.RemoteAddr().String(), "panic", p, "stack", string(debug.Stack()))
		}
		_ = c.Conn.Close()
		s.mu.Lock()
		delete(s.mu.conns, c)
		s.mu.Unlock()
	}()
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	// pl is the writer of pipelined Produce responses (pipeline.go),
	// started by the first Deferred.
	var pl *pipeline
	defer func() {
		// The connection is done: the responses still queued are not
		// sent (as a closed connection's would not be), their waits end.
		cancel()
		if pl != nil {
			pl.failed.Store(true)
			_ = c.Conn.Close()
			pl.stop()
		}
	}()
	if tc, ok := c.Conn.(*tls.Conn); ok && !s.handshake(ctx, c, tc) {
		return
	}
	var sizeBuf [4]byte
	var keyBuf [2]byte
	var body []byte
	// Buffered, so a small request (its size, key and body) costs one read
	// system call rather than three; a large body past the buffered bytes
	// is read straight into its own buffer.
	br := bufio.NewReaderSize(c.Conn, readBufferBytes)
	// idleUntil is the read deadline set (connections.max.idle.ms). It is
	// moved only once it is an eighth of the timeout closer than a full
	// timeout ahead, and never cleared: setting a deadline updates a
	// runtime timer, and doing it twice per request (set before the read,
	// cleared after) was ~1% of a broker's CPU under small requests. A
	// connection is closed after 7/8 to 8/8 of the timeout idle; a
	// request's body and handling are never near the deadline.
	var idleUntil time.Time
	for {
		if s.cfg.IdleTimeout > 0 {
			if now := time.Now(); idleUntil.Sub(now) < s.cfg.IdleTimeout-s.cfg.IdleTimeout/8 {
				idleUntil = now.Add(s.cfg.IdleTimeout)
				_ = c.SetReadDeadline(idleUntil)
			}
		}
		if _, err := io.ReadFull(br, sizeBuf[:]); err != nil {
			return
		}
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		if c.auth.raw {
			// A raw SASL token after SaslHandshake v0 (sasl.go).
			if size < 0 || size > s.cfg.MaxRequestBytes {
				return
			}
			token := make([]byte, size)
			if _, err := io.ReadFull(br, token); err != nil {
				return
			}
			if err := s.serveRawSASL(c, token, time.Now()); err != nil {
				return
			}
			continue
		}
		if size < 8 || size > s.cfg.MaxRequestBytes {
			log.Warn("closing connection: bad request frame size", "listener", s.cfg.Name, "remote", c.RemoteAddr().String(), "size", size, "max", s.cfg.MaxRequestBytes)
			pl.drain() // the answers before it go out, as unpipelined
			return
		}
		// Requests are decoded into structs that may alias body, so a
		// request gets its own buffer, garbage once handled; except
		// Produce, the bulk of the bytes a broker reads: its handler copies
		// the records into the log and keeps nothing of the request once it
		// returns, so its frame goes back to a pool after the response is
		// written, or queued (pipeline.go).
		if _, err := io.ReadFull(br, keyBuf[:]); err != nil {
			return
		}
		var pooled *[]byte
		isProduce := int16(binary.BigEndian.Uint16(keyBuf[:])) == produceKey
		if isProduce {
			pooled = requestPool.Get().(*[]byte)
			if cap(*pooled) < int(size) {
				*pooled = make([]byte, size)
			}
			body = (*pooled)[:size]
		} else {
			body = make([]byte, size)
		}
		copy(body, keyBuf[:])
		if _, err := io.ReadFull(br, body[len(keyBuf):]); err != nil {
			return
		}
		received := time.Now()
		// Any request but Produce is handled once the responses before
		// it have been written, as if none were pipelined.
		if !isProduce && !pl.drain() {
			return
		}
		resp, hdr, err := s.handle(ctx, c, body, received)
		if err != nil {
			log.Warn("closing connection", "listener", s.cfg.Name, "remote", c.RemoteAddr().String(), "error", err)
			pl.drain()
			return
		}
		if _, deferred := resp.(*Deferred); deferred || pl.busy() {
			// A Produce handler keeps nothing of its request: the frame
			// is free now, while its response waits in the queue.
			if pooled != nil && cap(*pooled) <= maxPooledBytes {
				requestPool.Put(pooled)
			}
			if pl == nil {
				pl = newPipeline(s, c)
			}
			pl.push(queued{h: hdr, resp: resp, received: received})
			continue
		}
		if resp != nil {
			if err := s.writeResponse(c, hdr, resp); err != nil {
				return
			}
		}
		if c.auth.closeAfterResponse {
			return
		}
		if s.cfg.Observer != nil {
			s.cfg.Observer.Served(hdr, resp, received)
		}
		if pooled != nil && cap(*pooled) <= maxPooledBytes {
			requestPool.Put(pooled)
		}
	}
}

// handshake completes a TLS connection's handshake and takes its
// principal from the client's certificate. A client that does not speak
// TLS (a plaintext Kafka client), or whose certificate is refused, is
// closed before anything it sent is read as a request.
func (s *Server) handshake(ctx context.Context, c *Conn, tc *tls.Conn) bool {
	hctx, cancel := context.WithTimeout(ctx, s.cfg.HandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		s.cfg.Logger.Info("tls handshake failed; closing connection", "listener", s.cfg.Name, "listener_name", s.cfg.Listener,
			"remote", c.RemoteAddr().String(), "error", err)
		return false
	}
	cs := tc.ConnectionState()
	if len(cs.VerifiedChains) > 0 {
		c.SetPrincipal(security.PeerPrincipal(cs))
		s.cfg.Logger.Debug("tls client authenticated", "listener", s.cfg.Name, "listener_name", s.cfg.Listener,
			"remote", c.RemoteAddr().String(), "principal", c.Principal())
	}
	return true
}

// ParseHeader decodes a request header from the start of a frame and returns
// the header and the remaining body. The header is v2 (with tagged fields)
// when the request at that version is flexible, ApiVersions v3+ included;
// only ApiVersions' response header is special (always v0).
func ParseHeader(frame []byte) (Header, kmsg.Request, []byte, error) {
	return parseHeader(frame, "")
}

// parseHeader is ParseHeader; a client id equal to prevClientID (the
// connection's previous request's) is that string, not a new one.
func parseHeader(frame []byte, prevClientID string) (Header, kmsg.Request, []byte, error) {
	r := kbin.Reader{Src: frame}
	var h Header
	h.Key = r.Int16()
	h.Version = r.Int16()
	h.CorrelationID = r.Int32()
	if n := r.Int16(); n >= 0 {
		if cid := r.Span(int(n)); string(cid) == prevClientID {
			h.ClientID = prevClientID
		} else {
			h.ClientID = string(cid)
		}
	}
	if !r.Ok() {
		return h, nil, nil, errors.New("truncated request header")
	}
	req := kmsg.RequestForKey(h.Key)
	if req == nil {
		return h, nil, nil, fmt.Errorf("unknown api key %d", h.Key)
	}
	if h.Version < 0 || h.Version > req.MaxVersion() {
		return h, req, nil, fmt.Errorf("api key %d version %d is beyond what kmsg knows", h.Key, h.Version)
	}
	req.SetVersion(h.Version)
	if req.IsFlexible() {
		kmsg.SkipTags(&r)
		if !r.Ok() {
			return h, nil, nil, errors.New("truncated request header tags")
		}
	}
	return h, req, r.Src, nil
}

// handle decodes and serves one request frame read whole at received.
func (s *Server) handle(ctx context.Context, c *Conn, frame []byte, received time.Time) (kmsg.Response, Header, error) {
	prevClientID := ""
	if c != nil {
		prevClientID = c.clientID
	}
	h, req, rest, err := parseHeader(frame, prevClientID)
	if c != nil {
		c.clientID = h.ClientID
	}
	if err != nil {
		if h.Key == 18 && len(frame) >= 8 {
			return unsupportedAPIVersions(h), Header{Key: 18, Version: 0, CorrelationID: h.CorrelationID}, nil
		}
		return nil, h, err
	}
	if err := s.checkAuthenticated(c, h, received); err != nil {
		return nil, h, err
	}
	api, ok := s.registry.Lookup(h.Key)
	if !ok || h.Version < api.MinVersion || h.Version > api.MaxVersion {
		if h.Key == 18 {
			return unsupportedAPIVersions(h), Header{Key: 18, Version: 0, CorrelationID: h.CorrelationID}, nil
		}
		return nil, h, fmt.Errorf("unsupported %s v%d", kmsg.NameForKey(h.Key), h.Version)
	}
	if err := req.ReadFrom(rest); err != nil {
		if h.Key == 18 {
			// KIP-511: a newer client's ApiVersions may not parse; answer v0.
			return unsupportedAPIVersions(h), Header{Key: 18, Version: 0, CorrelationID: h.CorrelationID}, nil
		}
		return nil, h, fmt.Errorf("malformed %s v%d: %w", kmsg.NameForKey(h.Key), h.Version, err)
	}
	resp, err := api.Handle(ctx, &Request{Header: h, Body: req, Conn: c, Received: received, Listener: s.cfg.Listener, Principal: c.Principal()})
	if err != nil {
		return nil, h, err
	}
	if resp != nil {
		resp.SetVersion(h.Version)
	}
	return resp, h, nil
}

func unsupportedAPIVersions(h Header) kmsg.Response {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	// Clients read the supported range of ApiVersions itself from here.
	k := kmsg.NewApiVersionsResponseApiKey()
	k.ApiKey, k.MinVersion, k.MaxVersion = 18, 0, 4
	resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{k}
	return resp
}

// AppendResponse appends a complete response frame (size, header, body).
func AppendResponse(dst []byte, h Header, resp kmsg.Response) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(h.CorrelationID))
	if resp.IsFlexible() && h.Key != 18 {
		dst = append(dst, 0) // empty tagged fields of the v1 response header
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

func (s *Server) writeResponse(c *Conn, h Header, resp kmsg.Response) error {
	bp := bufPool.Get().(*[]byte)
	buf := AppendResponse((*bp)[:0], h, resp)
	var err error
	if fr, ok := resp.(*FileResponse); ok && len(fr.ranges) > 0 {
		err = writeFileResponse(c.Conn, buf, fr, resp.IsFlexible())
	} else {
		_, err = c.Conn.Write(buf)
	}
	if cap(buf) <= maxPooledBytes { // keep the pool from pinning huge fetch buffers
		*bp = buf[:0]
		bufPool.Put(bp)
	}
	return err
}
