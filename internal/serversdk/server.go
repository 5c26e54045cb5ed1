// Package serversdk serves the GameLift Server SDK v5's protocol: the one WebSocket over which a game server
// process linked with the SDK talks to the service (InitSDK connects it; ProcessReady, ActivateGameSession,
// AcceptPlayerSession, ... are requests on it; CreateGameSession, TerminateProcess, RefreshConnection are
// pushes). This package is the protocol: the connect query and its authentication, the message envelope,
// request ids answered once and repeated idempotently, bounds (frame size, requests per second, requests
// in flight), and pushes. What each action does is the Actions table's, given by its user (the game-server
// backend); who a connection is, the Authenticator's. The wire format is the SDK's
// (test/third_party/gamelift-server-sdk-go; docs/gamelift-game-servers.md).
package serversdk

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"

	"github.com/playersessions/operator/internal/redact"
)

// The connect query's parameters (the SDK's common/consts.go).
const (
	QueryProcessID        = "pID"
	QuerySDKVersion       = "sdkVersion"
	QuerySDKLanguage      = "sdkLanguage"
	QueryComputeID        = "ComputeId"
	QueryFleetID          = "FleetId"
	QueryIdempotencyToken = "IdempotencyToken"
	QueryAuthorization    = "Authorization"
)

// ConnectRequest is what a process says of itself when it connects.
type ConnectRequest struct {
	ProcessID, SDKVersion, SDKLanguage, ComputeID, FleetID, IdempotencyToken string
	// AuthToken is the compute auth token, or "SigV4" when the query carries a SigV4 signature (SigV4).
	AuthToken string
	// Query is the whole connect query (the SigV4 form's parameters are in it).
	Query map[string][]string
}

// Identity is who a connection is, as its credentials say: a compute of a fleet of a tenant (namespace).
type Identity struct {
	Namespace, FleetID, ComputeName string
	// Expires is when the credentials stop being valid (zero: never); the connection is then refreshed or
	// closed by the Authenticator's user.
	Expires time.Time
}

// Authenticator decides who a connecting process is; an error refuses the connection (401).
type Authenticator interface {
	Authenticate(ctx context.Context, r ConnectRequest) (Identity, error)
}

// Action serves one request action: body is the whole request message (Action, RequestId and its fields).
// The answer's fields go at the top level of the response, beside Action, RequestId and StatusCode.
type Action func(ctx context.Context, p *Process, body json.RawMessage) (any, *Error)

// Hooks are told of a process's connection and its loss.
type Hooks interface {
	// Connected is called once a process is connected and before its first request is read; an error
	// closes the connection (a process of this identity may not connect now).
	Connected(ctx context.Context, p *Process) error
	// Disconnected is called once the connection is gone, whatever ended it, with the connection's context
	// (done by then, its values kept).
	Disconnected(ctx context.Context, p *Process)
}

// Defaults of the bounds.
const (
	DefaultMaxFrame          = 64 << 10 // bytes of one message; an SDK message is a few hundred
	DefaultRatePerConnection = 20       // requests per second; the SDK sends one heartbeat a minute
	DefaultBurstPerConn      = 40
	DefaultMaxInFlight       = 16 // requests of one connection served at once
	answersKept              = 256
	pushQueue                = 64
	writeTimeout             = 10 * time.Second
	pingInterval             = 30 * time.Second
	readTimeout              = 3 * pingInterval // without a message or a pong the connection is dead
)

// Server is the http.Handler of the SDK's WebSocket.
type Server struct {
	Auth    Authenticator
	Actions map[string]Action
	Hooks   Hooks
	Clock   clock.PassiveClock
	// MaxFrame bounds a message (0: DefaultMaxFrame): a longer one closes the connection (1009).
	MaxFrame int64
	// RatePerConnection and BurstPerConnection bound one connection's requests; beyond, a request is
	// answered 429 (TooManyRequests) without being served. 0: the defaults.
	RatePerConnection  float64
	BurstPerConnection int
	// MaxInFlight bounds the requests of one connection served at once; more wait to be read. 0: default.
	MaxInFlight int

	once     sync.Once
	upgrader websocket.Upgrader
}

func (s *Server) init() {
	s.once.Do(func() {
		if s.Clock == nil {
			s.Clock = clock.RealClock{}
		}
		if s.MaxFrame == 0 {
			s.MaxFrame = DefaultMaxFrame
		}
		if s.RatePerConnection == 0 {
			s.RatePerConnection, s.BurstPerConnection = DefaultRatePerConnection, DefaultBurstPerConn
		}
		if s.MaxInFlight == 0 {
			s.MaxInFlight = DefaultMaxInFlight
		}
		// Game servers are not browsers: no Origin check applies (the SDK sends none).
		s.upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	})
}

// ServeHTTP authenticates the connect request and serves the connection until it ends.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.init()
	q := r.URL.Query()
	req := ConnectRequest{ProcessID: q.Get(QueryProcessID), SDKVersion: q.Get(QuerySDKVersion), SDKLanguage: q.Get(QuerySDKLanguage),
		ComputeID: q.Get(QueryComputeID), FleetID: q.Get(QueryFleetID), IdempotencyToken: q.Get(QueryIdempotencyToken),
		AuthToken: q.Get(QueryAuthorization), Query: q}
	if req.ProcessID == "" || req.FleetID == "" || req.ComputeID == "" || req.AuthToken == "" {
		http.Error(w, "a GameLift Server SDK connection needs pID, FleetId, ComputeId and Authorization", http.StatusBadRequest)
		return
	}
	id, err := s.Auth.Authenticate(r.Context(), req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered
	}
	// Answers are remembered per connection: a request resent on a new connection is served again, which
	// the actions make harmless (a transition already made is refused, a registration repeated is the same).
	p := &Process{Identity: id, ID: req.ProcessID, SDKVersion: req.SDKVersion, SDKLanguage: req.SDKLanguage,
		ws: ws, out: make(chan []byte, pushQueue), done: make(chan struct{}), answers: &answerCache{entries: map[string]*answer{}},
		limit: rate.NewLimiter(rate.Limit(s.RatePerConnection), s.BurstPerConnection)}
	s.serve(r.Context(), p)
}

