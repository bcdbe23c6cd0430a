package storage

// Record batch compression for the cleaner, which must decompress a batch,
// drop records and compress the rest again with the same codec. Every
// replica runs its own cleaner, so compression must be deterministic: the
// same input gives the same bytes (single-threaded encoders, fixed levels,
// no timestamps in headers).

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Compression codecs, the low three bits of the batch attributes.
const (
	codecNone   = 0
	codecGzip   = 1
	codecSnappy = 2
	codecLz4    = 3
	codecZstd   = 4

	attrCodecMask = 0x07
)

// maxDecompressed bounds a decompressed batch (a corrupt or hostile batch
// must not exhaust memory).
const maxDecompressed = 256 << 20

// xerialMagic starts snappy data framed the way the Java client writes it.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

var (
	zstdOnce sync.Once
	zstdEnc  *zstd.Encoder
	zstdDec  *zstd.Decoder
	zstdErr  error
)

// Compressors and decompressors are pooled (each holds block buffers and
// tables); every pooled writer of a codec has the same options, and Reset
// returns it to its initial state, so the output does not depend on which
// is used. lz4: 64 KiB blocks, as the Java client writes them.
var (
	lz4Writers = sync.Pool{New: func() any {
		w := lz4.NewWriter(nil)
		if err := w.Apply(lz4.ConcurrencyOption(1), lz4.BlockSizeOption(lz4.Block64Kb)); err != nil {
			panic(err)
		}
		return &pooledWriter[*lz4.Writer]{w: w}
	}}
	lz4Readers  = sync.Pool{New: func() any { return &pooledReader[*lz4.Reader]{r: lz4.NewReader(nil)} }}
	gzipWriters = sync.Pool{New: func() any {
		w, err := gzip.NewWriterLevel(nil, gzip.DefaultCompression)
		if err != nil {
			panic(err)
		}
		return &pooledWriter[*gzip.Writer]{w: w}
	}}
	gzipReaders = sync.Pool{New: func() any { return &pooledReader[*gzip.Reader]{} }}
)

// appendWriter is an io.Writer appending to b.
type appendWriter struct{ b []byte }

func (a *appendWriter) Write(p []byte) (int, error) {
	a.b = append(a.b, p...)
	return len(p), nil
}

// pooledWriter is a pooled compressor with the buffer it writes to.
type pooledWriter[W io.Writer] struct {
	w   W
	dst appendWriter
}

// release drops the reference to the caller's buffer and returns pw to
// pool.
func (pw *pooledWriter[W]) release(pool *sync.Pool) {
	pw.dst.b = nil
	pool.Put(pw)
}

// streamWriter is a resettable streaming compressor (gzip, lz4).
type streamWriter interface {
	io.WriteCloser
	Reset(io.Writer)
}

// compressStream appends src compressed by a pooled W to dst.
func compressStream[W streamWriter](pool *sync.Pool, dst, src []byte) ([]byte, error) {
	w := pool.Get().(*pooledWriter[W])
	defer w.release(pool)
	w.dst.b = dst
	w.w.Reset(&w.dst)
	if _, err := w.w.Write(src); err != nil {
		return nil, err
	}
	if err := w.w.Close(); err != nil {
		return nil, err
	}
	return w.dst.b, nil
}

// pooledReader is a pooled decompressor with the reader of its input.
type pooledReader[R io.Reader] struct {
	r   R
	src bytes.Reader
}

// release drops the reference to the caller's input and returns pr to
// pool.
func (pr *pooledReader[R]) release(pool *sync.Pool) {
	pr.src.Reset(nil)
	pool.Put(pr)
}

func zstdCodec() (*zstd.Encoder, *zstd.Decoder, error) {
	zstdOnce.Do(func() {
		zstdEnc, zstdErr = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
		if zstdErr != nil {
			return
		}
		zstdDec, zstdErr = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxDecompressed))
	})
	return zstdEnc, zstdDec, zstdErr
}

// decompress returns the records section of a batch compressed with codec
// (src itself when uncompressed).
func decompress(codec int, src []byte) ([]byte, error) { return decompressTo(nil, codec, src) }

