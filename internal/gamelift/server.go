package gamelift

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/netutil"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/playersessions/operator/internal/agones"
	"github.com/playersessions/operator/internal/history"
	"github.com/playersessions/operator/internal/ids"
	"github.com/playersessions/operator/internal/index"
	"github.com/playersessions/operator/internal/metrics"
	"github.com/playersessions/operator/internal/redact"
	"github.com/playersessions/operator/internal/search"
)

const (
	cborPathPrefix = "/service/GameLift/operation/"
	jsonTarget     = "GameLift."
	maxBody        = 1 << 20
)

// FieldManager is the field manager of the endpoint's writes (UpdateGameSession writes a GameSession's spec:
// an applier of the same object should ignore the fields it sets; docs/gitops.md).
const FieldManager = "playersessions-gamelift"

// GameSessionHistory is where ended game sessions moved (history.Store).
type GameSessionHistory interface {
	ListGameSessions(ctx context.Context, q history.GameSessionQuery, after history.GameSessionKey, limit int) ([]history.GameSessionRecord, error)
}

// Server is the GameLift-compatible HTTP endpoint, a manager Runnable on every replica.
type Server struct {
	// Addr is the listen address.
	Addr string
	// Client writes (and reads through the cache); Reader is the manager's cache.
	Client client.Client
	Reader client.Reader
	// Index answers DescribePlayerSessions; Search answers SearchGameSessions.
	Index  *index.Index
	Search *search.Index
	Tokens *index.Tokens
	// History, when set, is the history store that DescribePlayerSessions merges with the live index.
	History index.History
	// GameSessionHistory, when set, is the history store that DescribeGameSessions merges with the cache.
	GameSessionHistory GameSessionHistory
	Clock              clock.Clock
	// ARNs format fleet ARNs as the controllers mint them.
	ARNs ids.ARNs
	// Agones tells whether a FleetId names an Agones Fleet (nil: never).
	Agones *agones.Client
	// CertDir, when set, holds tls.crt and tls.key: the endpoint then serves HTTPS, and picks up a renewed
	// certificate (cert-manager rewrites the Secret) without a restart.
	CertDir string
	// ReadTimeout bounds reading a whole request (a slow body), WriteTimeout writing its answer, IdleTimeout
	// how long a kept-alive connection may wait for the next request; MaxConnections bounds the connections
	// served at once (more wait to be accepted). Zero: DefaultLimits.
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	MaxConnections                         int
	// KeyNamespace is the namespace of the access-key Secrets (the manager's); a Secret elsewhere is no key.
	KeyNamespace string
	// APIReader reads from the API server, not the cache: computes registered a moment ago, maybe by another
	// replica (nil: Reader).
	APIReader client.Reader
	// SDKEndpoint is the URL of the Server SDK's WebSocket that RegisterCompute hands out
	// (GameLiftServiceSdkEndpoint): where the compute's processes connect.
	SDKEndpoint string
	// ComputeTokenTTL is how long a compute auth token is valid (0: computes.DefaultTokenTTL, 3 hours).
	ComputeTokenTTL time.Duration
	// Recorder reports refused access keys on their Secrets (nil: logged only).
	Recorder events.EventRecorder
	// RatePerKey and BurstPerKey bound the calls of one access key (a token bucket per key, per replica):
	// beyond them a call is answered ThrottlingException, which the SDKs retry with backoff, so one tenant
	// cannot take the endpoint's capacity from the others (0: DefaultRatePerKey, twice the rate).
	RatePerKey  float64
	BurstPerKey int
	// DecisionTimeout bounds how long CreatePlayerSession(s) waits for the operator to admit or refuse, and
	// CreateGameSession for its id (0: DefaultDecisionTimeout).
	DecisionTimeout time.Duration
	// GameSessionChanges signals every change of a game session in Reader (index.SignalChanges), which
	// CreateGameSession waits on (nil: it checks once, then waits for DecisionTimeout).
	GameSessionChanges *index.Signal
	// PlacementChanges signals every change of a game session placement in Reader (StopGameSessionPlacement
	// waits for the controller's answer on it).
	PlacementChanges *index.Signal

	keyEventsMu sync.Mutex
	keyEvents   map[string]time.Time
	replays     replays
	keyRates    keyRates
}

// NeedLeaderElection is false: every replica serves.
func (s *Server) NeedLeaderElection() bool { return false }

// Default limits of the endpoint: a request is small (1 MiB at most) and answered from memory, so a client
// that takes longer than this to send one, or holds a connection idle, is cut off.
const (
	DefaultReadTimeout    = 30 * time.Second
	DefaultWriteTimeout   = 30 * time.Second
	DefaultIdleTimeout    = 120 * time.Second
	DefaultMaxConnections = 1024
)

