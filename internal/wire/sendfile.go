package wire

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
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
		at := bytes.Index(frame[cursor:], f.marks[i][:])
		if at < 0 {
			return nil, fmt.Errorf("sendfile: placeholder %d not found in the encoded response", i)
		}
		at += cursor
		// The length prefix right before the mark.
		if flexible {
			if at < 1 || frame[at-1] != markSize+1 {
				return nil, errors.New("sendfile: placeholder is not a compact bytes field")
			}
			out = append(out, frame[cursor:at-1]...)
			out = binary.AppendUvarint(out, uint64(r.Size)+1)
		} else {
			if at < 4 || binary.BigEndian.Uint32(frame[at-4:]) != markSize {
				return nil, errors.New("sendfile: placeholder is not a bytes field")
			}
			out = append(out, frame[cursor:at-4]...)
			out = binary.BigEndian.AppendUint32(out, uint32(r.Size))
		}
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
	pieces, err := f.layout(frame, flexible)
	if err != nil {
		return err
	}
	var fileBytes int64
	for _, p := range pieces {
		fileBytes += p.file.Size
	}
	tc, ok := c.(*net.TCPConn)
	if !ok || fileBytes <= copyResponseBytes {
		return writePieces(c, pieces)
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return writePieces(c, pieces)
	}
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

// writePieces sends the pieces with one write, the file ranges read into
// memory: the path for small responses, and the fallback without sendfile.
func writePieces(c net.Conn, pieces []piece) error {
	bp := bufPool.Get().(*[]byte)
	buf := (*bp)[:0]
	for _, p := range pieces {
		buf = append(buf, p.head...)
		if p.file.Size > 0 {
			n := len(buf)
			buf = slices.Grow(buf, int(p.file.Size))[:n+int(p.file.Size)]
			if _, err := p.file.File.ReadAt(buf[n:], p.file.Pos); err != nil {
				return err
			}
		}
	}
	_, err := c.Write(buf)
	if cap(buf) <= maxPooledBytes {
		*bp = buf[:0]
		bufPool.Put(bp)
	}
	return err
}

// Resolve returns the response as a client decodes it: encoded, with the
// file ranges read in, and decoded again. For tests and tools.
func (f *FileResponse) Resolve() (kmsg.Response, error) {
	frame := f.Response.AppendTo(make([]byte, 4))
	pieces, err := f.layout(frame, f.Response.IsFlexible())
	if err != nil {
		return nil, err
	}
	var body []byte
	for i, p := range pieces {
		head := p.head
		if i == 0 {
			head = head[4:]
		}
		body = append(body, head...)
		if p.file.Size > 0 {
			n := len(body)
			body = append(body, make([]byte, p.file.Size)...)
			if _, err := p.file.File.ReadAt(body[n:], p.file.Pos); err != nil {
				return nil, err
			}
		}
	}
	out := kmsg.ResponseForKey(f.Response.Key())
	out.SetVersion(f.Response.GetVersion())
	if err := out.ReadFrom(body); err != nil {
		return nil, err
	}
	return out, nil
}