// decompressTo is decompress writing into dst[:0] (grown as needed, so the
// result may or may not alias dst): a caller decompressing batch after
// batch reuses one buffer.
func decompressTo(dst []byte, codec int, src []byte) ([]byte, error) {
	dst = dst[:0]
	switch codec {
	case codecNone:
		return src, nil
	case codecGzip:
		d := gzipReaders.Get().(*pooledReader[*gzip.Reader])
		defer d.release(&gzipReaders)
		d.src.Reset(src)
		if d.r == nil {
			r, err := gzip.NewReader(&d.src)
			if err != nil {
				return nil, err
			}
			d.r = r
		} else if err := d.r.Reset(&d.src); err != nil {
			return nil, err
		}
		return readBounded(dst, d.r)
	case codecSnappy:
		if !bytes.HasPrefix(src, xerialMagic) {
			return snappyDecode(dst, src)
		}
		// Xerial framing: 16-byte header, then (length, block) chunks.
		if len(src) < 16 {
			return nil, fmt.Errorf("short xerial snappy header")
		}
		out := dst
		for b := src[16:]; len(b) > 0; {
			if len(b) < 4 {
				return nil, fmt.Errorf("truncated xerial snappy chunk")
			}
			n := int(binary.BigEndian.Uint32(b))
			if n > len(b)-4 {
				return nil, fmt.Errorf("truncated xerial snappy chunk")
			}
			dec, err := snappyDecode(out[len(out):], b[4:4+n])
			if err != nil {
				return nil, err
			}
			if len(out)+len(dec) > maxDecompressed {
				return nil, fmt.Errorf("decompressed batch exceeds %d bytes", maxDecompressed)
			}
			out = append(out, dec...) // a no-op copy when dec was written in place
			b = b[4+n:]
		}
		return out, nil
	case codecLz4:
		d := lz4Readers.Get().(*pooledReader[*lz4.Reader])
		defer d.release(&lz4Readers)
		d.src.Reset(src)
		d.r.Reset(&d.src)
		return readBounded(dst, d.r)
	case codecZstd:
		_, dec, err := zstdCodec()
		if err != nil {
			return nil, err
		}
		return dec.DecodeAll(src, dst)
	}
	return nil, fmt.Errorf("unknown compression codec %d", codec)
}

// snappyDecode decodes one raw snappy block into dst[:0] when it fits.
func snappyDecode(dst, src []byte) ([]byte, error) {
	n, err := s2.DecodedLen(src)
	if err != nil {
		return nil, err
	}
	if n > maxDecompressed {
		return nil, fmt.Errorf("decompressed batch exceeds %d bytes", maxDecompressed)
	}
	if cap(dst) < n {
		dst = make([]byte, n)
	}
	return s2.Decode(dst[:n], src)
}

// readBounded appends what r yields to dst[:0], at most maxDecompressed
// bytes.
func readBounded(dst []byte, r io.Reader) ([]byte, error) {
	dst = dst[:0]
	if cap(dst) == 0 {
		dst = make([]byte, 0, 64<<10)
	}
	for {
		if len(dst) == cap(dst) {
			if len(dst) > maxDecompressed {
				return nil, fmt.Errorf("decompressed batch exceeds %d bytes", maxDecompressed)
			}
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			if len(dst) > maxDecompressed {
				return nil, fmt.Errorf("decompressed batch exceeds %d bytes", maxDecompressed)
			}
			return dst, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// compress appends src compressed with codec to dst, deterministically.
func compress(dst []byte, codec int, src []byte) ([]byte, error) {
	switch codec {
	case codecNone:
		return append(dst, src...), nil
	case codecGzip:
		return compressStream[*gzip.Writer](&gzipWriters, dst, src)
	case codecSnappy:
		// Raw snappy blocks, as franz-go writes them; every client reads them.
		n := s2.MaxEncodedLen(len(src))
		if n < 0 {
			return nil, fmt.Errorf("snappy: batch too large")
		}
		dst = slices.Grow(dst, n)
		enc := s2.EncodeSnappy(dst[len(dst):len(dst)+n], src)
		return dst[:len(dst)+len(enc)], nil
	case codecLz4:
		return compressStream[*lz4.Writer](&lz4Writers, dst, src)
	case codecZstd:
		enc, _, err := zstdCodec()
		if err != nil {
			return nil, err
		}
		return enc.EncodeAll(src, dst), nil
	}
	return nil, fmt.Errorf("unknown compression codec %d", codec)
}