// Start serves until ctx ends.
func (s *Server) Start(ctx context.Context) error {
	or := func(d, def time.Duration) time.Duration {
		if d > 0 {
			return d
		}
		return def
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: min(10*time.Second, or(s.ReadTimeout, DefaultReadTimeout)),
		ReadTimeout: or(s.ReadTimeout, DefaultReadTimeout), WriteTimeout: or(s.WriteTimeout, DefaultWriteTimeout),
		IdleTimeout: or(s.IdleTimeout, DefaultIdleTimeout)}
	l, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return err
	}
	maxConns := s.MaxConnections
	if maxConns <= 0 {
		maxConns = DefaultMaxConnections
	}
	l = netutil.LimitListener(l, maxConns)
	if s.CertDir != "" {
		watcher, err := certwatcher.New(filepath.Join(s.CertDir, "tls.crt"), filepath.Join(s.CertDir, "tls.key"))
		if err != nil {
			_ = l.Close()
			return fmt.Errorf("loading the GameLift endpoint's certificate: %w", err)
		}
		go func() { _ = watcher.Start(ctx) }()
		l = tls.NewListener(l, &tls.Config{GetCertificate: watcher.GetCertificate, MinVersion: tls.VersionTLS12})
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	ctrl.Log.WithName("gamelift").Info("Serving the GameLift-compatible endpoint", "address", s.Addr, "tls", s.CertDir != "")
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// ServeHTTP answers one GameLift call in the protocol the client speaks.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var c codec = jsonCodec{}
	var action string
	code := "ok"
	defer func() {
		if _, known := operations[action]; !known {
			action = "unknown" // the label's values stay bounded
		}
		metrics.GameLiftCall(action, code, time.Since(start))
	}()
	fail := func(status int, e *Error) {
		code = e.Type
		writeError(w, c, status, e)
	}
	switch {
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, cborPathPrefix):
		c, action = cborCodec{}, strings.TrimPrefix(r.URL.Path, cborPathPrefix)
		w.Header().Set("smithy-protocol", "rpc-v2-cbor")
	case r.Method == http.MethodPost && r.URL.Path == "/" && strings.HasPrefix(r.Header.Get("X-Amz-Target"), jsonTarget):
		c, action = jsonCodec{}, strings.TrimPrefix(r.Header.Get("X-Amz-Target"), jsonTarget)
	default:
		fail(http.StatusNotFound, errorf(UnknownOperationException, "No GameLift operation at "+r.Method+" "+r.URL.Path))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		fail(http.StatusBadRequest, errorf(InvalidRequestException, "Request body unreadable or larger than 1 MiB"))
		return
	}
	who, aerr := s.authenticate(r.Context(), r, body)
	if aerr != nil {
		fail(http.StatusBadRequest, aerr)
		return
	}
	namespace := who.namespace
	if !s.keyRates.allow(who.keyID, s.RatePerKey, s.BurstPerKey, s.Clock.Now()) {
		fail(http.StatusBadRequest, errorf(ThrottlingException, "Rate exceeded for access key "+who.keyID+"; retry with backoff"))
		return
	}
	operation, ok := operations[action]
	if !ok {
		fail(http.StatusBadRequest, errorf(UnknownOperationException, "Unknown operation "+action))
		return
	}
	if operation.changes && !s.replays.first(who.signature, who.signedAt, s.Clock.Now()) {
		fail(http.StatusBadRequest, replayed())
		return
	}
	out, aerr := operation.serve(s, r.Context(), who, func(v any) *Error {
		if err := c.decode(body, v); err != nil {
			return errorf(SerializationException, "Cannot decode the request body: "+err.Error())
		}
		return nil
	})
	if aerr != nil {
		status := http.StatusBadRequest
		if aerr.Type == InternalServiceException {
			status = http.StatusInternalServerError
			ctrl.Log.WithName("gamelift").Error(aerr, "GameLift call failed", "action", action, "namespace", namespace)
		}
		fail(status, errorf(aerr.Type, redact.Addresses(aerr.Message))) // the log has where; the caller is told what
		return
	}
	payload, err := c.encode(out)
	if err != nil {
		fail(http.StatusInternalServerError, errorf(InternalServiceException, err.Error()))
		return
	}
	w.Header().Set("Content-Type", c.contentType())
	_, _ = w.Write(payload)
}

func writeError(w http.ResponseWriter, c codec, status int, e *Error) {
	payload, _ := c.errorBody(e)
	w.Header().Set("Content-Type", c.contentType())
	w.Header().Set("X-Amzn-ErrorType", e.Type)
	w.WriteHeader(status)
	_, _ = w.Write(payload)
}
