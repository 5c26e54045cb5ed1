// Package manager assembles the one binary from its flags (BindFlags): one informer cache with its field
// indexes and the player-session index; the controllers and the history store's retention (on the elected
// leader only); and on every replica the query API server, the GameLift endpoint and the admission
// webhook, as the options turn them on; the metrics and health probes.
package manager

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/discovery"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/controllers"
	"github.com/playersessions/operator/internal/agones"
	"github.com/playersessions/operator/internal/gamelift"
	"github.com/playersessions/operator/internal/gameservers"
	"github.com/playersessions/operator/internal/history"
	"github.com/playersessions/operator/internal/index"
	"github.com/playersessions/operator/internal/indexes"
	"github.com/playersessions/operator/internal/metrics"
	"github.com/playersessions/operator/internal/query"
	"github.com/playersessions/operator/internal/relists"
	"github.com/playersessions/operator/internal/replicas"
	"github.com/playersessions/operator/internal/search"
	"github.com/playersessions/operator/internal/serversdk"
	"github.com/playersessions/operator/internal/transitions"
	pswebhook "github.com/playersessions/operator/internal/webhook"
)

// Options configure the manager.
type Options struct {
	Controllers controllers.Options
	Clock       clock.Clock

	MetricsAddr, ProbeAddr string
	// MetricsSecure serves the metrics over HTTPS to authenticated and authorized clients only (a
	// TokenReview, then a SubjectAccessReview for GET /metrics: the ClusterRole
	// playersessions-metrics-reader grants it), as kubebuilder scaffolds it.
	MetricsSecure bool
	// PprofAddr serves net/http/pprof (empty: off).
	PprofAddr               string
	LeaderElect             bool
	LeaderElectionNamespace string
	// LeaseDuration, RenewDeadline and RetryPeriod time the leader election (0: controller-runtime's 15 s,
	// 10 s and 2 s). A leader that dies without releasing its Lease is replaced within about LeaseDuration.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// SkipNameValidation lets tests run several managers in one process.
	SkipNameValidation bool
	// DisableControllers runs only the cache, its indexes and the servers (benchmarks of the read path).
	DisableControllers bool

	// QueryPort enables the query API server on QueryBindAddress:QueryPort (0: off).
	QueryPort        int
	QueryBindAddress net.IP
	// QueryCertDir holds tls.crt/tls.key (generated self-signed when missing).
	QueryCertDir string
	// QueryKubeconfig is for delegated authentication and authorization; empty: in-cluster.
	QueryKubeconfig string
	// QueryTokenKey signs continue tokens; replicas behind one Service must share it. When empty, it is read
	// from (or, by the first replica, created in) the Secret QueryTokenKeySecret; random when that is empty
	// too, or its namespace does not exist (a single local manager).
	QueryTokenKey       []byte
	QueryTokenKeySecret types.NamespacedName
	// QuerySnapshotWindow is how long a paged list's snapshot stays readable.
	QuerySnapshotWindow time.Duration
	// QueryMaxWatches and QueryMaxWatchesPerUser bound the query API's open watches, in all and per user
	// (0: query.DefaultMaxWatches, query.DefaultMaxWatchesPerUser).
	QueryMaxWatches, QueryMaxWatchesPerUser int
	// QueryFreshnessTimeout is how long a request for a snapshot newer than this replica's index (a token
	// from a replica further ahead) waits for it before 504 Too large resource version (0: 3 s).
	QueryFreshnessTimeout time.Duration

	// DisableAgones turns the Agones integration off (no discovery, no GameServer watches).
	DisableAgones bool
	// AgonesDiscoveryInterval is how often the manager looks for Agones until it is installed (10 s when 0).
	AgonesDiscoveryInterval time.Duration

	// GameLiftAddr enables the GameLift-compatible endpoint on this address (empty: off).
	GameLiftAddr string
	// GameLiftReadTimeout, GameLiftIdleTimeout and GameLiftMaxConnections limit its clients (0: defaults).
	GameLiftReadTimeout, GameLiftIdleTimeout time.Duration
	GameLiftMaxConnections                   int
	// GameLiftKeyNamespace is the namespace of the GameLift access-key Secrets, the only Secrets the manager
	// reads (empty: gamelift.DefaultKeyNamespace, the manager's).
	GameLiftKeyNamespace string
	// GameLiftSDKAddr enables the GameLift Server SDK's WebSocket (game server processes) on this address
	// (empty: off; it needs the GameLift endpoint, GameLiftAddr). GameLiftSDKEndpoint is the URL that
	// RegisterCompute hands out for it (empty: ws(s)://127.0.0.1:PORT of GameLiftSDKAddr, for a local run).
	GameLiftSDKAddr, GameLiftSDKEndpoint string
	// ReplicaName names this replica's Lease (replicas.LeaseName) among the running replicas' (empty: the
	// host name), and ReplicaLeaseDuration is its duration (0: replicas.DefaultLeaseDuration). With the
	// SDK's WebSocket on, every replica holds one in GameLiftKeyNamespace, and the leader finds a process
	// lost when the replica holding its connection stops (Controllers.ProcessReconnectGrace).
	ReplicaName          string
	ReplicaLeaseDuration time.Duration
	// GameLiftSDKCAFile is the CA of the SDK WebSocket's certificate that game server Pods get, to trust it
	// (empty: GameLiftCertDir's ca.crt, when there is one; none without TLS).
	GameLiftSDKCAFile string
	// GameLiftComputeTokenTTL is how long a compute auth token is valid (0: 3 hours, as GameLift's).
	GameLiftComputeTokenTTL time.Duration
	// GameLiftCertDir holds the endpoint's tls.crt and tls.key (empty: plain HTTP).
	GameLiftCertDir string
	// GameLiftQPS and GameLiftBurst limit the endpoint's own client towards kube-apiserver (0: 200 and
	// twice the QPS). The endpoint does not share the controllers' limit: callers outside the cluster
	// must not be able to starve the controllers (timeouts, releases) of their requests.
	GameLiftQPS   float32
	GameLiftBurst int
	// GameLiftRatePerKey and GameLiftBurstPerKey bound one access key's calls on a replica (0: the endpoint's
	// defaults); beyond them the endpoint answers ThrottlingException.
	GameLiftRatePerKey  float64
	GameLiftBurstPerKey int

	// HistoryStore is the connection string of the history store (a PostgreSQL-compatible database; empty:
	// none, retention runs on the custom resources). Ended player sessions move there HistoryGrace
	// (Controllers.HistoryGrace) after their game session ended; describe calls merge both tiers.
	HistoryStore string

	// WebhookPort enables the PlayerSession admission webhook on WebhookHost:WebhookPort (0: off), serving
	// WebhookCertDir's tls.crt/tls.key.
	WebhookPort    int
	WebhookHost    string
	WebhookCertDir string
	// WebhookClientCAName, when set, is a file in WebhookCertDir holding the CA of kube-apiserver's client
	// certificate for webhooks: the webhook then answers only a client presenting a certificate it signed
	// (kube-apiserver's admission configuration gives it one; docs/security.md). Empty: any client.
	WebhookClientCAName string
}

