package wire

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"
)

// Zero-copy responses. A handler that answers with log data (Fetch) puts a
// 16-byte mark into each bytes field that should hold a file range, and
// returns a *FileResponse. The server encodes the response with kmsg as
// usual, finds each mark right after its length prefix, rewrites the length
// for the real size, and sends the encoded pieces with write and the file
// ranges with sendfile(2): record data never passes through user space.

// FileRange is a byte range of a file.
type FileRange struct {
	File *os.File
	Pos  int64
	Size int64
}

const markSize = 16

// markPrefix makes this process's marks unguessable, so no client-chosen
// bytes (a topic name) can look like one.
var (
	markPrefix [8]byte
	markSeq    atomic.Uint64
)

func init() {
	if _, err := rand.Read(markPrefix[:]); err != nil {
		panic(err)
	}
}

// FileResponse is a response some of whose bytes fields stand for file
// ranges. Add returns the mark to put in the field.
type FileResponse struct {
	kmsg.Response
	ranges []FileRange
	marks  [][markSize]byte
}

// NewFileResponse wraps resp.
func NewFileResponse(resp kmsg.Response) *FileResponse { return &FileResponse{Response: resp} }

// Add registers a file range and returns the placeholder to assign to the
// bytes field that should carry it. Fields must be added in the order the
// encoding writes them.
func (f *FileResponse) Add(r FileRange) []byte {
	var m [markSize]byte
	copy(m[:8], markPrefix[:])
	binary.BigEndian.PutUint64(m[8:], markSeq.Add(1))
	f.ranges = append(f.ranges, r)
	f.marks = append(f.marks, m)
	return f.marks[len(f.marks)-1][:]
}

// piece is a part of the response on the wire: bytes, then a file range.
type piece struct {
	head []byte
	file FileRange
}

// layout splits an encoded response frame (size prefix included) into
// pieces, rewriting each placeholder's length prefix. It returns the pieces
// and the real frame size.
func (f *FileResponse) layout(frame []byte, flexible bool) ([]piece, error) {
	pieces := make([]piece, 0, len(f.ranges)+1)
	var out []byte // the rewritten non-file bytes, all pieces' heads alias it
	out = make([]byte, 0, len(frame)+len(f.ranges)*8)
	cursor := 4 // after the size prefix
	heads := make([]int, 0, len(f.ranges)+1)
	total := int64(0)
	for i, r := range f.ranges {
		at, err := f.markAt(frame, cursor, i, flexible)
		if err != nil {
			return nil, err
		}
		out = appendUpToMark(out, frame[cursor:at], r.Size, flexible)
		heads = append(heads, len(out))
		total += r.Size
		cursor = at + markSize
	}
	out = append(out, frame[cursor:]...)
	heads = append(heads, len(out))
	total += int64(len(out))
	var size [4]byte
	binary.BigEndian.PutUint32(size[:], uint32(total))
	start := 0
	for i, end := range heads {
		p := piece{head: out[start:end]}
		if i == 0 {
			p.head = append(size[:], p.head...)
		}
		if i < len(f.ranges) {
			p.file = f.ranges[i]
		}
		pieces = append(pieces, p)
		start = end
	}
	return pieces, nil
}

// writeFileResponse sends an encoded FileResponse frame to c.
func writeFileResponse(c net.Conn, frame []byte, f *FileResponse, flexible bool) error {
	var fileBytes int64
	for _, r := range f.ranges {
		fileBytes += r.Size
	}
	if fileBytes <= copyResponseBytes {
		responsesCopied.Add(1)
		return f.writeCopied(c, frame, flexible)
	}
	pieces, err := f.layout(frame, flexible)
	if err != nil {
		return err
	}
	// sendfile needs the socket itself; a TLS connection must encrypt
	// what it sends, so its file data goes through user space, streamed.
	tc, isTCP := c.(*net.TCPConn)
	if !isTCP {
		responsesStreamed.Add(1)
		return writeStreamed(c, pieces)
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		responsesStreamed.Add(1)
		return writeStreamed(c, pieces)
	}
	responsesSendfile.Add(1)
	// Cork so the small heads and the file data leave in full segments.
	_ = rc.Control(func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_CORK, 1) })
	defer rc.Control(func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_CORK, 0) })
	for _, p := range pieces {
		if len(p.head) > 0 {
			if _, err := c.Write(p.head); err != nil {
				return err
			}
		}
		if p.file.Size > 0 {
			if err := sendfile(rc, p.file); err != nil {
				return err
			}
		}
	}
	return nil
}

// Counts of file responses by how they were sent, for tests: the
// sendfile path must stay the one plaintext connections take.
var responsesSendfile, responsesStreamed, responsesCopied atomic.Uint64

// streamBufferBytes is the buffer a streamed response goes out through:
// several TLS records (16 KiB each) per write.
const streamBufferBytes = 64 << 10

var streamPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, streamBufferBytes) }}

