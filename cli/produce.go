package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/urfave/cli/v2"
)

func produceCommand() *cli.Command {
	return &cli.Command{
		Name:      "produce",
		Usage:     "produce each line of stdin as a record",
		ArgsUsage: "TOPIC",
		Description: "Reads stdin until EOF, produces one record per line (without the newline),\n" +
			"   waits for every acknowledgement, and exits non-zero if any record failed.\n" +
			"   Example: printf 'k1:hello\\nk2:world\\n' | skein produce demo --key-separator :",
		Flags: withCommon(
			bootstrapServerFlag(),
			acksFlag(),
			stringFlag("key-separator", "split each line at the first occurrence into key and value (default: no key)", ""),
			intFlag("partition", "produce every record to this partition (-1: let the partitioner choose)", -1),
		),
		Action: runProduce,
	}
}

// singleTopicArg returns the single TOPIC argument of produce and consume.
func singleTopicArg(c *cli.Context) (string, error) {
	if c.NArg() != 1 {
		return "", fmt.Errorf("want exactly one TOPIC: skein %s TOPIC", c.Command.Name)
	}
	return c.Args().First(), nil
}

func runProduce(c *cli.Context) error {
	topic, err := singleTopicArg(c)
	if err != nil {
		return err
	}
	acks, err := parseAcks(c.String("acks"))
	if err != nil {
		return err
	}
	partition, err := int32Value(c, "partition")
	if err != nil {
		return err
	}
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	opts := []kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(acks)}
	if !isAllAcks(c.String("acks")) {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	if partition >= 0 {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	cl, err := newClient(c, log, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()

	ctx, stop := signalContext(c)
	defer stop()
	p := &lineProducer{client: cl, separator: []byte(c.String("key-separator")), partition: partition}
	sent, readErr := p.run(ctx, c.App.Reader)
	// Flush even after a signal: what was handed to the client is either
	// acknowledged or reported failed.
	flushErr := cl.Flush(context.Background())

	failed := p.failed.Load()
	fmt.Fprintf(c.App.ErrWriter, "%d records produced to %s, %d failed\n", sent-failed, topic, failed)
	switch {
	case readErr != nil:
		return fmt.Errorf("read stdin: %w", readErr)
	case flushErr != nil:
		return fmt.Errorf("flush: %w", flushErr)
	case failed > 0:
		return fmt.Errorf("%d of %d records failed, first error: %w", failed, sent, p.firstErr())
	}
	return nil
}

// lineProducer produces lines of a reader as records.
type lineProducer struct {
	client    *kgo.Client
	separator []byte
	partition int32

	failed atomic.Int64
	mu     struct {
		sync.Mutex
		first error // first produce error; protected by mu
	}
}

// run produces every line of r until EOF or ctx is done, and returns how
// many records it handed to the client.
func (p *lineProducer) run(ctx context.Context, r io.Reader) (int64, error) {
	if r == nil {
		r = os.Stdin
	}
	br := bufio.NewReaderSize(r, 64<<10)
	var sent int64
	for ctx.Err() == nil {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			p.client.Produce(ctx, p.record(trimNewline(line)), p.done)
			sent++
		}
		if errors.Is(err, io.EOF) {
			return sent, nil
		}
		if err != nil {
			return sent, err
		}
	}
	return sent, nil
}

// record builds the record of one line. line is owned by the record
// (ReadBytes returns a fresh slice).
func (p *lineProducer) record(line []byte) *kgo.Record {
	r := &kgo.Record{Value: line}
	if len(p.separator) > 0 {
		if i := bytes.Index(line, p.separator); i >= 0 {
			r.Key, r.Value = line[:i], line[i+len(p.separator):]
		}
	}
	if p.partition >= 0 {
		r.Partition = p.partition
	}
	return r
}

func (p *lineProducer) done(_ *kgo.Record, err error) {
	if err == nil {
		return
	}
	p.failed.Add(1)
	p.mu.Lock()
	if p.mu.first == nil {
		p.mu.first = err
	}
	p.mu.Unlock()
}

func (p *lineProducer) firstErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.first
}

// trimNewline drops a trailing "\n" or "\r\n".
func trimNewline(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}
