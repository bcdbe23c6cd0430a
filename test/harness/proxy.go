package harness

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Proxy is a loopback TCP proxy in front of one target address, used to
// cut the network of a node: Cut drops every connection through it and
// blackholes new ones (accepted, never answered, like packets lost on a
// partitioned link) until Heal. Block does the same for the connections
// of one process only, so a broker can be cut off from the others in both
// directions while clients still reach everyone else.
type Proxy struct {
	Addr   string // the proxy's listener, host:port
	Target string // where connections are forwarded

	ln net.Listener

	mu struct {
		sync.Mutex
		cut     bool
		blocked []*Process // connections from these processes are dropped
		conns   map[*proxyConn]bool
		held    map[net.Conn]bool // blackholed connections, closed at Heal
		closed  bool
	}
	wg sync.WaitGroup
}

// proxyConn is one forwarded connection: the accepted side and the side
// dialed to the target.
type proxyConn struct {
	in, out net.Conn
}

func (pc *proxyConn) close() {
	_ = pc.in.Close()
	_ = pc.out.Close()
}

// abort is close for a fault the proxy injects: the client's side is reset
// (RST), as a peer that never had the connection answers after a partition
// heals, or as a dead host's kernel refuses. A clean FIN before the first
// response would look like a TLS/SASL mismatch to clients (franz-go does
// not retry that).
func (pc *proxyConn) abort() {
	abortConn(pc.in)
	_ = pc.out.Close()
}

func abortConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// NewProxy starts a proxy on a fresh loopback port forwarding to target;
// it is closed at cleanup.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	p := newProxy(t, target)
	t.Cleanup(p.Close)
	return p
}

// newProxy is NewProxy without the cleanup.
func newProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &Proxy{Addr: ln.Addr().String(), Target: target, ln: ln}
	p.mu.conns = make(map[*proxyConn]bool)
	p.mu.held = make(map[net.Conn]bool)
	p.wg.Add(1)
	go p.accept()
	return p
}

// Cut closes every connection through the proxy and blackholes new ones
// until Heal.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.cut = true
	for pc := range p.mu.conns {
		pc.abort()
		delete(p.mu.conns, pc)
	}
}

// Heal undoes Cut and Block: new connections are forwarded again, and the
// blackholed ones are closed so their owners reconnect.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.cut = false
	p.mu.blocked = nil
	for c := range p.mu.held {
		abortConn(c)
		delete(p.mu.held, c)
	}
}

// Cutting reports whether the proxy is cut.
func (p *Proxy) Cutting() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.cut
}

// Block cuts the connections that process proc (whichever start of it is
// running) has open through the proxy and blackholes its new ones until
// Heal; other processes' connections are untouched. It identifies a
// connection's process by its socket inode under /proc (Linux only).
func (p *Proxy) Block(proc *Process) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.blocked = append(p.mu.blocked, proc)
	inodes, err := processSockets(proc.Pid())
	if err != nil {
		return err
	}
	for pc := range p.mu.conns {
		ino, err := peerInode(pc.in)
		if err != nil {
			return err
		}
		if inodes[ino] {
			pc.abort()
			delete(p.mu.conns, pc)
		}
	}
	return nil
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.mu.closed {
		p.mu.Unlock()
		return
	}
	p.mu.closed = true
	_ = p.ln.Close()
	for pc := range p.mu.conns {
		pc.close()
	}
	for c := range p.mu.held {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(in)
	}
}

// refused reports whether a new connection must be blackholed. Called with
// p.mu held.
func (p *Proxy) refusedLocked(in net.Conn) bool {
	if p.mu.cut {
		return true
	}
	if len(p.mu.blocked) == 0 {
		return false
	}
	ino, err := peerInode(in)
	if err != nil {
		return false
	}
	for _, proc := range p.mu.blocked {
		inodes, err := processSockets(proc.Pid())
		if err == nil && inodes[ino] {
			return true
		}
	}
	return false
}

func (p *Proxy) serve(in net.Conn) {
	defer p.wg.Done()
	p.mu.Lock()
	if p.mu.closed {
		p.mu.Unlock()
		_ = in.Close()
		return
	}
	if p.refusedLocked(in) {
		p.mu.held[in] = true
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()

	out, err := net.Dial("tcp", p.Target)
	if err != nil {
		abortConn(in) // the target refused: so does the proxy
		return
	}
	pc := &proxyConn{in: in, out: out}
	p.mu.Lock()
	// Cut or Block may have come while dialing.
	if p.mu.closed || p.refusedLocked(in) {
		p.mu.Unlock()
		pc.abort()
		return
	}
	p.mu.conns[pc] = true
	p.mu.Unlock()

	var wg sync.WaitGroup
	wg.Add(2)
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		pc.close() // one direction ended: end both, like a reset
	}
	go pipe(out, in)
	go pipe(in, out)
	wg.Wait()
	p.mu.Lock()
	delete(p.mu.conns, pc)
	p.mu.Unlock()
}