// writeStreamed sends a large file response over a connection without
// sendfile (TLS): the heads and the file ranges are read in and written
// through a buffer, so the response is never held whole in memory.
func writeStreamed(c net.Conn, pieces []piece) error {
	bw := streamPool.Get().(*bufio.Writer)
	bw.Reset(c)
	defer func() {
		bw.Reset(nil)
		streamPool.Put(bw)
	}()
	for _, p := range pieces {
		if _, err := bw.Write(p.head); err != nil {
			return err
		}
		if p.file.Size > 0 {
			n, err := bw.ReadFrom(io.NewSectionReader(p.file.File, p.file.Pos, p.file.Size))
			if err != nil {
				return err
			}
			if n != p.file.Size {
				return io.ErrUnexpectedEOF // the file is shorter than the range
			}
		}
	}
	return bw.Flush()
}

// sendfile copies a file range to the socket in the kernel.
func sendfile(rc interface {
	Write(func(fd uintptr) bool) error
}, r FileRange) error {
	src := int(r.File.Fd())
	off, left := r.Pos, r.Size
	var serr error
	err := rc.Write(func(fd uintptr) bool {
		for left > 0 {
			n, err := unix.Sendfile(int(fd), src, &off, int(min(left, 1<<30)))
			if n > 0 {
				left -= int64(n)
			}
			switch {
			case errors.Is(err, unix.EAGAIN):
				return false // wait until the socket is writable
			case errors.Is(err, unix.EINTR):
				continue
			case err != nil:
				serr = err
				return true
			case n == 0:
				serr = io.ErrUnexpectedEOF // the file is shorter than the range
				return true
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	return serr
}

// copyResponseBytes is the most file data a response copies through
// user space instead of sending with sendfile: for a small response (a
// caught-up follower's or consumer's fetch), reading the ranges into the
// frame and sending it with one write costs fewer system calls than
// corking, writing each head, sendfile for each range and uncorking.
const copyResponseBytes = 64 << 10

// writeCopied sends the frame with the file ranges read into it, with one
// write: the path for small responses, and the fallback without sendfile.
func (f *FileResponse) writeCopied(c net.Conn, frame []byte, flexible bool) error {
	bp := bufPool.Get().(*[]byte)
	buf, err := f.appendResolved((*bp)[:0], frame, flexible)
	if err == nil {
		_, err = c.Write(buf)
	}
	if cap(buf) <= maxPooledBytes {
		*bp = buf[:0]
		bufPool.Put(bp)
	}
	return err
}

// appendResolved appends the frame (size prefix included) as the client
// receives it: each placeholder replaced by its file range, read in, and
// its length prefix and the frame size rewritten.
func (f *FileResponse) appendResolved(dst, frame []byte, flexible bool) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0) // the size, set below
	cursor := 4
	for i, r := range f.ranges {
		at, err := f.markAt(frame, cursor, i, flexible)
		if err != nil {
			return dst, err
		}
		dst = appendUpToMark(dst, frame[cursor:at], r.Size, flexible)
		n := len(dst)
		dst = slices.Grow(dst, int(r.Size))[:n+int(r.Size)]
		if _, err := r.File.ReadAt(dst[n:], r.Pos); err != nil {
			return dst[:n], err
		}
		cursor = at + markSize
	}
	dst = append(dst, frame[cursor:]...)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst, nil
}

// appendUpToMark appends the encoded bytes before a placeholder (before
// ends with the placeholder's length prefix) with that prefix rewritten
// for a field of size bytes.
func appendUpToMark(dst, before []byte, size int64, flexible bool) []byte {
	if flexible {
		dst = append(dst, before[:len(before)-1]...)
		return binary.AppendUvarint(dst, uint64(size)+1)
	}
	dst = append(dst, before[:len(before)-4]...)
	return binary.BigEndian.AppendUint32(dst, uint32(size))
}

// markAt finds placeholder i in frame from cursor on and checks the
// length prefix before it; it returns the placeholder's position.
func (f *FileResponse) markAt(frame []byte, cursor, i int, flexible bool) (int, error) {
	at := bytes.Index(frame[cursor:], f.marks[i][:])
	if at < 0 {
		return 0, fmt.Errorf("sendfile: placeholder %d not found in the encoded response", i)
	}
	at += cursor
	if flexible {
		if at < cursor+1 || frame[at-1] != markSize+1 {
			return 0, errors.New("sendfile: placeholder is not a compact bytes field")
		}
	} else if at < cursor+4 || binary.BigEndian.Uint32(frame[at-4:]) != markSize {
		return 0, errors.New("sendfile: placeholder is not a bytes field")
	}
	return at, nil
}

// Resolve returns the response as a client decodes it: encoded, with the
// file ranges read in, and decoded again. For tests and tools.
func (f *FileResponse) Resolve() (kmsg.Response, error) {
	flexible := f.Response.IsFlexible()
	frame, err := f.appendResolved(nil, f.Response.AppendTo(make([]byte, 4)), flexible)
	if err != nil {
		return nil, err
	}
	out := kmsg.ResponseForKey(f.Response.Key())
	out.SetVersion(f.Response.GetVersion())
	if err := out.ReadFrom(frame[4:]); err != nil {
		return nil, err
	}
	return out, nil
}
