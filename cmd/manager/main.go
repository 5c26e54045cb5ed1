// Command manager runs the playersessions operator: the GameSession and PlayerSession controllers (on the
// elected leader only) and the query API server (on every replica), sharing one informer cache with its
// field indexes.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/playersessions/operator/controllers"
	"github.com/playersessions/operator/internal/gamelift"
	"github.com/playersessions/operator/internal/index"
	"github.com/playersessions/operator/internal/localcp"
	"github.com/playersessions/operator/internal/manager"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		os.Exit(1)
	}
}

func run() error {
	o := manager.Options{Controllers: controllers.DefaultOptions()}
	c := &o.Controllers
	var (
		localDir, crdDir, webhookDir, policyDir, queryBind, tokenKeyFile, tokenKeySecret string
		qps, glQPS                                                                       float64
		burst                                                                            int
	)
	flag.StringVar(&o.MetricsAddr, "metrics-bind-address", ":8080", "Address of the Prometheus metrics endpoint (0 disables it).")
	flag.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8081", "Address of the health probes.")
	flag.StringVar(&o.PprofAddr, "pprof-bind-address", "", "Address of the net/http/pprof endpoints (off unless set).")
	flag.BoolVar(&o.LeaderElect, "leader-elect", true, "Elect a leader: only the leader runs the controllers.")
	flag.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader-election Lease (required outside a cluster).")
	flag.DurationVar(&o.LeaseDuration, "leader-elect-lease-duration", 15*time.Second, "How long a leader's Lease lasts without renewal: a leader that dies is replaced within about this long.")
	flag.DurationVar(&o.RenewDeadline, "leader-elect-renew-deadline", 10*time.Second, "How long the leader keeps trying to renew its Lease before it steps down.")
	flag.DurationVar(&o.RetryPeriod, "leader-elect-retry-period", 2*time.Second, "How often candidates try to acquire, and the leader to renew, the Lease.")
	flag.DurationVar(&c.PlayerSessionTimeout, "player-session-timeout", c.PlayerSessionTimeout, "How long a RESERVED player session waits to be accepted before it is TIMEDOUT.")
	flag.DurationVar(&c.Retention, "retention", c.Retention, "How long player sessions and ended game sessions are kept after their game session ended.")
	flag.StringVar(&c.Region, "region", c.Region, "Region written into the GameLift-style ARNs.")
	flag.StringVar(&c.AccountID, "account-id", c.AccountID, "Account id written into fleet ARNs.")
	flag.IntVar(&c.MaxConcurrentReconciles, "max-concurrent-reconciles", c.MaxConcurrentReconciles, "Workers per controller.")
	flag.DurationVar(&c.BatchWindow, "batch-window", c.BatchWindow, "How long a game session waits after a player session change before deciding seats, so a burst costs one write.")
	flag.DurationVar(&c.ReleaseWindow, "release-window", c.ReleaseWindow, "How long a game session may wait after a player session ended before it frees the seat, when nobody waits for one.")
	flag.DurationVar(&c.AgonesAllocationTimeout, "agones-allocation-timeout", c.AgonesAllocationTimeout, "How long a game session on an Agones fleet keeps trying to allocate a GameServer before it becomes ERROR.")
	flag.BoolVar(&o.DisableAgones, "disable-agones", false, "Turn the Agones integration off (by default the manager binds game sessions with spec.agones once it discovers Agones).")
	flag.DurationVar(&o.AgonesDiscoveryInterval, "agones-discovery-interval", 10*time.Second, "How often the manager looks for Agones until it is installed.")
	flag.BoolVar(&c.RetainDeclared, "retain-declared", c.RetainDeclared, "Keep, when its retention ends, an object an applier declares (condition RetentionEnded and an event instead of a deletion).")
	flag.Func("declarative-managers", "Comma-separated field managers of appliers: an object on which one owns a spec field is declared (default "+strings.Join(c.DeclarativeManagers, ",")+").", func(v string) error {
		c.DeclarativeManagers = splitList(v)
		return nil
	})
	flag.Func("declarative-markers", "Comma-separated label or annotation keys with which appliers track objects: an object carrying one is declared (default "+strings.Join(c.DeclarativeMarkers, ",")+").", func(v string) error {
		c.DeclarativeMarkers = splitList(v)
		return nil
	})
	flag.Float64Var(&qps, "kube-api-qps", 200, "Client-side QPS limit towards kube-apiserver (every player session transition is a write).")
	flag.IntVar(&burst, "kube-api-burst", 400, "Client-side burst towards kube-apiserver.")
	flag.IntVar(&o.QueryPort, "query-port", 8443, "HTTPS port of the query API server (query.playersessions.dev); 0 disables it.")
	flag.StringVar(&queryBind, "query-bind-address", "0.0.0.0", "Address of the query API server.")
	flag.StringVar(&o.QueryCertDir, "query-cert-dir", "/tmp/playersessions-query", "Folder with the query API server's tls.crt and tls.key (self-signed ones are generated when missing).")
	flag.StringVar(&o.QueryKubeconfig, "query-kubeconfig", os.Getenv("KUBECONFIG"), "Kubeconfig for the query API server's delegated authentication and authorization (empty: in-cluster).")
	flag.StringVar(&tokenKeyFile, "query-token-key-file", "", "File with the key that signs continue tokens (overrides --query-token-key-secret).")
	flag.StringVar(&tokenKeySecret, "query-token-key-secret", "playersessions-system/playersessions-query-token-key", "NAMESPACE/NAME of the Secret holding the continue-token key that replicas share; the first replica creates it (empty: a random key per replica).")
	flag.DurationVar(&o.QuerySnapshotWindow, "query-snapshot-window", 5*time.Minute, "How long a paged list's snapshot stays readable; older continue tokens get 410 Expired.")
	flag.DurationVar(&o.QueryFreshnessTimeout, "query-freshness-timeout", index.DefaultFreshnessTimeout, "How long a query for a snapshot newer than this replica's index (a continue token from another replica) waits for it before 504 Too large resource version.")
	flag.StringVar(&o.HistoryStore, "history-store", "", "Connection string of the history store, a PostgreSQL-compatible database (postgres://...): ended player sessions move there and describe calls read both (empty: retention runs on the custom resources).")
	flag.DurationVar(&c.HistoryGrace, "history-grace", c.HistoryGrace, "How long an ended player session stays a custom resource after its game session ended, with a history store.")
	flag.StringVar(&o.GameLiftAddr, "gamelift-bind-address", "", "Address of the GameLift-compatible endpoint, e.g. :9090 (off unless set).")
	flag.Float64Var(&glQPS, "gamelift-kube-api-qps", 200, "Client-side QPS limit of the GameLift endpoint's own client towards kube-apiserver (separate from the controllers').")
	flag.IntVar(&o.GameLiftBurst, "gamelift-kube-api-burst", 400, "Burst of the GameLift endpoint's own client.")
	flag.StringVar(&o.GameLiftCertDir, "gamelift-cert-dir", "", "Folder with the GameLift endpoint's tls.crt and tls.key: serve HTTPS, reloading a renewed certificate (empty: plain HTTP).")
	flag.DurationVar(&o.GameLiftReadTimeout, "gamelift-read-timeout", gamelift.DefaultReadTimeout, "How long a GameLift client may take to send a request (and to read its answer).")
	flag.DurationVar(&o.GameLiftIdleTimeout, "gamelift-idle-timeout", gamelift.DefaultIdleTimeout, "How long a kept-alive GameLift connection may stay idle.")
	flag.IntVar(&o.GameLiftMaxConnections, "gamelift-max-connections", gamelift.DefaultMaxConnections, "GameLift connections served at once; more wait to be accepted.")
	flag.IntVar(&o.WebhookPort, "webhook-port", 0, "HTTPS port of the PlayerSession admission webhook (0: off; the local control plane turns it on).")
	flag.StringVar(&o.WebhookCertDir, "webhook-cert-dir", "/tmp/k8s-webhook-server/serving-certs", "Folder with the webhook's tls.crt and tls.key.")
	flag.StringVar(&localDir, "local-control-plane", "", "Start an embedded local control plane (etcd and kube-apiserver from KUBEBUILDER_ASSETS) and write its kubeconfig into this folder.")
	flag.StringVar(&crdDir, "crd-dir", "config/crd/bases", "CRDs to install into the local control plane.")
	flag.StringVar(&webhookDir, "webhook-config-dir", "config/webhook", "Webhook configurations to install into the local control plane.")
	flag.StringVar(&policyDir, "policy-dir", "config/policy", "Admission policies to install into the local control plane.")
	zapOpts := zap.Options{Development: true}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("setup")
	ctx := ctrl.SetupSignalHandler()
	o.QueryBindAddress = net.ParseIP(queryBind)
	o.GameLiftQPS = float32(glQPS)
	if ns, name, ok := strings.Cut(tokenKeySecret, "/"); ok {
		o.QueryTokenKeySecret = types.NamespacedName{Namespace: ns, Name: name}
	} else if tokenKeySecret != "" {
		return fmt.Errorf("--query-token-key-secret must be NAMESPACE/NAME, got %q", tokenKeySecret)
	}
	if tokenKeyFile != "" {
		key, err := os.ReadFile(tokenKeyFile)
		if err != nil {
			return err
		}
		o.QueryTokenKey = key
	}

	getConfig := ctrl.GetConfigOrDie
	if localDir != "" {
		cp, err := localcp.Start(localcp.Options{CRDDirectoryPaths: []string{crdDir}, Dir: localDir, QueryPort: o.QueryPort, WebhookDirectoryPaths: []string{webhookDir}, ManifestDirectoryPaths: []string{policyDir}, DieWithParent: true})
		if err != nil {
			return err
		}
		defer func() { _ = cp.Stop() }()
		o.QueryKubeconfig, o.QueryCertDir = cp.Kubeconfig, cp.ServingCertDir
		o.WebhookHost, o.WebhookPort, o.WebhookCertDir = cp.WebhookHost, cp.WebhookPort, cp.WebhookCertDir
		log.Info("Local control plane is up", "kubeconfig", cp.Kubeconfig)
		fmt.Printf("\nLocal control plane is up. In another shell:\n\n  export KUBECONFIG=%s\n  kubectl get gamesessions,playersessions -A\n\n", cp.Kubeconfig)
		if o.GameLiftAddr != "" {
			keyID, secret, err := localAccessKey(ctx, cp.Config, "default")
			if err != nil {
				return err
			}
			fmt.Printf("GameLift-compatible endpoint for namespace default:\n\n  export AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_DEFAULT_REGION=us-east-1\n  aws gamelift describe-player-sessions --endpoint-url %s --player-id alice\n\n", keyID, secret, endpointURL(o.GameLiftAddr))
		}
		getConfig = func() *rest.Config { return cp.Config }
	}
	cfg := getConfig()
	cfg.QPS, cfg.Burst = float32(qps), burst
	mgr, _, err := manager.New(ctx, cfg, o)
	if err != nil {
		return err
	}
	log.Info("Starting manager", "playerSessionTimeout", c.PlayerSessionTimeout, "retention", c.Retention, "queryPort", o.QueryPort)
	return mgr.Start(ctx)
}

// localAccessKey creates (or reads) the local GameLift access key Secret of namespace.
func localAccessKey(ctx context.Context, cfg *rest.Config, namespace string) (string, string, error) {
	c, err := client.New(cfg, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		return "", "", err
	}
	key := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "gamelift-local-key"}, key); err == nil {
		return string(key.Data[gamelift.AccessKeyIDField]), string(key.Data[gamelift.SecretAccessKeyField]), nil
	}
	random := func(n int) string {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return strings.ToUpper(hex.EncodeToString(b))
	}
	keyID, secret := "AKIA"+random(8), random(20)
	key = &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "gamelift-local-key", Labels: map[string]string{gamelift.AccessKeyLabel: "true"}},
		Data:       map[string][]byte{gamelift.AccessKeyIDField: []byte(keyID), gamelift.SecretAccessKeyField: []byte(secret)},
	}
	return keyID, secret, c.Create(ctx, key)
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

func endpointURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
