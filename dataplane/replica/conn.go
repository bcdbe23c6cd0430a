package replica

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// dialTimeout bounds connecting to a leader.
	dialTimeout = 10 * time.Second
	// requestTimeout bounds one request's round trip beyond the time the
	// leader may legitimately hold it (a fetch's MaxWait); a leader that
	// stops answering (SIGSTOP, a cut network) is given up on after it.
	requestTimeout = 10 * time.Second
	// maxResponseBytes refuses absurd frame sizes (a wrong port, a
	// corrupt stream) instead of allocating them.
	maxResponseBytes = 100 << 20
	// keepBufferBytes: a read buffer grown beyond this (one unusually
	// large response) is dropped after use instead of kept.
	keepBufferBytes = 16 << 20
)

// conn is a TCP (or TLS) Kafka connection to one leader, used by one goroutine
// (the fetcher's). Requests and responses are encoded and decoded with
// kmsg; only the frame (size, header) is written here. Unlike a kgo client,
// it reads every response into one reused buffer, so a fetch response costs
// no allocation, zeroing or garbage for its record data.
//
// A response requested with unsafe aliases that buffer (its byte slices and
// strings): it is valid only until the next unsafe request. Any other
// response is read into its own buffer and stays valid, so a request made
// while an unsafe response is still in use (ListOffsets while applying a
// fetch) does not overwrite it.
type conn struct {
	nc       net.Conn
	clientID string
	// versions is the version to use per API key: the lower of kmsg's
	// newest and the leader's newest (from ApiVersions on connect).
	versions map[int16]int16
	corr     int32
	// stopWatch ends the goroutine-free watch that closes nc when the
	// fetcher's context ends.
	stopWatch func() bool
	wbuf      []byte
	rbuf      []byte
	br        *bufio.Reader // reads nc
}

// readBufferBytes is the connection's read buffer; larger response bodies
// are read past it, straight into their own buffer.
const readBufferBytes = 16 << 10

// dial connects to addr (with dialFn when set, else plain TCP) and asks
// the leader which versions it serves. The connection closes itself when
// ctx ends, unblocking any request.
func dial(ctx context.Context, addr, clientID string, dialFn func(context.Context, string, string) (net.Conn, error)) (*conn, error) {
	if dialFn == nil {
		d := net.Dialer{Timeout: dialTimeout}
		dialFn = d.DialContext
	}
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	nc, err := dialFn(dctx, "tcp", addr)
	cancel()
	if err != nil {
		return nil, err
	}
	// Buffered reads: a small response (an idle or caught-up fetch) costs
	// one read system call instead of two.
	c := &conn{nc: nc, br: bufio.NewReaderSize(nc, readBufferBytes), clientID: clientID}
	c.stopWatch = context.AfterFunc(ctx, func() { _ = nc.Close() })
	// ApiVersions v0: understood by every broker; its answer lists the
	// ranges of every key.
	req := kmsg.NewPtrApiVersionsRequest()
	resp := kmsg.NewPtrApiVersionsResponse()
	c.versions = map[int16]int16{18: 0}
	if err := c.request(req, resp, false, requestTimeout); err != nil {
		c.close()
		return nil, fmt.Errorf("api versions: %w", err)
	}
	if resp.ErrorCode != 0 {
		c.close()
		return nil, fmt.Errorf("api versions: %w", kerr.ErrorForCode(resp.ErrorCode))
	}
	c.versions = make(map[int16]int16, len(resp.ApiKeys))
	for _, k := range resp.ApiKeys {
		r := kmsg.RequestForKey(k.ApiKey)
		if r == nil || k.MaxVersion < 0 {
			continue
		}
		if v := min(k.MaxVersion, r.MaxVersion()); v >= k.MinVersion {
			c.versions[k.ApiKey] = v
		}
	}
	return c, nil
}

func (c *conn) close() {
	c.stopWatch()
	_ = c.nc.Close()
}

// request sends req and decodes the answer into resp (of req's kind), at
// the version negotiated for req's key. unsafe reads the answer into the
// reused buffer and decodes it with UnsafeReadFrom (see conn). timeout
// bounds the round trip.
func (c *conn) request(req kmsg.Request, resp kmsg.Response, unsafe bool, timeout time.Duration) error {
	key := req.Key()
	version, ok := c.versions[key]
	if !ok {
		return fmt.Errorf("leader does not serve %s", kmsg.NameForKey(key))
	}
	req.SetVersion(version)
	resp.SetVersion(version)
	c.corr++
	corr := c.corr

	// Frame: size, request header v1 (v2 adds empty tags), body.
	w := append(c.wbuf[:0], 0, 0, 0, 0)
	w = binary.BigEndian.AppendUint16(w, uint16(key))
	w = binary.BigEndian.AppendUint16(w, uint16(version))
	w = binary.BigEndian.AppendUint32(w, uint32(corr))
	w = binary.BigEndian.AppendUint16(w, uint16(len(c.clientID)))
	w = append(w, c.clientID...)
	if req.IsFlexible() {
		w = append(w, 0)
	}
	w = req.AppendTo(w)
	binary.BigEndian.PutUint32(w, uint32(len(w)-4))
	c.wbuf = w

	if err := c.nc.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if _, err := c.nc.Write(w); err != nil {
		return err
	}
	var sizeBuf [4]byte
	if _, err := io.ReadFull(c.br, sizeBuf[:]); err != nil {
		return err
	}
	size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
	if size < 4 || size > maxResponseBytes {
		return fmt.Errorf("bad response frame size %d", size)
	}
	var body []byte
	if unsafe {
		if cap(c.rbuf) < int(size) {
			c.rbuf = make([]byte, size)
		}
		body = c.rbuf[:size]
	} else {
		body = make([]byte, size)
	}
	if _, err := io.ReadFull(c.br, body); err != nil {
		return err
	}
	if cap(c.rbuf) > keepBufferBytes {
		c.rbuf = nil // body stays valid; the next response gets a new buffer
	}
	r := kbin.Reader{Src: body}
	if got := r.Int32(); got != corr {
		return fmt.Errorf("response correlation id %d, expected %d", got, corr)
	}
	if resp.IsFlexible() && key != 18 { // ApiVersions answers with header v0
		kmsg.SkipTags(&r)
	}
	if !r.Ok() {
		return errors.New("truncated response header")
	}
	var err error
	if u, ok := resp.(kmsg.UnsafeReadFrom); ok && unsafe {
		err = u.UnsafeReadFrom(r.Src)
	} else {
		err = resp.ReadFrom(r.Src)
	}
	if err != nil {
		return fmt.Errorf("malformed %s response: %w", kmsg.NameForKey(key), err)
	}
	return nil
}