// serve runs the connection: one writer, one reader, requests served concurrently up to MaxInFlight.
func (s *Server) serve(ctx context.Context, p *Process) {
	log := ctrl.LoggerFrom(ctx).WithValues("namespace", p.Namespace, "fleet", p.FleetID, "compute", p.ComputeName, "process", p.ID)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go p.writeLoop()
	defer p.close()
	// The server stopping (its base context) ends the connection: the SDK reconnects elsewhere. (A callback,
	// not a goroutine per connection: an idle connection's memory is mostly its goroutines' stacks.)
	stopWatch := context.AfterFunc(ctx, p.close)
	defer stopWatch()
	if s.Hooks != nil {
		if err := s.Hooks.Connected(ctx, p); err != nil {
			log.Info("Refusing a server process connection", "reason", err.Error())
			_ = p.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, truncate(err.Error(), 120)), time.Now().Add(time.Second))
			return
		}
		defer s.Hooks.Disconnected(context.WithoutCancel(ctx), p)
	}
	log.V(1).Info("Server process connected", "sdkVersion", p.SDKVersion, "sdkLanguage", p.SDKLanguage)
	p.ws.SetReadLimit(s.MaxFrame)
	_ = p.ws.SetReadDeadline(time.Now().Add(readTimeout))
	p.ws.SetPongHandler(func(string) error { return p.ws.SetReadDeadline(time.Now().Add(readTimeout)) })
	slots := make(chan struct{}, s.MaxInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		typ, data, err := p.ws.ReadMessage()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				log.Info("Closing a server process connection: a message over the frame limit", "limit", s.MaxFrame)
			}
			return
		}
		_ = p.ws.SetReadDeadline(time.Now().Add(readTimeout))
		if typ != websocket.TextMessage {
			p.answer(response{StatusCode: http.StatusBadRequest, ErrorMessage: "messages are JSON text frames"}, nil)
			continue
		}
		var env struct {
			Action    string `json:"Action"`
			RequestID string `json:"RequestId"`
		}
		if err := json.Unmarshal(data, &env); err != nil || env.Action == "" {
			p.answer(response{Action: env.Action, RequestID: env.RequestID, StatusCode: http.StatusBadRequest,
				ErrorMessage: "a request is a JSON object with Action and RequestId"}, nil)
			continue
		}
		if env.RequestID == "" {
			p.answer(response{Action: env.Action, StatusCode: http.StatusBadRequest, ErrorMessage: "a request needs a RequestId"}, nil)
			continue
		}
		if !p.limit.Allow() {
			p.answer(response{Action: env.Action, RequestID: env.RequestID, StatusCode: http.StatusTooManyRequests,
				ErrorMessage: "too many requests from this process; retry later"}, nil)
			continue
		}
		a, first := p.answers.claim(env.RequestID)
		if !first {
			// A request id seen before (the C++ SDK resends a timed-out request with its id): the same answer,
			// once the first is done, and the action not served again.
			go func() {
				select {
				case <-a.done:
					p.send(a.payload)
				case <-p.done:
				}
			}()
			continue
		}
		action := s.Actions[env.Action]
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			var result any
			var aerr *Error
			if action == nil {
				aerr = Errorf(http.StatusBadRequest, "unknown action %q", env.Action)
			} else {
				result, aerr = action(ctx, p, data)
			}
			r := response{Action: env.Action, RequestID: env.RequestID, StatusCode: http.StatusOK}
			if aerr != nil {
				// The log has where a failed request went; the process is told what failed.
				r.StatusCode, r.ErrorMessage, result = aerr.Status, redact.Addresses(aerr.Message), nil
				log.V(1).Info("Server process request refused", "action", env.Action, "status", aerr.Status, "message", aerr.Message)
			}
			a.payload = p.answer(r, result)
			close(a.done)
		}()
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Listener serves a Server on its own address: a manager Runnable on every replica.
type Listener struct {
	Addr string
	// CertDir, when set, holds tls.crt and tls.key: the listener then serves wss://, reloading a renewed
	// certificate.
	CertDir string
	Server  *Server
}

// NeedLeaderElection is false: every replica serves game server processes.
func (l *Listener) NeedLeaderElection() bool { return false }

// Start serves until ctx ends.
func (l *Listener) Start(ctx context.Context) error {
	srv := &http.Server{Handler: l.Server, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	ln, err := net.Listen("tcp", l.Addr)
	if err != nil {
		return err
	}
	if l.CertDir != "" {
		watcher, err := certwatcher.New(filepath.Join(l.CertDir, "tls.crt"), filepath.Join(l.CertDir, "tls.key"))
		if err != nil {
			return err
		}
		go func() { _ = watcher.Start(ctx) }()
		ln = tls.NewListener(ln, &tls.Config{GetCertificate: watcher.GetCertificate, MinVersion: tls.VersionTLS12})
	}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
