// Package historytest starts what the history store's tests run against: a throwaway PostgreSQL server
// on loopback (hack/postgres.sh: Debian's postgresql package, installed when missing, or the binaries in
// $POSTGRES_BIN for another version). It imports nothing of the project, so the store's own tests use it
// too. Only tests import it.
package historytest

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// script is hack/postgres.sh of this repository.
func script() string {
	_, file, _, _ := runtime.Caller(0) // internal/history/historytest/historytest.go
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "hack", "postgres.sh")
}

// Postgres starts a PostgreSQL server for the test, logs its version and returns its connection string;
// the server and its data go when the test ends.
func Postgres(t testing.TB) string {
	t.Helper()
	return Start(t).URL
}

// Server is a PostgreSQL server a test started.
type Server struct {
	// URL is its connection string (the postgres database, as the postgres superuser).
	URL string
	dir string
}

// Start starts a PostgreSQL server for the test and logs its version; the server and its data go when the
// test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(script(), "start", strconv.Itoa(port))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("starting PostgreSQL with hack/postgres.sh: %v: %s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	s := &Server{dir: lines[0], URL: lines[2]}
	t.Logf("Started %s", lines[1])
	t.Cleanup(func() { _ = exec.Command(script(), "stop", s.dir).Run() })
	return s
}

// Down stops the server as a crash would (its connections end; its data stays).
func (s *Server) Down() error { return s.run("down") }

// Up starts it again, on the same port.
func (s *Server) Up() error { return s.run("up") }

func (s *Server) run(verb string) error {
	out, err := exec.Command(script(), verb, s.dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("hack/postgres.sh %s: %w: %s", verb, err, out)
	}
	return nil
}
