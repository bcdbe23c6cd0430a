package wire

import (
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Pipelined Produce. A producer keeps several Produce requests in flight
// on one connection (Kafka's max.in.flight.requests.per.connection, 5 by
// default with idempotence). A connection served one request at a time
// reads the second only once the first is replicated and answered, so
// every request waits out the replication rounds of those before it, and
// each round carries one request's records. Instead, a Produce handler
// that has appended its records and has only to wait for the ISR returns
// a Deferred; the connection hands it to its writer goroutine, which
// waits for it and writes it, and goes on reading, handling (appending)
// and queueing the requests after it. Responses still leave in request
// order, and a request of any other API is handled only once every
// response before it has been written, so for everything but Produce a
// connection behaves as before.

// Deferred is a response whose handler has done its work and has only to
// wait before it may be sent. Wait runs on the connection's writer
// goroutine once the responses before it are written; it may fill in the
// response (errors of the wait).
type Deferred struct {
	kmsg.Response
	wait func()
}

// Defer returns resp to be sent once wait has returned. A handler that
// answers this way must keep nothing of its request's body: the frame is
// reused as soon as the handler returns.
func Defer(resp kmsg.Response, wait func()) kmsg.Response {
	return &Deferred{Response: resp, wait: wait}
}

// Resolve waits for a Deferred response and returns what it stands for;
// any other response is returned as it is. For callers of a handler other
// than the connection (tests).
func Resolve(resp kmsg.Response) kmsg.Response {
	if d, ok := resp.(*Deferred); ok {
		d.wait()
		return d.Response
	}
	return resp
}

// maxPipelined is how many responses a connection holds for its writer;
// with that many waiting, the next request is not read until one is sent.
const maxPipelined = 16

// queued is a response waiting for the writer: a Deferred, or any
// response (nil for acks=0) of a Produce handled after one.
type queued struct {
	h        Header
	resp     kmsg.Response
	received time.Time
}

// pipeline is a connection's writer goroutine and its queue. Only the
// connection's reading goroutine pushes and drains.
type pipeline struct {
	s *Server
	c *Conn
	q chan queued
	// pending counts pushed responses not yet written (or given up).
	pending atomic.Int32
	// drained gets a token when pending falls to zero.
	drained chan struct{}
	// failed is set when a write failed: the connection is closed, and
	// the rest of the queue is waited for but not written.
	failed atomic.Bool
	done   chan struct{}
}

func newPipeline(s *Server, c *Conn) *pipeline {
	p := &pipeline{s: s, c: c, q: make(chan queued, maxPipelined), drained: make(chan struct{}, 1), done: make(chan struct{})}
	go p.write()
	return p
}

// busy reports whether responses wait to be written: a response to the
// next request has to queue behind them.
func (p *pipeline) busy() bool { return p != nil && p.pending.Load() > 0 }

func (p *pipeline) push(e queued) {
	p.pending.Add(1)
	p.q <- e
}

// drain waits until every pushed response has been written. It reports
// false when the connection failed meanwhile.
func (p *pipeline) drain() bool {
	if p == nil {
		return true
	}
	for p.pending.Load() > 0 {
		<-p.drained
	}
	return !p.failed.Load()
}

// stop ends the writer once it has gone through the queue; ctx (the
// connection's, cancelled by then) ends the waits still pending.
func (p *pipeline) stop() {
	if p == nil {
		return
	}
	close(p.q)
	<-p.done
}

func (p *pipeline) write() {
	defer close(p.done)
	for e := range p.q {
		resp := e.resp
		if d, ok := resp.(*Deferred); ok {
			d.wait()
			resp = d.Response
		}
		if !p.failed.Load() {
			if resp != nil {
				if err := p.s.writeResponse(p.c, e.h, resp); err != nil {
					p.failed.Store(true)
					_ = p.c.Conn.Close() // the reading goroutine sees it and ends
				}
			}
			if !p.failed.Load() && p.s.cfg.Observer != nil {
				p.s.cfg.Observer.Served(e.h, resp, e.received)
			}
		}
		if p.pending.Add(-1) == 0 {
			select {
			case p.drained <- struct{}{}:
			default:
			}
		}
	}
}
