// Package gametest starts the example game server (test/gameserver/game) as a subprocess of a test binary
// whose TestMain calls game.RunIfAsked: one SDK state per process, so a test runs as many as it wants.
package gametest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/playersessions/operator/test/gameserver/game"
)

// Process is a running game server.
type Process struct {
	Cmd *exec.Cmd
	// Port is where it takes players.
	Port string
	// Out is what it printed (the SDK's log and the game's).
	Out *Output
}

// Start starts a game server with env (GAMELIFT_SDK_* and the like) and quick health checks; it is killed
// when the test ends, unless it exited.
func Start(t testing.TB, env ...string) *Process {
	t.Helper()
	port := ""
	for port == "" { // the SDK's ProcessReady takes ports 1-60000; the ephemeral range goes beyond
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if p := l.Addr().(*net.TCPAddr).Port; p <= 60000 {
			port = fmt.Sprint(p)
		}
		l.Close()
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Dir = t.TempDir() // the SDK writes its log files under ./logs
	cmd.Env = append(os.Environ(), append([]string{game.ProcessEnv + "=1", game.PortEnv + "=" + port,
		"HEALTHCHECK_INTERVAL=300ms", "HEALTHCHECK_MAX_JITTER=10ms"}, env...)...)
	out := &Output{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	return &Process{Cmd: cmd, Port: port, Out: out}
}

// Output is what a game server process prints, safe to read while it writes.
type Output struct {
	mu sync.Mutex
	b  strings.Builder
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// PodEnv is the environment the kubelet would give pod's first container: its values, the Pod's fields it
// names (the downward API's metadata.name and metadata.namespace) and the Secret keys it names, read with
// c. It fails while a named Secret is missing, as the kubelet waits for it (CreateContainerConfigError).
func PodEnv(ctx context.Context, c client.Reader, pod *corev1.Pod) ([]string, error) {
	var env []string
	for _, v := range pod.Spec.Containers[0].Env {
		value := v.Value
		switch {
		case v.ValueFrom == nil:
		case v.ValueFrom.FieldRef != nil && v.ValueFrom.FieldRef.FieldPath == "metadata.name":
			value = pod.Name
		case v.ValueFrom.FieldRef != nil && v.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
			value = pod.Namespace
		case v.ValueFrom.SecretKeyRef != nil:
			s := &corev1.Secret{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: pod.Namespace, Name: v.ValueFrom.SecretKeyRef.Name}, s); err != nil {
				return nil, fmt.Errorf("env %s: %w", v.Name, err)
			}
			data, ok := s.Data[v.ValueFrom.SecretKeyRef.Key]
			if !ok {
				return nil, fmt.Errorf("env %s: Secret %s has no key %s", v.Name, s.Name, v.ValueFrom.SecretKeyRef.Key)
			}
			value = string(data)
		default:
			return nil, fmt.Errorf("env %s: a source the test kubelet does not resolve", v.Name)
		}
		env = append(env, v.Name+"="+value)
	}
	return env, nil
}
