package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKilledManagerLeavesNothingRunning: `make run` killed hard (SIGKILL, no chance to clean up) takes its
// etcd and kube-apiserver with it, and a second start afterwards comes up cleanly.
func TestKilledManagerLeavesNothingRunning(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("run with make test, which sets KUBEBUILDER_ASSETS")
	}
	bin := filepath.Join(t.TempDir(), "manager")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	start := func() (*exec.Cmd, []int) {
		cmd := exec.Command(bin, "--local-control-plane="+t.TempDir(), "--leader-election-namespace=default",
			"--metrics-bind-address=0", "--health-probe-bind-address=0", "--query-port=0",
			"--crd-dir="+filepath.Join(root, "config", "crd", "bases"),
			"--webhook-config-dir="+filepath.Join(root, "config", "webhook"),
			"--policy-dir="+filepath.Join(root, "config", "policy"))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		logs := filepath.Join(t.TempDir(), "stderr")
		stderr, err := os.Create(logs)
		if err != nil {
			t.Fatal(err)
		}
		defer stderr.Close()
		cmd.Stderr = stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		up, gone := make(chan bool, 1), make(chan bool)
		go func() {
			defer close(gone)
			s := bufio.NewScanner(stdout)
			for s.Scan() {
				if strings.Contains(s.Text(), "Local control plane is up") {
					up <- true
				}
			}
		}()
		// A bound on a hang, not on speed: a cold `make test` compiles every package on two cores while
		// this starts etcd and kube-apiserver (each has two minutes, internal/localcp).
		select {
		case <-up:
		case <-gone:
			_ = cmd.Wait()
			b, _ := os.ReadFile(logs)
			t.Fatalf("the manager exited before the local control plane came up: %v\n%s", cmd.ProcessState, tail(b))
		case <-time.After(5 * time.Minute):
			_ = cmd.Process.Kill()
			b, _ := os.ReadFile(logs)
			t.Fatalf("the local control plane did not come up\n%s", tail(b))
		}
		kids := children(cmd.Process.Pid)
		if len(kids) != 2 {
			t.Fatalf("children of the manager: %v, want etcd and kube-apiserver", kids)
		}
		return cmd, kids
	}

	cmd, kids := start()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range kids {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if alive(pid) {
			t.Errorf("%s (pid %d) outlived the killed manager", comm(pid), pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}

	// A second start comes up, and stops cleanly on SIGTERM.
	cmd, kids = start()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the manager did not stop on SIGTERM")
	}
	for _, pid := range kids {
		if alive(pid) {
			t.Errorf("%s (pid %d) still runs after the manager stopped", comm(pid), pid)
		}
	}
}

// tail is the end of a log, enough to see why.
func tail(b []byte) []byte {
	if len(b) > 4000 {
		return b[len(b)-4000:]
	}
	return b
}

// children are the etcd and kube-apiserver processes whose parent is pid.
func children(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, field := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(field); err == nil && (comm(c) == "etcd" || comm(c) == "kube-apiserver") {
				out = append(out, c)
			}
		}
	}
	return out
}

func comm(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	return strings.TrimSpace(string(b))
}

// alive reports whether pid runs (a zombie waiting for a reaper does not).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	fields := strings.Fields(string(b)[strings.LastIndex(string(b), ")")+1:])
	return len(fields) > 0 && fields[0] != "Z"
}