// peerInode returns the socket inode of the other end of an accepted
// loopback connection: the /proc/net/tcp entry whose local address is the
// connection's remote address and whose remote address is its local one.
func peerInode(c net.Conn) (uint64, error) {
	la, ok1 := c.LocalAddr().(*net.TCPAddr)
	ra, ok2 := c.RemoteAddr().(*net.TCPAddr)
	if !ok1 || !ok2 {
		return 0, errors.New("not a TCP connection")
	}
	want := procAddr(ra) + " " + procAddr(la)
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[1]+" "+fields[2] != want {
			continue
		}
		return strconv.ParseUint(fields[9], 10, 64)
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no /proc/net/tcp entry for %s -> %s", ra, la)
}

// procAddr formats an IPv4 address as /proc/net/tcp does: the address as
// a little-endian hex word, a colon, the port in hex.
func procAddr(a *net.TCPAddr) string {
	ip := a.IP.To4()
	if ip == nil {
		return ""
	}
	return fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], a.Port)
}

// processSockets returns the socket inodes of process pid's open files.
func processSockets(pid int) (map[uint64]bool, error) {
	out := make(map[uint64]bool)
	if pid <= 0 {
		return out, nil
	}
	dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return out, nil // exited
		}
		return nil, err
	}
	for _, e := range entries {
		link, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		if s, ok := strings.CutPrefix(link, "socket:["); ok {
			if ino, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64); err == nil {
				out[ino] = true
			}
		}
	}
	return out, nil
}

// proxyBroker gives broker n its proxies (Options.Proxies) and returns its
// --controllers value: its own proxies in front of the controllers. The
// proxies are closed after the nodes were stopped (closeProxies), so a
// broker's controlled shutdown still reaches the controllers.
func (c *Cluster) proxyBroker(n *Node) string {
	n.Proxy = newProxy(c.t, n.Addr)
	var addrs []string
	for _, ctl := range c.Controllers {
		p := newProxy(c.t, ctl.Addr)
		n.ControllerProxies = append(n.ControllerProxies, p)
		addrs = append(addrs, p.Addr)
	}
	return strings.Join(addrs, ",")
}

// Isolate cuts broker b off the network (Options.Proxies): its own proxy
// is cut, so neither clients nor other brokers' follower fetchers reach
// it, and every other broker's proxy blocks b's connections, so its own
// follower fetchers do not reach them either. Its connection to the
// controllers stays up (see CutControllers). Rejoin undoes it.
func (c *Cluster) Isolate(b *Node) {
	c.t.Helper()
	c.mustProxies(b)
	b.Proxy.Cut()
	for _, o := range c.Brokers {
		if o != b {
			if err := o.Proxy.Block(b.Process); err != nil {
				c.t.Fatalf("isolate %s: %v", b.Name, err)
			}
		}
	}
}

// Rejoin undoes Isolate.
func (c *Cluster) Rejoin(b *Node) {
	c.mustProxies(b)
	b.Proxy.Heal()
	for _, o := range c.Brokers {
		if o != b {
			o.Proxy.Heal()
		}
	}
}

// CutControllers cuts broker b's connections to the controllers
// (Options.Proxies): its heartbeats stop reaching them, so they fence it
// after the session timeout. HealControllers undoes it.
func (c *Cluster) CutControllers(b *Node) {
	c.mustProxies(b)
	for _, p := range b.ControllerProxies {
		p.Cut()
	}
}

// HealControllers undoes CutControllers.
func (c *Cluster) HealControllers(b *Node) {
	c.mustProxies(b)
	for _, p := range b.ControllerProxies {
		p.Heal()
	}
}

func (c *Cluster) mustProxies(b *Node) {
	c.t.Helper()
	if b.Proxy == nil {
		c.t.Fatalf("%s has no proxy: start the cluster with Options.Proxies", b.Name)
	}
}

// closeProxies closes the brokers' proxies.
func (c *Cluster) closeProxies() {
	for _, b := range c.Brokers {
		if b.Proxy != nil {
			b.Proxy.Close()
		}
		for _, p := range b.ControllerProxies {
			p.Close()
		}
	}
}