// sdkEndpoint is the URL of the Server SDK's WebSocket that RegisterCompute hands out.
func sdkEndpoint(o Options) string {
	if o.GameLiftSDKEndpoint != "" || o.GameLiftSDKAddr == "" {
		return o.GameLiftSDKEndpoint
	}
	scheme := "ws://"
	if o.GameLiftCertDir != "" {
		scheme = "wss://"
	}
	host, port, err := net.SplitHostPort(o.GameLiftSDKAddr)
	if err != nil {
		return scheme + o.GameLiftSDKAddr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return scheme + net.JoinHostPort(host, port)
}

// historyOf is store as the lists' history tier: nil (no tier) when there is no store, not a nil *Store.
func historyOf(store *history.Store) index.History {
	if store == nil {
		return nil
	}
	return store
}

// gameSessionHistoryOf is store as DescribeGameSessions' history tier (nil when there is no store).
func gameSessionHistoryOf(store *history.Store) gamelift.GameSessionHistory {
	if store == nil {
		return nil
	}
	return store
}

// metricsOptions serves the metrics at o.MetricsAddr, behind authentication and authorization with
// o.MetricsSecure.
func metricsOptions(o Options) metricsserver.Options {
	m := metricsserver.Options{BindAddress: o.MetricsAddr}
	if o.MetricsSecure {
		m.SecureServing, m.FilterProvider = true, filters.WithAuthenticationAndAuthorization
	}
	return m
}

// nonZero is d, or nil (the default) when d is 0.
func nonZero(d time.Duration) *time.Duration {
	if d == 0 {
		return nil
	}
	return &d
}

// Scheme knows the built-in kinds and game.playersessions.dev.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(gamev1.AddToScheme(s))
	return s
}

