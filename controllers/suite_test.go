package controllers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/indexes"
	"github.com/playersessions/operator/internal/localcp"
)

// The envtest control plane (real etcd and kube-apiserver) is started by the first integration test that
// needs it and stopped after all tests.
var (
	envOnce   sync.Once
	envCP     *localcp.ControlPlane
	envErr    error
	envScheme = runtime.NewScheme()
	nsCounter atomic.Int64
)

func TestMain(m *testing.M) {
	ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.Level(zapLevel())))
	code := m.Run()
	if envCP != nil {
		_ = envCP.Stop()
	}
	os.Exit(code)
}

func zapLevel() zapcore.Level {
	if os.Getenv("TEST_VERBOSE_LOGS") != "" {
		return -1
	}
	return 1 // warnings and errors only
}

// controlPlane returns an admin client of the shared envtest control plane.
func controlPlane(t *testing.T) client.Client {
	t.Helper()
	envOnce.Do(func() {
		_ = clientgoscheme.AddToScheme(envScheme)
		_ = gamev1.AddToScheme(envScheme)
		envCP, envErr = localcp.Start(localcp.Options{CRDDirectoryPaths: []string{filepath.Join("..", "config", "crd", "bases")}})
	})
	if envErr != nil {
		t.Fatalf("envtest: %v (run the tests with make test, which builds kube-apiserver and etcd and sets KUBEBUILDER_ASSETS)", envErr)
	}
	c, err := client.New(envCP.Config, client.Options{Scheme: envScheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// namespace creates a fresh namespace for one test.
func namespace(t *testing.T, c client.Client) string {
	t.Helper()
	name := fmt.Sprintf("test-%d", nsCounter.Add(1))
	if err := c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	return name
}

// startManager runs the controllers against the control plane until stop is called or the test ends.
func startManager(t *testing.T, opts Options) (stop func()) {
	t.Helper()
	controlPlane(t)
	mgr, err := ctrl.NewManager(envCP.Config, ctrl.Options{
		Scheme:                 envScheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{DefaultTransform: indexes.StripForCache},
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := Setup(ctx, mgr, clock.RealClock{}, opts, nil); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("manager: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
