package soak

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// TestProxy: the proxy forwards, stalls (bytes held until the stall ends), drops connections and refuses
// new ones.
func TestProxy(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					_, _ = c.Write([]byte(line))
				}
			}()
		}
	}()
	p, err := NewProxy("127.0.0.1:0", func() string { return echo.Addr().String() })
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		return c, bufio.NewReader(c)
	}
	roundTrip := func(c net.Conn, r *bufio.Reader) (time.Duration, error) {
		start := time.Now()
		if _, err := c.Write([]byte("ping\n")); err != nil {
			return 0, err
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := r.ReadString('\n')
		if err == nil && line != "ping\n" {
			t.Fatalf("echo: %q", line)
		}
		return time.Since(start), err
	}

	c, r := dial()
	if _, err := roundTrip(c, r); err != nil {
		t.Fatalf("forwarding: %v", err)
	}
	p.Stall(300 * time.Millisecond)
	if d, err := roundTrip(c, r); err != nil || d < 250*time.Millisecond {
		t.Fatalf("a stalled round trip took %s (%v), want the stall's 300 ms", d, err)
	}
	p.Drop()
	if _, err := roundTrip(c, r); err == nil {
		t.Fatal("a dropped connection still works")
	}
	p.Refuse(time.Second)
	c, r = dial()
	if _, err := roundTrip(c, r); err == nil {
		t.Fatal("a connection made while refusing works")
	}
	time.Sleep(1100 * time.Millisecond)
	c, r = dial()
	if _, err := roundTrip(c, r); err != nil {
		t.Fatalf("after refusing: %v", err)
	}
}
