package query

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/endpoints/responsewriter"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/component-base/compatibility"
	"k8s.io/utils/clock"

	"github.com/playersessions/operator/internal/index"
	"github.com/playersessions/operator/internal/metrics"
	"github.com/playersessions/operator/internal/query/openapi"
	queryv1 "github.com/playersessions/operator/internal/query/v1alpha1"
	"github.com/playersessions/operator/internal/search"
)

// Scheme and Codecs of the query API server.
var (
	Scheme = runtime.NewScheme()
	Codecs = serializer.NewCodecFactory(Scheme)
)

func init() {
	utilruntime.Must(queryv1.AddToScheme(Scheme))
	utilruntime.Must(Scheme.SetVersionPriority(queryv1.SchemeGroupVersion))
	utilruntime.Must(Scheme.AddFieldLabelConversionFunc(queryv1.SchemeGroupVersion.WithKind("PlayerSession"), convertFieldLabel))
	utilruntime.Must(Scheme.AddFieldLabelConversionFunc(queryv1.SchemeGroupVersion.WithKind("GameSession"), convertGameSessionFieldLabel))
	metav1.AddToGroupVersion(Scheme, schema.GroupVersion{Version: "v1"})
	unversioned := schema.GroupVersion{Group: "", Version: "v1"}
	Scheme.AddUnversionedTypes(unversioned, &metav1.Status{}, &metav1.APIVersions{}, &metav1.APIGroupList{}, &metav1.APIGroup{}, &metav1.APIResourceList{})
}

// ServerOptions configure the query API server.
type ServerOptions struct {
	// BindAddress and Port of the HTTPS listener.
	BindAddress net.IP
	Port        int
	// CertDir holds tls.crt and tls.key; when they are missing a self-signed pair is generated there.
	CertDir string
	// Kubeconfig is used for delegated authentication (TokenReview, the requestheader CA) and authorization
	// (SubjectAccessReview); empty means in-cluster.
	Kubeconfig string
	// History, when set, is the history store that lists and gets merge with the live index.
	History index.History
	// MaxWatches and MaxWatchesPerUser bound the watches open at once, in all and per user; beyond them a
	// watch is refused with 429 (0: DefaultMaxWatches, DefaultMaxWatchesPerUser).
	MaxWatches, MaxWatchesPerUser int
}

// Server is the aggregated query API server, a manager Runnable on every replica.
type Server struct {
	server *genericapiserver.GenericAPIServer
	// frontProxyCA is the CA of kube-apiserver's aggregator (its front proxy), which every kubectl request
	// comes through; nil when the server was built without one.
	frontProxyCA dynamiccertificates.CAContentProvider
}

// AuthenticationReady is a readiness check: an error until the server holds the front proxy's CA. It reads
// it from the kube-system/extension-apiserver-authentication ConfigMap once it starts (k8s.io/apiserver
// fails closed meanwhile), and until then every request the aggregator proxies is anonymous and refused:
// a replica that its Service marked ready that early answered kubectl with 403 for system:anonymous (the
// soak's end check met it, through the cluster's client CA, loaded the same way, on a replica it had just
// restarted).
func (s *Server) AuthenticationReady(*http.Request) error {
	if s.frontProxyCA != nil && len(s.frontProxyCA.CurrentCABundleContent()) == 0 {
		return fmt.Errorf("the front proxy's CA (%s) is not loaded yet", s.frontProxyCA.Name())
	}
	return nil
}

// NeedLeaderElection is false: every replica serves reads.
func (s *Server) NeedLeaderElection() bool { return false }

// Start serves until ctx ends.
func (s *Server) Start(ctx context.Context) error {
	return s.server.PrepareRun().RunWithContext(ctx)
}

