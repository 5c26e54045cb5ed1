// Command manager runs the playersessions operator: the GameSession and PlayerSession controllers (on the
// elected leader only), sharing one informer cache with its field indexes.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/controllers"
	"github.com/playersessions/operator/internal/localcp"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		os.Exit(1)
	}
}

func run() error {
	opts := controllers.DefaultOptions()
	var (
		metricsAddr, probeAddr, leaderNamespace, localDir, crdDir string
		leaderElect                                               bool
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "Address of the Prometheus metrics endpoint (0 disables it).")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address of the health probes.")
	flag.BoolVar(&leaderElect, "leader-elect", true, "Elect a leader: only the leader runs the controllers.")
	flag.StringVar(&leaderNamespace, "leader-election-namespace", "", "Namespace of the leader-election Lease (required outside a cluster).")
	flag.DurationVar(&opts.PlayerSessionTimeout, "player-session-timeout", opts.PlayerSessionTimeout, "How long a RESERVED player session waits to be accepted before it is TIMEDOUT.")
	flag.DurationVar(&opts.Retention, "retention", opts.Retention, "How long player sessions and ended game sessions are kept after their game session ended.")
	flag.StringVar(&opts.Region, "region", opts.Region, "Region written into the GameLift-style ARNs.")
	flag.StringVar(&opts.AccountID, "account-id", opts.AccountID, "Account id written into fleet ARNs.")
	flag.IntVar(&opts.MaxConcurrentReconciles, "max-concurrent-reconciles", opts.MaxConcurrentReconciles, "Workers per controller.")
	flag.DurationVar(&opts.BatchWindow, "batch-window", opts.BatchWindow, "How long a game session waits after a player session change before deciding seats, so a burst costs one write.")
	var qps float64
	var burst int
	flag.Float64Var(&qps, "kube-api-qps", 200, "Client-side QPS limit towards kube-apiserver (every player session transition is a write).")
	flag.IntVar(&burst, "kube-api-burst", 400, "Client-side burst towards kube-apiserver.")
	flag.StringVar(&localDir, "local-control-plane", "", "Start an embedded local control plane (etcd and kube-apiserver from KUBEBUILDER_ASSETS) and write its kubeconfig into this folder.")
	flag.StringVar(&crdDir, "crd-dir", "config/crd/bases", "CRDs to install into the local control plane.")
	zapOpts := zap.Options{Development: true}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("setup")
	ctx := ctrl.SetupSignalHandler()

	var cfg = ctrl.GetConfigOrDie
	if localDir != "" {
		cp, err := localcp.Start(localcp.Options{CRDDirectoryPaths: []string{crdDir}, Dir: localDir})
		if err != nil {
			return err
		}
		defer func() { _ = cp.Stop() }()
		log.Info("Local control plane is up", "kubeconfig", cp.Kubeconfig)
		fmt.Printf("\nLocal control plane is up. In another shell:\n\n  export KUBECONFIG=%s\n  kubectl get gamesessions,playersessions -A\n\n", cp.Kubeconfig)
		cfg = func() *rest.Config { return cp.Config }
	}
	restCfg := cfg()
	restCfg.QPS, restCfg.Burst = float32(qps), burst
	return runManager(ctx, restCfg, opts, managerFlags{metricsAddr, probeAddr, leaderNamespace, leaderElect})
}

type managerFlags struct {
	metricsAddr, probeAddr, leaderNamespace string
	leaderElect                             bool
}

func runManager(ctx context.Context, cfg *rest.Config, opts controllers.Options, f managerFlags) error {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(gamev1.AddToScheme(scheme))

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsserver.Options{BindAddress: f.metricsAddr},
		HealthProbeBindAddress:  f.probeAddr,
		LeaderElection:          f.leaderElect,
		LeaderElectionID:        "playersessions-manager.game.playersessions.dev",
		LeaderElectionNamespace: f.leaderNamespace,
		Cache:                   cache.Options{DefaultTransform: controllers.StripForCache},
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	if err := controllers.Setup(ctx, mgr, clock.RealClock{}, opts); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	ctrl.Log.WithName("setup").Info("Starting manager", "playerSessionTimeout", opts.PlayerSessionTimeout, "retention", opts.Retention)
	return mgr.Start(ctx)
}
