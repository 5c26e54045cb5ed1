// Package testenv starts what the integration tests of the query API, the GameLift endpoint and the webhook
// run against: a local control plane (real etcd and kube-apiserver) with the repository's CRDs, and the
// manager. Only tests import it.
package testenv

import (
	"context"
	"net"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/playersessions/operator/internal/gamelift"
	"github.com/playersessions/operator/internal/index"
	"github.com/playersessions/operator/internal/localcp"
	"github.com/playersessions/operator/internal/manager"
)

// Path is elem joined to the repository's root directory.
func Path(elem ...string) string {
	_, file, _, _ := runtime.Caller(0) // internal/testenv/testenv.go
	return filepath.Join(append([]string{filepath.Dir(file), "..", ".."}, elem...)...)
}

// ControlPlane starts a local control plane with the CRDs of config/crd/bases, the admission policies of
// config/policy and o's other settings, in a
// directory of the test's; it stops when the test ends.
func ControlPlane(t testing.TB, o localcp.Options) *localcp.ControlPlane {
	t.Helper()
	ctrl.SetLogger(zap.New(zap.Level(zapcore.WarnLevel)))
	o.CRDDirectoryPaths = append(o.CRDDirectoryPaths, Path("config", "crd", "bases"))
	o.ManifestDirectoryPaths = append(o.ManifestDirectoryPaths, Path("config", "policy"))
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	cp, err := localcp.Start(o)
	if err != nil {
		t.Fatalf("%v (run the tests with make test, which builds kube-apiserver and etcd and sets KUBEBUILDER_ASSETS)", err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	return cp
}

// Manager is a manager a test started.
type Manager struct {
	ctrl.Manager
	// Index is the query API's index (nil when the query API and the GameLift endpoint are off).
	Index *index.Index
	// Stop stops the manager as a crash would, as far as the cluster can tell: its watches and servers
	// end and it does not release a Lease it holds. It returns once the manager has stopped.
	Stop func()
	// Done is closed once the manager has stopped: by Stop, or on its own (a leader that lost its Lease).
	Done <-chan struct{}
}

// StartManager runs the manager with opts against cp until the test ends (or Stop); it stops before the
// control plane does. With the Server SDK's WebSocket on, it creates the manager's namespace first (where
// the replica's Lease lives), as a deployment has it.
func StartManager(t testing.TB, cp *localcp.ControlPlane, opts manager.Options) *Manager {
	t.Helper()
	m, err := TryStartManager(t, cp, opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TryStartManager is StartManager returning an error rather than failing the test (it may be called from
// any goroutine: a soak restarts replicas while kube-apiserver may be down).
func TryStartManager(t testing.TB, cp *localcp.ControlPlane, opts manager.Options) (*Manager, error) {
	opts.SkipNameValidation = true // several managers in one test binary
	if opts.GameLiftSDKAddr != "" {
		ns := opts.GameLiftKeyNamespace
		if ns == "" {
			ns = gamelift.DefaultKeyNamespace
		}
		c, err := client.New(cp.Config, client.Options{})
		if err != nil {
			return nil, err
		}
		if err := c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	mgr, index, err := manager.New(ctx, cp.Config, opts)
	if err != nil {
		cancel()
		return nil, err
	}
	done := make(chan error, 1)
	stopped := make(chan struct{})
	go func() {
		done <- mgr.Start(ctx)
		close(stopped)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && !opts.LeaderElect {
				// A leader stopped this way reports its lost election, which is what Stop means.
				t.Errorf("manager: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &Manager{Manager: mgr, Index: index, Stop: stop, Done: stopped}, nil
}

// FreePort is a TCP port on 127.0.0.1 that nothing listens on now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
