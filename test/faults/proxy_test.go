package faults_test

import (
	"net"
	"sync"
	"testing"
)

// partition is a TCP proxy between a client and a server that can cut the path
// between them, as a network does:
//
//   - Blackhole: bytes stop flowing both ways on every connection, and new
//     connections are accepted but go nowhere, as when packets are dropped; clients
//     notice only by their own timeouts.
//   - Refuse: every connection is reset, new ones as soon as they connect, as when
//     the server's host answers but the server is down: clients fail at once.
//   - Heal: connections flow again. Those caught by the cut are closed (their state
//     is lost, as a rebooted server or a NAT that forgot them would), so clients
//     reconnect.
type partition struct {
	target string
	ln     net.Listener
	addr   string

	mu    sync.Mutex
	mode  mode
	gate  chan struct{} // closed while connections flow
	conns map[*pconn]struct{}
	done  bool
}

type mode int

const (
	flowing mode = iota
	blackholed
	refusing
)

// pconn is one proxied connection; server is nil until it is dialled.
type pconn struct {
	client net.Conn

	mu     sync.Mutex
	server net.Conn
	closed bool
}

// connect records the server side; false (and server closed) if pc was closed.
func (c *pconn) connect(server net.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		_ = server.Close()
		return false
	}
	c.server = server
	return true
}

func (c *pconn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	_ = c.client.Close()
	if c.server != nil {
		_ = c.server.Close()
	}
}

// newPartition listens on a loopback port and forwards to target until the test
// ends.
func newPartition(t *testing.T, target string) *partition {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &partition{target: target, ln: ln, addr: ln.Addr().String(), gate: make(chan struct{}), conns: map[*pconn]struct{}{}}
	close(p.gate)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *partition) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		m := p.mode
		p.mu.Unlock()
		if m == refusing {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // a reset, not an orderly close
			}
			_ = c.Close()
			continue
		}
		go p.forward(c)
	}
}

func (p *partition) forward(client net.Conn) {
	pc := &pconn{client: client}
	if !p.track(pc) {
		_ = client.Close()
		return
	}
	defer p.untrack(pc)
	if !p.waitOpen(pc) {
		return
	}
	server, err := net.Dial("tcp", p.target)
	if err != nil || !pc.connect(server) {
		return
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(pc, server, client) }()
	go func() { defer wg.Done(); p.pipe(pc, client, server) }()
	wg.Wait()
}

// pipe copies src to dst, holding what it read while the path is cut.
func (p *partition) pipe(pc *pconn, dst, src net.Conn) {
	defer pc.close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.waitOpen(pc) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil { // EOF or closed: the other direction ends with pc
			return
		}
	}
}

// waitOpen waits until connections flow; false when pc was closed meanwhile.
func (p *partition) waitOpen(pc *pconn) bool {
	p.mu.Lock()
	gate := p.gate
	_, tracked := p.conns[pc]
	p.mu.Unlock()
	if !tracked {
		return false
	}
	<-gate
	p.mu.Lock()
	defer p.mu.Unlock()
	_, tracked = p.conns[pc]
	return tracked
}

func (p *partition) track(pc *pconn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return false
	}
	p.conns[pc] = struct{}{}
	return true
}

func (p *partition) untrack(pc *pconn) {
	p.mu.Lock()
	delete(p.conns, pc)
	p.mu.Unlock()
	pc.close()
}

// Blackhole stops every byte, on existing and new connections.
func (p *partition) Blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode == flowing {
		p.gate = make(chan struct{})
	}
	p.mode = blackholed
}

// Refuse resets every connection, and new ones as they come.
func (p *partition) Refuse() {
	p.mu.Lock()
	if p.mode == flowing {
		p.gate = make(chan struct{})
	}
	p.mode = refusing
	p.dropLocked()
	p.mu.Unlock()
}

// Heal lets connections flow again; those the cut caught are closed.
func (p *partition) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode == flowing {
		return
	}
	p.dropLocked()
	p.mode = flowing
	close(p.gate)
}

// dropLocked closes every connection (a reset, so clients see the loss at once).
func (p *partition) dropLocked() {
	for pc := range p.conns {
		if tc, ok := pc.client.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		delete(p.conns, pc)
		pc.close()
	}
}

func (p *partition) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	p.done = true
	p.dropLocked()
	if p.mode != flowing {
		close(p.gate)
		p.mode = flowing
	}
	p.mu.Unlock()
}
