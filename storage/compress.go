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

// lz4 writers are pooled (each holds block buffers); every one has the
// same options, so the output does not depend on which is used. 64 KiB
// blocks, as the Java client writes them.
var (
	lz4Writers = sync.Pool{New: func() any {
		w := lz4.NewWriter(nil)
		if err := w.Apply(lz4.ConcurrencyOption(1), lz4.BlockSizeOption(lz4.Block64Kb)); err != nil {
			panic(err)
		}
		return w
	}}
	lz4Readers = sync.Pool{New: func() any { return lz4.NewReader(nil) }}
)

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

// decompress returns the records section of a batch compressed with codec.
func decompress(codec int, src []byte) ([]byte, error) {
	switch codec {
	case codecNone:
		return src, nil
	case codecGzip:
		r, err := gzip.NewReader(bytes.NewReader(src))
		if err != nil {
			return nil, err
		}
		defer r.Close()
		return readBounded(r)
	case codecSnappy:
		if !bytes.HasPrefix(src, xerialMagic) {
			return s2.Decode(nil, src)
		}
		// Xerial framing: 16-byte header, then (length, block) chunks.
		if len(src) < 16 {
			return nil, fmt.Errorf("short xerial snappy header")
		}
		var out []byte
		for b := src[16:]; len(b) > 0; {
			if len(b) < 4 {
				return nil, fmt.Errorf("truncated xerial snappy chunk")
			}
			n := int(binary.BigEndian.Uint32(b))
			if n > len(b)-4 {
				return nil, fmt.Errorf("truncated xerial snappy chunk")
			}
			dec, err := s2.Decode(nil, b[4:4+n])
			if err != nil {
				return nil, err
			}
			if len(out)+len(dec) > maxDecompressed {
				return nil, fmt.Errorf("decompressed batch exceeds %d bytes", maxDecompressed)
			}
			out = append(out, dec...)
			b = b[4+n:]
		}
		return out, nil
	case codecLz4:
		r := lz4Readers.Get().(*lz4.Reader)
		defer lz4Readers.Put(r)
		r.Reset(bytes.NewReader(src))
		return readBounded(r)
	case codecZstd:
		_, dec, err := zstdCodec()
		if err != nil {
			return nil, err
		}
		return dec.DecodeAll(src, nil)
	}
	return nil, fmt.Errorf("unknown compression codec %d", codec)
}

func readBounded(r io.Reader) ([]byte, error) {
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(r, maxDecompressed+1))
	if err != nil {
		return nil, err
	}
	if n > maxDecompressed {
		return nil, fmt.Errorf("decompressed batch exceeds %d bytes", maxDecompressed)
	}
	return buf.Bytes(), nil
}

// compress appends src compressed with codec to dst, deterministically.
func compress(dst []byte, codec int, src []byte) ([]byte, error) {
	switch codec {
	case codecNone:
		return append(dst, src...), nil
	case codecGzip:
		buf := bytes.NewBuffer(dst)
		w, err := gzip.NewWriterLevel(buf, gzip.DefaultCompression)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(src); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	case codecSnappy:
		// Raw snappy blocks, as franz-go writes them; every client reads them.
		enc := s2.EncodeSnappy(nil, src)
		return append(dst, enc...), nil
	case codecLz4:
		buf := bytes.NewBuffer(dst)
		w := lz4Writers.Get().(*lz4.Writer)
		defer lz4Writers.Put(w)
		w.Reset(buf)
		if _, err := w.Write(src); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	case codecZstd:
		enc, _, err := zstdCodec()
		if err != nil {
			return nil, err
		}
		return enc.EncodeAll(src, dst), nil
	}
	return nil, fmt.Errorf("unknown compression codec %d", codec)
}