// New builds the manager. The returned index is the query API's (nil when the query API is off).
func New(ctx context.Context, cfg *rest.Config, o Options) (ctrl.Manager, *index.Index, error) {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.GameLiftKeyNamespace == "" {
		o.GameLiftKeyNamespace = gamelift.DefaultKeyNamespace
	}
	o.Controllers.ComputeTokenTTL = o.GameLiftComputeTokenTTL
	if o.GameLiftSDKCAFile == "" && o.GameLiftCertDir != "" {
		if _, err := os.Stat(filepath.Join(o.GameLiftCertDir, "ca.crt")); err == nil {
			o.GameLiftSDKCAFile = filepath.Join(o.GameLiftCertDir, "ca.crt")
		}
	}
	if o.GameLiftSDKCAFile != "" && o.GameLiftSDKAddr != "" {
		ca, err := os.ReadFile(o.GameLiftSDKCAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("reading the CA for game server Pods: %w", err)
		}
		o.Controllers.ComputeCA = ca
	}
	if o.GameLiftSDKAddr != "" {
		o.Controllers.ReplicaNamespace = o.GameLiftKeyNamespace
		if o.ReplicaName == "" {
			o.ReplicaName, _ = os.Hostname()
		}
	}
	// The player sessions' index (the query API's and the GameLift endpoint's) and the game sessions'
	// (SearchGameSessions and the query API's gamesessions), fed by the cache, whose informers of their
	// types tell them when they relist.
	var ix *index.Index
	var games *search.Index
	informers := relists.Informers{Lists: func(kind string) prometheus.Counter { return metrics.Relists.WithLabelValues(kind) }}
	if o.QueryPort != 0 || o.GameLiftAddr != "" {
		window := o.QuerySnapshotWindow
		if window == 0 {
			window = 5 * time.Minute
		}
		ix = index.NewIndex(o.Clock, window)
		if o.QueryFreshnessTimeout > 0 {
			ix.SetFreshnessTimeout(o.QueryFreshnessTimeout)
		}
		games = search.NewIndex()
		informers.Observe(&gamev1.PlayerSession{}, ix.Relists())
		informers.Observe(&gamev1.GameSession{}, games.Relists())
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  Scheme(),
		Metrics:                 metricsOptions(o),
		HealthProbeBindAddress:  o.ProbeAddr,
		PprofBindAddress:        o.PprofAddr,
		LeaderElection:          o.LeaderElect,
		LeaderElectionID:        "playersessions-manager.game.playersessions.dev",
		LeaderElectionNamespace: o.LeaderElectionNamespace,
		LeaseDuration:           nonZero(o.LeaseDuration),
		RenewDeadline:           nonZero(o.RenewDeadline),
		RetryPeriod:             nonZero(o.RetryPeriod),
		Cache: cache.Options{DefaultTransform: indexes.StripForCache, NewInformer: informers.NewInformer, ByObject: map[client.Object]cache.ByObject{
			// Only access-key Secrets are cached, and only in the key namespace (the one namespace where the
			// manager's RBAC may read Secrets).
			&corev1.Secret{}: {Namespaces: map[string]cache.Config{o.GameLiftKeyNamespace: {}},
				Label: labels.SelectorFromSet(labels.Set{gamelift.AccessKeyLabel: "true"})},
			// Only the game server Pods that opted in to the GameLift Server SDK (controllers/pod_controller.go).
			&corev1.Pod{}: {Label: labels.SelectorFromSet(labels.Set{gamev1.GameLiftSDKLabel: "true"})},
			// Only the replicas' Leases (internal/replicas), in the same namespace.
			&coordinationv1.Lease{}: {Namespaces: map[string]cache.Config{o.GameLiftKeyNamespace: {}},
				Label: labels.SelectorFromSet(labels.Set{replicas.Label: "true"})},
		}},
		Controller: config.Controller{SkipNameValidation: ptr.To(o.SkipNameValidation)},
		WebhookServer: webhook.NewServer(webhook.Options{Host: o.WebhookHost, Port: o.WebhookPort, CertDir: o.WebhookCertDir,
			ClientCAName: o.WebhookClientCAName}),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("creating the manager: %w", err)
	}
	var store *history.Store
	if o.HistoryStore != "" {
		if store, err = history.Open(ctx, o.HistoryStore, o.Clock, o.Controllers.Retention); err != nil {
			return nil, nil, err
		}
		o.Controllers.History = store
		if err := mgr.Add(&history.Retention{Store: store, Clock: o.Clock}); err != nil {
			return nil, nil, err
		}
		if err := mgr.Add(closeOnStop{store}); err != nil {
			return nil, nil, err
		}
	}
	var ag *agones.Client
	if !o.DisableAgones {
		if ag, err = agones.NewClient(mgr.GetConfig(), mgr.GetCache(), mgr.GetAPIReader()); err != nil {
			return nil, nil, err
		}
		disco, err := discovery.NewDiscoveryClientForConfig(mgr.GetConfig())
		if err != nil {
			return nil, nil, err
		}
		if err := mgr.Add(&agones.Discoverer{Client: ag, Discovery: disco, Interval: o.AgonesDiscoveryInterval}); err != nil {
			return nil, nil, err
		}
	}
	var grace time.Duration
	if o.HistoryStore != "" {
		grace = o.Controllers.HistoryGrace
	}
	metrics.Register(mgr.GetCache(), grace)
	if o.DisableControllers {
		if err := indexes.Setup(ctx, mgr.GetFieldIndexer()); err != nil {
			return nil, nil, err
		}
	} else if err := controllers.Setup(ctx, mgr, o.Clock, o.Controllers, ag); err != nil {
		return nil, nil, err
	}
	if o.WebhookPort != 0 {
		pods := &pswebhook.PodDefaulter{WithCA: len(o.Controllers.ComputeCA) > 0}
		if o.GameLiftSDKAddr != "" {
			pods.SDKEndpoint = sdkEndpoint(o)
		}
		if err := pswebhook.Setup(mgr, o.Clock, o.Controllers.PlayerSessionTimeout, pods); err != nil {
			return nil, nil, err
		}
	}
	if o.ProbeAddr != "" && o.ProbeAddr != "0" {
		if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
			return nil, nil, err
		}
		if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
			return nil, nil, err
		}
	}
	if o.QueryPort == 0 && o.GameLiftAddr == "" {
		return mgr, nil, nil
	}
	if err := index.Feed(ctx, mgr.GetCache(), ix); err != nil {
		return nil, nil, err
	}
	key := o.QueryTokenKey
	if len(key) == 0 && o.QueryTokenKeySecret.Name != "" {
		direct, err := client.New(cfg, client.Options{Scheme: mgr.GetScheme()})
		if err != nil {
			return nil, nil, err
		}
		if key, err = index.EnsureTokenKey(ctx, direct, o.QueryTokenKeySecret); err != nil {
			if !apierrors.IsNotFound(err) {
				return nil, nil, err
			}
			ctrl.Log.WithName("setup").Info("No namespace for the shared continue-token key; using a key of this replica only", "secret", o.QueryTokenKeySecret)
		}
	}
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
	}
	tokens := index.NewTokens(key)
	if err := search.Feed(ctx, mgr.GetCache(), games); err != nil {
		return nil, nil, err
	}
	if o.QueryPort != 0 {
		server, err := query.NewServer(query.ServerOptions{
			BindAddress: o.QueryBindAddress, Port: o.QueryPort, CertDir: o.QueryCertDir, Kubeconfig: o.QueryKubeconfig,
			History: historyOf(store), MaxWatches: o.QueryMaxWatches, MaxWatchesPerUser: o.QueryMaxWatchesPerUser,
		}, ix, games, tokens)
		if err != nil {
			return nil, nil, fmt.Errorf("creating the query API server: %w", err)
		}
		if err := mgr.Add(server); err != nil {
			return nil, nil, err
		}
		if o.ProbeAddr != "" && o.ProbeAddr != "0" { // not ready to kube-apiserver's aggregator before it can authenticate it
			if err := mgr.AddReadyzCheck("query-authentication", server.AuthenticationReady); err != nil {
				return nil, nil, err
			}
		}
	}
	if o.GameLiftAddr != "" {
		if err := mgr.GetFieldIndexer().IndexField(ctx, &corev1.Secret{}, gamelift.IndexAccessKeyID, gamelift.AccessKeyIDOf); err != nil {
			return nil, nil, err
		}
		if err := mgr.GetFieldIndexer().IndexField(ctx, &gamev1.Compute{}, gameservers.IndexTokenHash, gameservers.TokenHashesOf); err != nil {
			return nil, nil, err
		}
		glCfg := rest.CopyConfig(cfg)
		glCfg.QPS, glCfg.Burst = o.GameLiftQPS, o.GameLiftBurst
		if glCfg.QPS == 0 {
			glCfg.QPS = 200
		}
		if glCfg.Burst == 0 {
			glCfg.Burst = int(2 * glCfg.QPS)
		}
		glCfg.RateLimiter = nil
		placementChanges := &index.Signal{}
		if err := index.SignalChanges(ctx, mgr.GetCache(), &gamev1.GameSessionPlacement{}, placementChanges); err != nil {
			return nil, nil, err
		}
		gameSessionChanges := &index.Signal{}
		if err := index.SignalChanges(ctx, mgr.GetCache(), &gamev1.GameSession{}, gameSessionChanges); err != nil {
			return nil, nil, err
		}
		glClient, err := client.New(glCfg, client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(), Cache: &client.CacheOptions{Reader: mgr.GetCache()}})
		if err != nil {
			return nil, nil, err
		}
		endpoint := &gamelift.Server{
			Addr: o.GameLiftAddr, Client: client.WithFieldOwner(glClient, gamelift.FieldManager), Reader: mgr.GetCache(), Index: ix, Search: games, Tokens: tokens, History: historyOf(store), GameSessionHistory: gameSessionHistoryOf(store),
			Clock: o.Clock, ARNs: o.Controllers.ARNs, Agones: ag, GameSessionChanges: gameSessionChanges, PlacementChanges: placementChanges, KeyNamespace: o.GameLiftKeyNamespace, Recorder: mgr.GetEventRecorder("gamelift-endpoint"),
			ReadTimeout: o.GameLiftReadTimeout, WriteTimeout: o.GameLiftReadTimeout, IdleTimeout: o.GameLiftIdleTimeout, MaxConnections: o.GameLiftMaxConnections, CertDir: o.GameLiftCertDir,
			RatePerKey: o.GameLiftRatePerKey, BurstPerKey: o.GameLiftBurstPerKey,
			APIReader: mgr.GetAPIReader(), SDKEndpoint: sdkEndpoint(o), ComputeTokenTTL: o.GameLiftComputeTokenTTL,
		}
		if err := mgr.Add(endpoint); err != nil {
			return nil, nil, err
		}
		if o.GameLiftSDKAddr != "" {
			backend := &gameservers.Backend{Client: client.WithFieldOwner(glClient, gamelift.FieldManager), Reader: mgr.GetCache(),
				APIReader: mgr.GetAPIReader(), Clock: o.Clock, AccessKey: endpoint.AccessKey,
				Players:  &transitions.Mover{Client: glClient, Index: ix, Tokens: tokens, Wait: gamelift.DefaultDecisionTimeout},
				Describe: endpoint.PlayerSessionsOf, SDKEndpoint: sdkEndpoint(o), TokenTTL: o.GameLiftComputeTokenTTL,
				Replica: replicas.LeaseName(o.ReplicaName), Holder: replicas.NewHolder(), Recorder: mgr.GetEventRecorder("gamelift-sdk")}
			direct, err := client.New(cfg, client.Options{Scheme: mgr.GetScheme()})
			if err != nil {
				return nil, nil, err
			}
			if err := mgr.Add(&replicas.Heartbeat{Client: direct, Namespace: o.GameLiftKeyNamespace, Name: backend.Replica, Holder: backend.Holder,
				Duration: o.ReplicaLeaseDuration, Clock: o.Clock}); err != nil {
				return nil, nil, err
			}
			// Every replica pushes the game sessions placed on the processes connected to it, and records the
			// connections it lost that its Computes still show open; it reads claims.
			if err := onChange(ctx, mgr.GetCache(), &gamev1.GameSession{}, func(gs *gamev1.GameSession) { backend.OnGameSession(ctx, gs) }); err != nil {
				return nil, nil, err
			}
			if err := onChange(ctx, mgr.GetCache(), &gamev1.Compute{}, func(c *gamev1.Compute) { backend.OnCompute(ctx, c) }); err != nil {
				return nil, nil, err
			}
			if _, err := mgr.GetCache().GetInformer(ctx, &gamev1.ProcessClaim{}); err != nil {
				return nil, nil, err
			}
			if err := mgr.Add(&serversdk.Listener{Addr: o.GameLiftSDKAddr, CertDir: o.GameLiftCertDir,
				Server: &serversdk.Server{Auth: backend, Actions: backend.Actions(), Hooks: backend, Clock: o.Clock}}); err != nil {
				return nil, nil, err
			}
		}
	}
	return mgr, ix, nil
}

// closeOnStop closes the history store's connections when the manager stops, on every replica (each
// opened its own pool). A manager started again in the same process (a replica restarted after it lost
// its Lease) would otherwise leave the old pool's connections and health checks behind: the soak found 140
// such pools after an hour.
type closeOnStop struct{ store *history.Store }

func (c closeOnStop) Start(ctx context.Context) error {
	<-ctx.Done()
	c.store.Close()
	return nil
}

func (closeOnStop) NeedLeaderElection() bool { return false }

// onChange calls fn with every object of obj's kind the cache adds or updates.
func onChange[T client.Object](ctx context.Context, c cache.Cache, obj T, fn func(T)) error {
	inf, err := c.GetInformer(ctx, obj)
	if err != nil {
		return err
	}
	on := func(o any) {
		if t, ok := o.(T); ok {
			fn(t)
		}
	}
	_, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: on, UpdateFunc: func(_, o any) { on(o) }})
	return err
}
