package gamelift

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/clock"
)

// startLimited serves a Server with small limits on a free loopback port. Requests without a signature are
// answered (UnauthorizedException) before anything reads the cluster, so no API server is needed.
func startLimited(t *testing.T) string {
	t.Helper()
	return startServer(t, &Server{Clock: clock.RealClock{}, ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond,
		IdleTimeout: 500 * time.Millisecond, MaxConnections: 2})
}

// startServer runs s on a free loopback port until the test ends, and returns the address once it accepts.
func startServer(t *testing.T, s *Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	for range 100 {
		if c, err := net.Dial("tcp", s.Addr); err == nil {
			c.Close()
			return s.Addr
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the endpoint did not start")
	return ""
}

const unsigned = "POST / HTTP/1.1\r\nHost: gamelift\r\nX-Amz-Target: GameLift.DescribePlayerSessions\r\nContent-Type: application/x-amz-json-1.1\r\n"

// closedWithin reports whether the server closes c (EOF or reset) within d, reading and discarding what it sends.
func closedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return true
}

func TestEndpointCutsOffSlowAndIdleClients(t *testing.T) {
	addr := startLimited(t)

	// A body that trickles in, one byte every 100 ms, never completes within the read timeout.
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "%sContent-Length: 1000\r\n\r\n", unsigned)
	go func() {
		for range 100 {
			if _, err := slow.Write([]byte("{")); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	if !closedWithin(slow, 5*time.Second) {
		t.Error("a slow body held its connection past the read timeout")
	}

	// A client that connects and says nothing.
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	if !closedWithin(silent, 5*time.Second) {
		t.Error("a silent connection was kept past the read timeout")
	}

	// A kept-alive connection after one answered request, then idle.
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	fmt.Fprintf(idle, "%sContent-Length: 2\r\n\r\n{}", unsigned)
	resp, err := http.ReadResponse(bufio.NewReader(idle), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "UnauthorizedException") {
		t.Fatalf("unsigned request: %d %s", resp.StatusCode, body)
	}
	if !closedWithin(idle, 5*time.Second) {
		t.Error("an idle kept-alive connection was kept past the idle timeout")
	}
}

func TestEndpointBoundsConnections(t *testing.T) {
	addr := startLimited(t)
	client := &http.Client{Timeout: 300 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	call := func() error {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/", strings.NewReader("{}"))
		req.Header.Set("X-Amz-Target", "GameLift.DescribePlayerSessions")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	if err := call(); err != nil {
		t.Fatalf("with no other client: %v", err)
	}
	// Two clients hold the two connections (sending a body slowly, within the read timeout).
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "%sContent-Length: 10\r\n\r\n{", unsigned)
		held = append(held, c)
	}
	time.Sleep(50 * time.Millisecond)
	if err := call(); err == nil {
		t.Error("a third connection was served while two were held")
	}
	for _, c := range held {
		c.Close()
	}
	var err error
	for range 20 {
		if err = call(); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Errorf("after the held connections closed: %v", err)
	}
}
