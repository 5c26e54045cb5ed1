package soak

import (
	"net"
	"sync"
	"time"
)

// Proxy is a TCP proxy that a fault can turn against its clients: it stalls (bytes held, connections
// open: a partition, as far as either side can tell), slows (each chunk delayed), drops every connection,
// or refuses new ones. Target is dialled for each connection (it may change: a webhook proxy follows a
// live replica).
type Proxy struct {
	ln     net.Listener
	target func() string

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	stalled chan struct{} // closed when not stalled
	delay   time.Duration
	refuse  bool
}

// NewProxy listens on addr (host:port; port 0: a free one) and forwards to target().
func NewProxy(addr string, target func() string) (*Proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	open := make(chan struct{})
	close(open)
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}, stalled: open}
	go p.serve()
	return p, nil
}

// Addr is the proxy's address (host:port).
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Close stops listening and drops every connection.
func (p *Proxy) Close() {
	_ = p.ln.Close()
	p.Drop()
	p.Stall(0)
}

func (p *Proxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.refuse
		p.mu.Unlock()
		if refuse {
			_ = in.Close()
			continue
		}
		go p.forward(in)
	}
}

func (p *Proxy) forward(in net.Conn) {
	out, err := net.DialTimeout("tcp", p.target(), 5*time.Second)
	if err != nil {
		_ = in.Close()
		return
	}
	p.mu.Lock()
	p.conns[in], p.conns[out] = struct{}{}, struct{}{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() { p.copy(out, in) })
	wg.Go(func() { p.copy(in, out) })
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, in)
	delete(p.conns, out)
	p.mu.Unlock()
}

// copy forwards src to dst a chunk at a time, holding each chunk while the proxy is stalled and for the
// delay while it is slow; when either side ends, both do.
func (p *Proxy) copy(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			stalled, delay := p.stalled, p.delay
			p.mu.Unlock()
			<-stalled
			time.Sleep(delay)
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Stall holds every byte in both directions for d (connections stay open; new ones are accepted and
// stall too). Stall(0) ends a stall.
func (p *Proxy) Stall(d time.Duration) {
	p.mu.Lock()
	select {
	case <-p.stalled:
	default:
		close(p.stalled) // end the current stall
	}
	if d > 0 {
		ch := make(chan struct{})
		p.stalled = ch
		time.AfterFunc(d, func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.stalled == ch {
				close(ch)
				open := make(chan struct{})
				close(open)
				p.stalled = open
			}
		})
	} else {
		open := make(chan struct{})
		close(open)
		p.stalled = open
	}
	p.mu.Unlock()
}

// Slow delays each chunk by delay, in both directions, for d.
func (p *Proxy) Slow(delay, d time.Duration) {
	p.mu.Lock()
	p.delay = delay
	p.mu.Unlock()
	time.AfterFunc(d, func() {
		p.mu.Lock()
		p.delay = 0
		p.mu.Unlock()
	})
}

// Refuse closes every new connection at once for d (a peer that is down: the dial succeeds, the
// conversation does not).
func (p *Proxy) Refuse(d time.Duration) {
	p.mu.Lock()
	p.refuse = true
	p.mu.Unlock()
	p.Drop()
	time.AfterFunc(d, func() {
		p.mu.Lock()
		p.refuse = false
		p.mu.Unlock()
	})
}

// Drop closes every connection now (clients see a reset and dial again).
func (p *Proxy) Drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
}
