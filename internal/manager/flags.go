package manager

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/playersessions/operator/controllers"
	"github.com/playersessions/operator/internal/computes"
	"github.com/playersessions/operator/internal/gamelift"
	"github.com/playersessions/operator/internal/index"
	"github.com/playersessions/operator/internal/query"
	"github.com/playersessions/operator/internal/replicas"
)

// Flags are the manager's command-line flags. cmd/manager (the production binary) and cmd/manager-local
// (the same manager on an embedded local control plane, for make run) bind the same set.
type Flags struct {
	o                                       Options
	queryBind, tokenKeyFile, tokenKeySecret string
	qps, glQPS                              float64
	burst                                   int
	zap                                     zap.Options
}

// BindFlags defines the manager's flags in fs, with the defaults of a deployment in a cluster.
func BindFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{o: Options{Controllers: controllers.DefaultOptions()}, zap: zap.Options{Development: true}}
	o, c := &f.o, &f.o.Controllers
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", ":8080", "Address of the Prometheus metrics endpoint (0 disables it).")
	fs.BoolVar(&o.MetricsSecure, "metrics-secure", true, "Serve the metrics over HTTPS to clients that authenticate (a bearer token, checked with a TokenReview) and may GET /metrics (a SubjectAccessReview; the ClusterRole playersessions-metrics-reader grants it). false: plain HTTP to anyone who reaches the address.")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8081", "Address of the health probes.")
	fs.StringVar(&o.PprofAddr, "pprof-bind-address", "", "Address of the net/http/pprof endpoints (off unless set).")
	fs.BoolVar(&o.LeaderElect, "leader-elect", true, "Elect a leader: only the leader runs the controllers.")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader-election Lease (required outside a cluster).")
	fs.DurationVar(&o.LeaseDuration, "leader-elect-lease-duration", 15*time.Second, "How long a leader's Lease lasts without renewal: a leader that dies is replaced within about this long.")
	fs.DurationVar(&o.RenewDeadline, "leader-elect-renew-deadline", 10*time.Second, "How long the leader keeps trying to renew its Lease before it steps down.")
	fs.DurationVar(&o.RetryPeriod, "leader-elect-retry-period", 2*time.Second, "How often candidates try to acquire, and the leader to renew, the Lease.")
	fs.DurationVar(&c.PlayerSessionTimeout, "player-session-timeout", c.PlayerSessionTimeout, "How long a RESERVED player session waits to be accepted before it is TIMEDOUT.")
	fs.DurationVar(&c.Retention, "retention", c.Retention, "How long player sessions and ended game sessions are kept after their game session ended.")
	fs.StringVar(&c.Region, "region", c.Region, "Region written into the GameLift-style ARNs.")
	fs.StringVar(&c.AccountID, "account-id", c.AccountID, "Account id written into fleet ARNs.")
	fs.IntVar(&c.MaxConcurrentReconciles, "max-concurrent-reconciles", c.MaxConcurrentReconciles, "Workers per controller.")
	fs.DurationVar(&c.BatchWindow, "batch-window", c.BatchWindow, "How long a game session waits after a player session change before deciding seats, so a burst costs one write.")
	fs.DurationVar(&c.ReleaseWindow, "release-window", c.ReleaseWindow, "How long a game session may wait after a player session ended before it frees the seat, when nobody waits for one.")
	fs.DurationVar(&c.ProcessActivationTimeout, "gamelift-sdk-activation-timeout", c.ProcessActivationTimeout, "How long a game session placed on a GameLift Server SDK process may wait for the game's ActivateGameSession before it becomes ERROR.")
	fs.DurationVar(&c.AgonesAllocationTimeout, "agones-allocation-timeout", c.AgonesAllocationTimeout, "How long a game session on an Agones fleet keeps trying to allocate a GameServer before it becomes ERROR.")
	fs.BoolVar(&o.DisableAgones, "disable-agones", false, "Turn the Agones integration off (by default the manager binds game sessions with spec.agones once it discovers Agones).")
	fs.DurationVar(&o.AgonesDiscoveryInterval, "agones-discovery-interval", 10*time.Second, "How often the manager looks for Agones until it is installed.")
	fs.BoolVar(&c.RetainDeclared, "retain-declared", c.RetainDeclared, "Keep, when its retention ends, an object an applier declares (condition RetentionEnded and an event instead of a deletion).")
	fs.Func("declarative-managers", "Comma-separated field managers of appliers: an object on which one owns a spec field is declared (default "+strings.Join(c.DeclarativeManagers, ",")+").", func(v string) error {
		c.DeclarativeManagers = splitList(v)
		return nil
	})
	fs.Func("declarative-markers", "Comma-separated label or annotation keys with which appliers track objects: an object carrying one is declared (default "+strings.Join(c.DeclarativeMarkers, ",")+").", func(v string) error {
		c.DeclarativeMarkers = splitList(v)
		return nil
	})
	fs.Float64Var(&f.qps, "kube-api-qps", 200, "Client-side QPS limit towards kube-apiserver (every player session transition is a write).")
	fs.IntVar(&f.burst, "kube-api-burst", 400, "Client-side burst towards kube-apiserver.")
	fs.IntVar(&o.QueryPort, "query-port", 8443, "HTTPS port of the query API server (query.playersessions.dev); 0 disables it.")
	fs.StringVar(&f.queryBind, "query-bind-address", "0.0.0.0", "Address of the query API server.")
	fs.StringVar(&o.QueryCertDir, "query-cert-dir", "/tmp/playersessions-query", "Folder with the query API server's tls.crt and tls.key (self-signed ones are generated when missing).")
	fs.StringVar(&o.QueryKubeconfig, "query-kubeconfig", os.Getenv("KUBECONFIG"), "Kubeconfig for the query API server's delegated authentication and authorization (empty: in-cluster).")
	fs.StringVar(&f.tokenKeyFile, "query-token-key-file", "", "File with the key that signs continue tokens (overrides --query-token-key-secret).")
	fs.StringVar(&f.tokenKeySecret, "query-token-key-secret", "playersessions-system/playersessions-query-token-key", "NAMESPACE/NAME of the Secret holding the continue-token key that replicas share; the first replica creates it (empty: a random key per replica).")
	fs.DurationVar(&o.QuerySnapshotWindow, "query-snapshot-window", 5*time.Minute, "How long a paged list's snapshot stays readable; older continue tokens get 410 Expired.")
	fs.IntVar(&o.QueryMaxWatches, "query-max-watches", query.DefaultMaxWatches, "Watches of the query API open at once on this replica; more are refused with 429.")
	fs.IntVar(&o.QueryMaxWatchesPerUser, "query-max-watches-per-user", query.DefaultMaxWatchesPerUser, "Watches of the query API one user may hold open at once on this replica; more are refused with 429.")
	fs.DurationVar(&o.QueryFreshnessTimeout, "query-freshness-timeout", index.DefaultFreshnessTimeout, "How long a query for a snapshot newer than this replica's index (a continue token from another replica) waits for it before 504 Too large resource version.")
	fs.StringVar(&o.HistoryStore, "history-store", "", "Connection string of the history store, a PostgreSQL-compatible database (postgres://...): ended player sessions move there and describe calls read both (empty: retention runs on the custom resources).")
	fs.DurationVar(&c.HistoryGrace, "history-grace", c.HistoryGrace, "How long an ended player session stays a custom resource after its game session ended, with a history store.")
	fs.StringVar(&o.GameLiftAddr, "gamelift-bind-address", "", "Address of the GameLift-compatible endpoint, e.g. :9090 (off unless set).")
	fs.Float64Var(&f.glQPS, "gamelift-kube-api-qps", 200, "Client-side QPS limit of the GameLift endpoint's own client towards kube-apiserver (separate from the controllers').")
	fs.IntVar(&o.GameLiftBurst, "gamelift-kube-api-burst", 400, "Burst of the GameLift endpoint's own client.")
	fs.Float64Var(&o.GameLiftRatePerKey, "gamelift-rate-per-key", gamelift.DefaultRatePerKey, "Calls per second one GameLift access key may make on this replica; more are answered ThrottlingException (the SDKs retry with backoff).")
	fs.IntVar(&o.GameLiftBurstPerKey, "gamelift-burst-per-key", 2*gamelift.DefaultRatePerKey, "Burst of one GameLift access key's calls on this replica.")
	fs.StringVar(&o.GameLiftSDKAddr, "gamelift-sdk-bind-address", "", "Address of the GameLift Server SDK v5's WebSocket, where game server processes connect, e.g. :9091 (off unless set; needs --gamelift-bind-address).")
	fs.StringVar(&o.GameLiftSDKEndpoint, "gamelift-sdk-endpoint-url", "", "URL of that WebSocket that RegisterCompute hands out (GameLiftServiceSdkEndpoint), as game servers reach it (empty: ws://127.0.0.1:PORT of --gamelift-sdk-bind-address, wss:// with --gamelift-cert-dir).")
	fs.DurationVar(&c.ProcessReconnectGrace, "gamelift-sdk-reconnect-grace", c.ProcessReconnectGrace, "How long a GameLift Server SDK process whose connection was lost (closed, or held by a replica that stopped) has to connect again before it is TERMINATED and its game session ends INTERRUPTED.")
	fs.StringVar(&o.ReplicaName, "replica-name", defaultReplicaName(), "This replica's name, unique among the running replicas: its Lease (playersessions-replica-NAME in the --gamelift-key-namespace) tells the leader it runs (default: $POD_NAME, else the host name).")
	fs.DurationVar(&o.ReplicaLeaseDuration, "replica-lease-duration", replicas.DefaultLeaseDuration, "How long a replica's Lease lasts without renewal (whole seconds; renewed three times as often): the connections of a replica that stops are lost after it.")
	fs.StringVar(&o.GameLiftSDKCAFile, "gamelift-sdk-ca-file", "", "CA of the SDK WebSocket's certificate, mounted into the game server Pods that opt in so they trust it (empty: ca.crt of --gamelift-cert-dir, when there is one, as cert-manager writes it).")
	fs.DurationVar(&o.GameLiftComputeTokenTTL, "gamelift-compute-token-ttl", computes.DefaultTokenTTL, "How long a compute auth token from GetComputeAuthToken is valid.")
	fs.StringVar(&o.GameLiftKeyNamespace, "gamelift-key-namespace", gamelift.DefaultKeyNamespace, "Namespace of the GameLift access-key Secrets (each names its tenant namespace in a label): the only namespace whose Secrets the manager reads, so its RBAC grants Secrets there only.")
	fs.StringVar(&o.GameLiftCertDir, "gamelift-cert-dir", "", "Folder with the GameLift endpoint's tls.crt and tls.key: serve HTTPS, reloading a renewed certificate (empty: plain HTTP).")
	fs.DurationVar(&o.GameLiftReadTimeout, "gamelift-read-timeout", gamelift.DefaultReadTimeout, "How long a GameLift client may take to send a request (and to read its answer).")
	fs.DurationVar(&o.GameLiftIdleTimeout, "gamelift-idle-timeout", gamelift.DefaultIdleTimeout, "How long a kept-alive GameLift connection may stay idle.")
	fs.IntVar(&o.GameLiftMaxConnections, "gamelift-max-connections", gamelift.DefaultMaxConnections, "GameLift connections served at once; more wait to be accepted.")
	fs.IntVar(&o.WebhookPort, "webhook-port", 0, "HTTPS port of the PlayerSession admission webhook (0: off; the local control plane turns it on).")
	fs.StringVar(&o.WebhookCertDir, "webhook-cert-dir", "/tmp/k8s-webhook-server/serving-certs", "Folder with the webhook's tls.crt and tls.key.")
	fs.StringVar(&o.WebhookClientCAName, "webhook-client-ca-name", "", "File in --webhook-cert-dir with the CA of kube-apiserver's webhook client certificate: the webhook then answers only clients with a certificate it signed (empty: anyone who reaches the port; config/webhook-client-auth sets it).")
	f.zap.BindFlags(fs)
	return f
}

