// Package historytest starts what the history store's tests run against: a throwaway PostgreSQL server
// on loopback (hack/postgres.sh: Debian's postgresql package, installed when missing, or the binaries in
// $POSTGRES_BIN for another version). It imports nothing of the project, so the store's own tests use it
// too. Only tests import it.
package historytest

import (
	"bytes"
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
	dir, version, url := lines[0], lines[1], lines[2]
	t.Logf("Started %s", version)
	t.Cleanup(func() { _ = exec.Command(script(), "stop", dir).Run() })
	return url
}
