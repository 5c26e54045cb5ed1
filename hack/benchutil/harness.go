package benchutil

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/controllers"
	"github.com/playersessions/operator/internal/index"
	"github.com/playersessions/operator/internal/localcp"
	"github.com/playersessions/operator/internal/manager"
)

// ControlPlane starts a local control plane with the repository's CRDs (config/crd/bases: the programs run
// from the repository's root, as make does) and o's other settings. With the query API (QueryPort) and no
// Dir, its kubeconfig goes into a temporary folder. stop stops it and removes that folder.
func ControlPlane(o localcp.Options) (cp *localcp.ControlPlane, stop func(), err error) {
	o.CRDDirectoryPaths = append([]string{"config/crd/bases"}, o.CRDDirectoryPaths...)
	temp := ""
	if o.QueryPort != 0 && o.Dir == "" {
		if temp, err = os.MkdirTemp("", "bench-"); err != nil {
			return nil, nil, err
		}
		o.Dir = temp
	}
	removeTemp := func() {
		if temp != "" {
			_ = os.RemoveAll(temp)
		}
	}
	if cp, err = localcp.Start(o); err != nil {
		removeTemp()
		return nil, nil, err
	}
	return cp, func() { _ = cp.Stop(); removeTemp() }, nil
}

// ManagerOptions are the manager's options for a benchmark: the controllers' defaults, no metrics or probe
// listeners, and no per-key rate limit on the GameLift endpoint (the benchmarks drive it from one key, at
// more than the default 100 calls per second, to measure the endpoint, not the throttle).
func ManagerOptions() manager.Options {
	return manager.Options{Controllers: controllers.DefaultOptions(), MetricsAddr: "0", ProbeAddr: "0", GameLiftRatePerKey: 1e6}
}

// Manager is a manager a benchmark started.
type Manager struct {
	ctrl.Manager
	// Index is the query API's and the GameLift endpoint's index (nil when both are off).
	Index *index.Index
	// Stop stops the manager and returns once it has stopped.
	Stop func()
}

// StartManager builds the manager with opts on cfg and runs it until Stop or ctx ends. It returns once the
// manager's cache has synced and, with the webhook on, once its server answers (no create goes unchecked).
func StartManager(ctx context.Context, cfg *rest.Config, opts manager.Options) (*Manager, error) {
	ctx, cancel := context.WithCancel(ctx)
	mgr, ix, err := manager.New(ctx, cfg, opts)
	if err != nil {
		cancel()
		return nil, err
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(ctx) }()
	stop := func() { cancel(); <-done }
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		stop()
		return nil, fmt.Errorf("the manager's cache did not sync")
	}
	if opts.WebhookPort != 0 {
		if err := WaitFor(ctx, 30*time.Second, func() bool { return mgr.GetWebhookServer().StartedChecker()(nil) == nil }); err != nil {
			stop()
			return nil, fmt.Errorf("webhook server: %w", err)
		}
	}
	return &Manager{Manager: mgr, Index: ix, Stop: stop}, nil
}

// ControlPlaneWithQueryAPI starts a control plane (ControlPlane) with the query API aggregated on a free
// port, and sets opts to serve it there.
func ControlPlaneWithQueryAPI(o localcp.Options, opts *manager.Options) (cp *localcp.ControlPlane, stop func(), err error) {
	if o.QueryPort, err = FreePort(); err != nil {
		return nil, nil, err
	}
	if cp, stop, err = ControlPlane(o); err != nil {
		return nil, nil, err
	}
	opts.QueryPort, opts.QueryBindAddress, opts.QueryCertDir, opts.QueryKubeconfig = o.QueryPort, net.ParseIP("127.0.0.1"), cp.ServingCertDir, cp.Kubeconfig
	return cp, stop, nil
}

// FreeAddr returns a loopback address with a free TCP port, for a server to listen on.
func FreeAddr() (string, error) {
	port, err := FreePort()
	return fmt.Sprintf("127.0.0.1:%d", port), err
}

// FreePort returns a TCP port free on the loopback address.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Observe runs an informer of player sessions of its own on cfg (the players' view, not the manager's) that
// calls seen with each player session added or updated, as it becomes visible, and returns once it has
// synced, with an admin client on cfg. Both are limited to 1000 QPS, above anything a benchmark sends.
func Observe(ctx context.Context, cfg *rest.Config, seen func(*gamev1.PlayerSession)) (client.Client, error) {
	ocfg := rest.CopyConfig(cfg)
	ocfg.QPS, ocfg.Burst = 1000, 2000
	c, err := client.New(ocfg, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		return nil, err
	}
	obs, err := cache.New(ocfg, cache.Options{Scheme: manager.Scheme()})
	if err != nil {
		return nil, err
	}
	inf, err := obs.GetInformer(ctx, &gamev1.PlayerSession{})
	if err != nil {
		return nil, err
	}
	record := func(o any) {
		if ps, ok := o.(*gamev1.PlayerSession); ok {
			seen(ps)
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: record, UpdateFunc: func(_, o any) { record(o) }}); err != nil {
		return nil, err
	}
	go func() { _ = obs.Start(ctx) }()
	obs.WaitForCacheSync(ctx)
	return c, nil
}