// NewServer builds the query API server over the player sessions' index and the game sessions' (games),
// with delegated authentication and authorization.
func NewServer(o ServerOptions, ix *index.Index, games *search.Index, tokens *index.Tokens) (*Server, error) {
	ro := genericoptions.NewRecommendedOptions("", Codecs.LegacyCodec(queryv1.SchemeGroupVersion))
	ro.Etcd = nil
	ro.Admission = nil // read-only
	// API Priority and Fairness, as kube-apiserver: the FlowSchemas and PriorityLevelConfigurations of the
	// cluster (read through the core API's kubeconfig) share this server's capacity among users.
	ro.Features.EnablePriorityAndFairness = true
	ro.SecureServing.BindAddress = o.BindAddress
	ro.SecureServing.BindPort = o.Port
	ro.SecureServing.ServerCert.CertDirectory = o.CertDir
	ro.SecureServing.ServerCert.PairName = "tls"
	ro.CoreAPI.CoreAPIKubeconfigPath = o.Kubeconfig
	ro.Authentication.RemoteKubeConfigFile = o.Kubeconfig
	ro.Authorization.RemoteKubeConfigFile = o.Kubeconfig
	if err := ro.SecureServing.MaybeDefaultWithSelfSignedCerts("localhost", nil, []net.IP{net.ParseIP("127.0.0.1")}); err != nil {
		return nil, fmt.Errorf("creating self-signed serving certificates: %w", err)
	}

	cfg := newConfig()
	if err := ro.ApplyTo(cfg); err != nil {
		return nil, err
	}
	// Verify the front proxy's certificate chain once per chain, not once per request (see authn.go).
	cfg.Authentication.Authenticator = withFrontProxyCache(cfg.Authentication.Authenticator, cfg.Authentication.RequestHeaderConfig, clock.RealClock{})
	s, err := newServer(cfg, ix, games, tokens, o.History, newWatchLimits(o.MaxWatches, o.MaxWatchesPerUser))
	if err != nil {
		return nil, err
	}
	if rh := cfg.Authentication.RequestHeaderConfig; rh != nil {
		s.frontProxyCA = rh.CAContentProvider
	}
	return s, nil
}

// newConfig is the query API server's configuration before authentication, authorization and serving are
// applied to it.
func newConfig() *genericapiserver.RecommendedConfig {
	cfg := genericapiserver.NewRecommendedConfig(Codecs)
	cfg.EffectiveVersion = compatibility.NewEffectiveVersionFromString("1.37", "", "")
	namer := openapinamer.NewDefinitionNamer(Scheme)
	cfg.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(openapi.GetOpenAPIDefinitions, namer)
	cfg.OpenAPIConfig.Info.Title, cfg.OpenAPIConfig.Info.Version = "playersessions query", "v1alpha1"
	cfg.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(openapi.GetOpenAPIDefinitions, namer)
	cfg.OpenAPIV3Config.Info.Title, cfg.OpenAPIV3Config.Info.Version = "playersessions query", "v1alpha1"
	cfg.BuildHandlerChainFunc = func(api http.Handler, c *genericapiserver.Config) http.Handler {
		return genericapiserver.DefaultBuildHandlerChain(instrumented(api), c)
	}
	return cfg
}

// instrumented times each request the API answers (after authentication and authorization), by verb and
// resource, with its status code, for playersessions_query_request_duration_seconds. A watch is timed to
// its start, not its end.
func instrumented(api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, ok := apirequest.RequestInfoFrom(r.Context())
		if !ok || !info.IsResourceRequest {
			api.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		if info.Verb == "watch" {
			rec.onHeader = func(status int) { metrics.QueryRequest(info.Verb, info.Resource, status, time.Since(start)) }
		}
		api.ServeHTTP(responsewriter.WrapForHTTP1Or2(rec), r) // keeps the writer's Flusher, Hijacker and CloseNotifier
		if info.Verb != "watch" || !rec.wrote {
			metrics.QueryRequest(info.Verb, info.Resource, rec.status, time.Since(start))
		}
	})
}

// statusRecorder remembers the status a handler wrote (and calls onHeader when it writes it).
type statusRecorder struct {
	http.ResponseWriter
	status   int
	wrote    bool
	onHeader func(int)
}

func (s *statusRecorder) WriteHeader(status int) {
	if !s.wrote {
		s.status, s.wrote = status, true
		if s.onHeader != nil {
			s.onHeader(status)
		}
	}
	s.ResponseWriter.WriteHeader(status)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if !s.wrote {
		s.WriteHeader(http.StatusOK)
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap is the writer it decorates (responsewriter.UserProvidedDecorator).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// newServer builds the server from a complete configuration and installs the query API over index.
func newServer(cfg *genericapiserver.RecommendedConfig, ix *index.Index, games *search.Index, tokens *index.Tokens, h index.History, watches *watchLimits) (*Server, error) {
	server, err := cfg.Complete().New("playersessions-query", genericapiserver.NewEmptyDelegate())
	if err != nil {
		return nil, err
	}
	group := genericapiserver.NewDefaultAPIGroupInfo(queryv1.GroupName, Scheme, runtime.NewParameterCodec(Scheme), Codecs)
	group.VersionedResourcesStorageMap[queryv1.SchemeGroupVersion.Version] = map[string]rest.Storage{
		"playersessions": &REST{index: ix, tokens: tokens, history: h, watches: watches},
		"gamesessions":   &GameSessionREST{index: games, tokens: tokens, watches: watches},
	}
	if err := server.InstallAPIGroup(&group); err != nil {
		return nil, err
	}
	return &Server{server: server}, nil
}