// Options are the manager's options from the parsed flags. It also sets controller-runtime's logger from
// the logging flags.
func (f *Flags) Options() (Options, error) {
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&f.zap)))
	o := f.o
	o.QueryBindAddress = net.ParseIP(f.queryBind)
	o.GameLiftQPS = float32(f.glQPS)
	if ns, name, ok := strings.Cut(f.tokenKeySecret, "/"); ok {
		o.QueryTokenKeySecret = types.NamespacedName{Namespace: ns, Name: name}
	} else if f.tokenKeySecret != "" {
		return o, fmt.Errorf("--query-token-key-secret must be NAMESPACE/NAME, got %q", f.tokenKeySecret)
	}
	if f.tokenKeyFile != "" {
		key, err := os.ReadFile(f.tokenKeyFile)
		if err != nil {
			return o, err
		}
		o.QueryTokenKey = key
	}
	return o, nil
}

// Limit applies the --kube-api-qps and --kube-api-burst limits to cfg.
func (f *Flags) Limit(cfg *rest.Config) *rest.Config {
	cfg.QPS, cfg.Burst = float32(f.qps), f.burst
	return cfg
}

// defaultReplicaName is $POD_NAME (config/manager sets it from the Pod's name), else the host name (a
// Pod's, too).
func defaultReplicaName() string {
	if name := os.Getenv("POD_NAME"); name != "" {
		return name
	}
	name, _ := os.Hostname()
	return name
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
