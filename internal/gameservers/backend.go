// Package gameservers gives the GameLift Server SDK's protocol (internal/serversdk) its meaning on the
// cluster: who a connecting game server process is (a compute's auth token, or the SDK's SigV4 form with a
// tenant's GameLift access key), and what its requests do. A process's registration (ProcessReady) and its
// end (ProcessEnding) are written into its Compute's status, where every replica and a restarted manager
// see them; heartbeats write nothing. The game session reconciler places game sessions on idle processes
// (controllers/process.go); the replica holding a process's connection pushes CreateGameSession to it, and
// the game's ActivateGameSession makes the game session ACTIVE; the process accepts, removes and describes
// the players of its game session (docs/gamelift-game-servers.md).
package gameservers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/computes"
	"github.com/playersessions/operator/internal/indexes"
	"github.com/playersessions/operator/internal/serversdk"
	"github.com/playersessions/operator/internal/transitions"
)

// IndexTokenHash indexes Computes by the hashes of their auth tokens.
const IndexTokenHash = "status.authTokens.sha256"

// TokenHashesOf is the field index function of IndexTokenHash.
func TokenHashesOf(o client.Object) []string {
	c, ok := o.(*gamev1.Compute)
	if !ok {
		return nil
	}
	hashes := make([]string, 0, len(c.Status.AuthTokens))
	for _, t := range c.Status.AuthTokens {
		hashes = append(hashes, t.SHA256)
	}
	return hashes
}

// Backend is the game-server backend of the Server SDK's protocol.
type Backend struct {
	// Client writes; Reader is the manager's cache (with IndexTokenHash); APIReader reads from the API
	// server, for the read of a write under the optimistic lock.
	Client    client.Client
	Reader    client.Reader
	APIReader client.Reader
	Clock     clock.PassiveClock
	// AccessKey finds a GameLift access key's tenant and secret (the GameLift endpoint's keys) for the SDK's
	// SigV4 form; nil refuses that form.
	AccessKey func(ctx context.Context, keyID string) (tenant, secret string, ok bool)
	// Players moves player sessions (AcceptPlayerSession, RemovePlayerSession).
	Players *transitions.Mover
	// Describe answers DescribePlayerSessions in a tenant's namespace, as the GameLift endpoint does (its
	// request has the client API's fields): the player sessions and the next page's token. An error with
	// Internal() true is the server's, any other the request's.
	Describe func(ctx context.Context, namespace string, body []byte) ([]*gamev1.PlayerSession, string, error)
	// SDKEndpoint is the URL processes reconnect to with a fresh token (RefreshConnection), and TokenTTL
	// how long that token is valid (0: computes.DefaultTokenTTL).
	SDKEndpoint string
	TokenTTL    time.Duration
	// Recorder records the game sessions' activations (nil: none).
	Recorder events.EventRecorder
	// Replica and Holder name this replica's Lease and its run (internal/replicas): a registered process's
	// connection is recorded on its Compute as theirs (status.processes[].connection), and its closing
	// without ProcessEnding too, so that the leader finds a process that does not come back (empty: not
	// recorded).
	Replica, Holder string

	mu           sync.Mutex
	connected    map[processKey][]*connection // the processes connected to this replica (a process reconnecting has two for a moment)
	computeLocks sync.Map                     // processKey{namespace, compute} -> *sync.Mutex: patchCompute's turns
}

type processKey struct{ namespace, compute, process string }

// connection is a process connected here, and the game session pushed to it on this connection.
type connection struct {
	p          *serversdk.Process
	pushed     string // the UID of the game session pushed
	terminated bool   // TerminateProcess pushed
}

var _ serversdk.Authenticator = (*Backend)(nil)
var _ serversdk.Hooks = (*Backend)(nil)

// errUnknownCredentials refuses a connection without saying which part was wrong.
var errUnknownCredentials = errors.New("invalid credentials for this fleet and compute: an auth token from GetComputeAuthToken (or SigV4 with a GameLift access key) for the compute of ComputeId in FleetId")

// Authenticate finds who a connecting process is: the compute of its token (an unexpired token of the
// compute its ComputeId and FleetId name), or, in the SigV4 form, the compute of that name in the access
// key's tenant.
func (b *Backend) Authenticate(ctx context.Context, r serversdk.ConnectRequest) (serversdk.Identity, error) {
	now := b.Clock.Now()
	if r.AuthToken == serversdk.SigV4Authorization {
		if b.AccessKey == nil {
			return serversdk.Identity{}, errors.New("SigV4 connections are not accepted here: use an auth token from GetComputeAuthToken")
		}
		var tenant string
		_, err := serversdk.VerifySigV4(r, now, func(keyID string) (string, bool) {
			t, secret, ok := b.AccessKey(ctx, keyID)
			tenant = t
			return secret, ok
		})
		if err != nil {
			return serversdk.Identity{}, err
		}
		c := &gamev1.Compute{}
		if err := b.Reader.Get(ctx, client.ObjectKey{Namespace: tenant, Name: computes.ObjectName(r.FleetID, r.ComputeID)}, c); err != nil ||
			c.Spec.FleetID != r.FleetID || c.Spec.ComputeName != r.ComputeID {
			return serversdk.Identity{}, fmt.Errorf("no compute %s registered in fleet %s", r.ComputeID, r.FleetID)
		}
		return serversdk.Identity{Namespace: tenant, FleetID: r.FleetID, ComputeName: r.ComputeID}, nil
	}
	var list gamev1.ComputeList
	if err := b.Reader.List(ctx, &list, client.MatchingFields{IndexTokenHash: computes.Hash(r.AuthToken)}); err != nil {
		return serversdk.Identity{}, err
	}
	for i := range list.Items {
		c := &list.Items[i]
		if c.Spec.FleetID != r.FleetID || c.Spec.ComputeName != r.ComputeID || !computes.Valid(c, r.AuthToken, now) {
			continue
		}
		id := serversdk.Identity{Namespace: c.Namespace, FleetID: c.Spec.FleetID, ComputeName: c.Spec.ComputeName}
		for _, t := range c.Status.AuthTokens {
			if t.SHA256 == computes.Hash(r.AuthToken) {
				id.Expires = t.ExpirationTime.Time
			}
		}
		return id, nil
	}
	return serversdk.Identity{}, errUnknownCredentials
}

// Connected refuses a process of a compute that is gone (deregistered since its token was read); it pushes
// the game session placed on the process, if it was not activated yet (a process that reconnects).
func (b *Backend) Connected(ctx context.Context, p *serversdk.Process) error {
	c, err := b.compute(ctx, p)
	if err != nil {
		return err
	}
	ctrl.LoggerFrom(ctx).V(1).Info("Game server process connected", "compute", klog.KObj(c), "process", p.ID)
	b.mu.Lock()
	if b.connected == nil {
		b.connected = map[processKey][]*connection{}
	}
	key := processKey{p.Namespace, c.Name, p.ID}
	b.connected[key] = append(b.connected[key], &connection{p: p})
	b.mu.Unlock()
	if i := slices.IndexFunc(c.Status.Processes, func(sp gamev1.ServerProcess) bool { return sp.ProcessID == p.ID }); i >= 0 &&
		c.Status.Processes[i].Status == gamev1.ServerProcessActive && !b.holds(c.Status.Processes[i].Connection) {
		// A registered process connected again (to this replica or from another): it is not lost.
		if aerr := b.updateProcess(ctx, p, func(sp *gamev1.ServerProcess) { sp.Connection = b.connection() }); aerr != nil {
			return errors.New(aerr.Message)
		}
	}
	// The game session placed on the process: pushed again if not activated yet, or terminated again.
	var placed gamev1.GameSessionList
	if err := b.Reader.List(ctx, &placed, client.InNamespace(c.Namespace), client.MatchingFields{indexes.GameSessionProcessCompute: c.Name}); err == nil {
		for i := range placed.Items {
			if placed.Items[i].Status.Process.ProcessID == p.ID {
				b.OnGameSession(ctx, &placed.Items[i])
			}
		}
	}
	if !p.Expires.IsZero() {
		b.refreshBeforeExpiry(ctx, p)
	}
	return nil
}

// refreshBeforeExpiry gives a connection authenticated with a token a fresh one before the token expires
// (15 minutes before, or a quarter of its remaining life if shorter), with the RefreshConnection push: the
// SDK reconnects with it. A connection that ends first needs none; a replica that stops, neither: the SDK
// reconnects to another with the token it has, which gets its own refresh.
// It schedules a timer, stopped when the connection's context ends, rather than a goroutine per connection.
func (b *Backend) refreshBeforeExpiry(ctx context.Context, p *serversdk.Process) {
	remaining := time.Until(p.Expires)
	timer := time.AfterFunc(remaining-min(15*time.Minute, remaining/4), func() {
		select {
		case <-p.Done():
		case <-ctx.Done():
		default:
			b.refresh(ctx, p)
		}
	})
	context.AfterFunc(ctx, func() { timer.Stop() })
}

// refresh writes a fresh token for p's compute and pushes it to p with RefreshConnection.
func (b *Backend) refresh(ctx context.Context, p *serversdk.Process) {
	log := ctrl.LoggerFrom(ctx).WithValues("compute", p.ComputeName, "process", p.ID)
	ttl := b.TokenTTL
	if ttl == 0 {
		ttl = computes.DefaultTokenTTL
	}
	token := computes.NewToken()
	if aerr := b.patchCompute(ctx, p, func(c *gamev1.Compute) *serversdk.Error {
		now := b.Clock.Now()
		c.Status.AuthTokens = computes.WithToken(c.Status.AuthTokens, token, now, now.Add(ttl))
		return nil
	}); aerr != nil {
		log.Info("No fresh token for a process", "reason", aerr.Message)
		return
	}
	// Push once this replica's cache knows the token: the SDK reconnects at once, and a refused reconnect
	// would leave it without a connection until its next try, a minute later.
	key := client.ObjectKey{Namespace: p.Namespace, Name: computes.ObjectName(p.FleetID, p.ComputeName)}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		c := &gamev1.Compute{}
		if err := b.Reader.Get(ctx, key, c); err == nil && computes.Valid(c, token, b.Clock.Now()) {
			break
		}
	}
	if err := p.Push("RefreshConnection", map[string]string{"RefreshConnectionEndpoint": b.SDKEndpoint, "AuthToken": token}); err != nil {
		return
	}
	log.V(1).Info("Refreshed a process's connection token")
}

// holds reports whether conn is a connection of this replica's run, still open.
func (b *Backend) holds(conn *gamev1.ProcessConnection) bool {
	return b.Replica == "" || conn != nil && conn.Replica == b.Replica && conn.Holder == b.Holder && conn.DisconnectionTime == nil
}

// connection is the record of a process's connection to this replica, from now.
func (b *Backend) connection() *gamev1.ProcessConnection {
	if b.Replica == "" {
		return nil
	}
	return &gamev1.ProcessConnection{Replica: b.Replica, Holder: b.Holder, ConnectionTime: metav1.NewTime(b.Clock.Now())}
}

// Disconnected forgets the connection. The last connection here of a registered process that did not end
// is recorded as closed (its disconnection time), unless the process has connected since (here or to
// another replica): the leader ends it if it does not come back within the grace period.
func (b *Backend) Disconnected(ctx context.Context, p *serversdk.Process) {
	key := processKey{p.Namespace, computes.ObjectName(p.FleetID, p.ComputeName), p.ID}
	b.mu.Lock()
	conns := slices.DeleteFunc(b.connected[key], func(c *connection) bool { return c.p == p })
	if len(conns) == 0 {
		delete(b.connected, key)
	} else {
		b.connected[key] = conns
	}
	b.mu.Unlock()
	if b.Replica == "" {
		return
	}
	b.recordDisconnection(ctx, p, key)
}

// recordDisconnection records the connection of p (key) as closed, if this replica's run still holds it in
// its compute's status and no connection of it is open here. Disconnected calls it, and OnCompute for a
// process that its status shows held here but that is not connected here: a record that Disconnected
// missed (its write failed in a fault while this replica lived on, or a ProcessReady the process had
// given up on landed after it) would otherwise leave an ACTIVE process no one is connected to, and
// game sessions would be placed on it.
func (b *Backend) recordDisconnection(ctx context.Context, p *serversdk.Process, key processKey) {
	errStop := &serversdk.Error{}
	var aerr *serversdk.Error
	for attempt := 1; ; attempt++ { // a fault on the way to the API server (a few seconds) is waited out
		aerr = b.recordDisconnectionOnce(ctx, p, key, errStop)
		if aerr == nil || aerr == errStop || attempt == disconnectionAttempts {
			break
		}
		time.Sleep(2 * time.Second)
	}
	switch {
	case aerr == errStop:
	case aerr != nil:
		ctrl.LoggerFrom(ctx).Info("Could not record a closed connection; the compute's next change or the replica's Lease will tell", "process", p.ID, "reason", aerr.Message)
	default:
		ctrl.LoggerFrom(ctx).V(1).Info("Recorded a process's closed connection", "compute", p.ComputeName, "process", p.ID)
	}
}

// disconnectionAttempts is how many times a closed connection's record is tried, 2 s apart.
const disconnectionAttempts = 3

func (b *Backend) recordDisconnectionOnce(ctx context.Context, p *serversdk.Process, key processKey, errStop *serversdk.Error) *serversdk.Error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return b.patchCompute(ctx, p, func(c *gamev1.Compute) *serversdk.Error {
		i := slices.IndexFunc(c.Status.Processes, func(sp gamev1.ServerProcess) bool { return sp.ProcessID == p.ID })
		b.mu.Lock()
		reconnected := len(b.connected[key]) > 0 // checked again on each read: a reconnection here writes after it registers
		b.mu.Unlock()
		if i < 0 || reconnected || c.Status.Processes[i].Status != gamev1.ServerProcessActive || !b.holds(c.Status.Processes[i].Connection) {
			return errStop // nothing to record: another connection holds it, or it ended
		}
		now := metav1.NewTime(b.Clock.Now())
		c.Status.Processes[i].Connection.DisconnectionTime = &now
		return nil
	})
}

// OnCompute records as closed the connections that c's status shows held by this replica's run but that
// are not open here (recordDisconnection says why). The manager calls it on every change of a Compute in
// its cache, on every replica; the records are written in the background.
func (b *Backend) OnCompute(ctx context.Context, c *gamev1.Compute) {
	if b.Replica == "" {
		return
	}
	for _, sp := range c.Status.Processes {
		if sp.Status != gamev1.ServerProcessActive || !b.holds(sp.Connection) {
			continue
		}
		key := processKey{c.Namespace, c.Name, sp.ProcessID}
		b.mu.Lock()
		open := len(b.connected[key]) > 0
		b.mu.Unlock()
		if open {
			continue
		}
		p := &serversdk.Process{Identity: serversdk.Identity{Namespace: c.Namespace, FleetID: c.Spec.FleetID, ComputeName: c.Spec.ComputeName}, ID: sp.ProcessID}
		go b.recordDisconnection(context.WithoutCancel(ctx), p, key)
	}
}

// OnGameSession pushes CreateGameSession to the process connected here on which the operator placed the
// game session, once the placement is recorded (the manager calls it on every change of a GameSession in
// its cache, on every replica: only the one holding the connection pushes); or TerminateProcess, when the
// game session is TERMINATING. A push lost with its connection is made again on the next one (Connected),
// until the game activates the game session.
func (b *Backend) OnGameSession(ctx context.Context, gs *gamev1.GameSession) {
	if gs.Status.Process == nil {
		return
	}
	if gs.Status.Status == gamev1.GameSessionTerminating {
		b.terminate(ctx, gs)
		return
	}
	if gs.Status.Status == gamev1.GameSessionActivating {
		b.push(ctx, gs)
	}
}

// terminate pushes TerminateProcess to the process of a TERMINATING game session (TerminateGameSession's
// TRIGGER_ON_PROCESS_TERMINATE), when it is connected here, once per connection; the game answers with
// ProcessEnding, which ends the game session.
func (b *Backend) terminate(ctx context.Context, gs *gamev1.GameSession) {
	for _, conn := range b.connections(processKey{gs.Namespace, gs.Status.Process.Compute, gs.Status.Process.ProcessID}, func(c *connection) bool {
		if c.terminated {
			return false
		}
		c.terminated = true
		return true
	}) {
		if err := conn.p.Push("TerminateProcess", map[string]int64{"TerminationTime": b.Clock.Now().Add(terminationGrace).UnixMilli()}); err == nil {
			ctrl.LoggerFrom(ctx).Info("Pushed TerminateProcess", "gameSession", klog.KObj(gs), "process", gs.Status.Process.ProcessID)
		}
	}
}

// awaitsPush reports whether a connection of the process here has not had the game session uid pushed.
func (b *Backend) awaitsPush(key processKey, uid string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.ContainsFunc(b.connected[key], func(c *connection) bool { return c.pushed != uid })
}

// connections are the connections of a process to this replica that take (and mark, under the lock) a push.
func (b *Backend) connections(key processKey, take func(*connection) bool) []*connection {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*connection
	for _, c := range b.connected[key] {
		if take(c) {
			out = append(out, c)
		}
	}
	return out
}

// terminationGrace is the TerminationTime a TerminateProcess push announces: GameLift expects a process
// to exit within 30 seconds after ProcessEnding.
const terminationGrace = 30 * time.Second

// push pushes CreateGameSession to the connections here of the process gs is placed on that have not had
// it, once per connection.
func (b *Backend) push(ctx context.Context, gs *gamev1.GameSession) {
	ref, uid := gs.Status.Process, string(gs.UID)
	key := processKey{gs.Namespace, ref.Compute, ref.ProcessID}
	if gs.Status.GameSessionID == "" || !b.awaitsPush(key, uid) {
		return // not connected here, or pushed already: no need to read its compute
	}
	c, i := b.activeProcess(ctx, gs.Namespace, ref)
	if c == nil {
		return
	}
	conns := b.connections(key, func(conn *connection) bool {
		if conn.pushed == uid {
			return false
		}
		conn.pushed = uid // claimed under the lock: one push per connection
		return true
	})
	if len(conns) == 0 {
		return
	}
	props := map[string]string{}
	for _, p := range gs.Spec.GameProperties {
		props[p.Key] = p.Value
	}
	at := endpointOf(gs, c, c.Status.Processes[i])
	for _, conn := range conns {
		err := conn.p.Push("CreateGameSession", map[string]any{"GameSessionId": gs.Status.GameSessionID, "GameSessionName": gs.Spec.Name,
			"MaximumPlayerSessionCount": gs.Spec.MaximumPlayerSessionCount, "IpAddress": at.IPAddress, "DnsName": at.DNSName,
			"Port": at.Port, "GameProperties": props, "GameSessionData": gs.Spec.GameSessionData})
		if err != nil {
			continue // the connection is gone; the process's next one gets the push
		}
	}
	ctrl.LoggerFrom(ctx).Info("Pushed a game session to its process", "gameSession", klog.KObj(gs), "compute", klog.KObj(c), "process", ref.ProcessID)
}

// activeProcess is the compute of the process ref (in namespace) and the process's index in its status,
// when the process is ACTIVE; nil otherwise. It reads the cache, and the API server when the cache does not
// show the process ACTIVE: the push is made on a GameSession event, and this replica's Compute informer may
// be behind its GameSession informer (each relists on its own after a partition or a compaction), while
// the leader placed the game session only on a process it saw ACTIVE. Nothing would retry a push skipped
// on a stale Compute, and the game session would wait in ACTIVATING for its activation timeout.
func (b *Backend) activeProcess(ctx context.Context, namespace string, ref *gamev1.ServerProcessRef) (*gamev1.Compute, int) {
	key := client.ObjectKey{Namespace: namespace, Name: ref.Compute}
	active := func(c *gamev1.Compute) int {
		i := slices.IndexFunc(c.Status.Processes, func(sp gamev1.ServerProcess) bool { return sp.ProcessID == ref.ProcessID })
		if i < 0 || c.Status.Processes[i].Status != gamev1.ServerProcessActive {
			return -1
		}
		return i
	}
	c := &gamev1.Compute{} // the cache's object, read only
	if err := b.Reader.Get(ctx, key, c, client.UnsafeDisableDeepCopy); err == nil {
		if i := active(c); i >= 0 {
			return c, i
		}
	} else if !apierrors.IsNotFound(err) {
		return nil, -1
	}
	c = &gamev1.Compute{}
	if err := b.APIReader.Get(ctx, key, c); err != nil {
		return nil, -1
	}
	if i := active(c); i >= 0 {
		return c, i
	}
	return nil, -1
}

// endpointOf is where players reach the process sp of c that gs is placed on: the endpoint its placement
// recorded (an Agones GameServer's address and port), else the compute's address and the process's port.
func endpointOf(gs *gamev1.GameSession, c *gamev1.Compute, sp gamev1.ServerProcess) gamev1.Endpoint {
	if gs.Status.Process != nil && gs.Status.Process.Endpoint != nil {
		return *gs.Status.Process.Endpoint
	}
	return gamev1.Endpoint{IPAddress: c.Spec.IPAddress, DNSName: c.Spec.DNSName, Port: sp.Port}
}

func (b *Backend) compute(ctx context.Context, p *serversdk.Process) (*gamev1.Compute, error) {
	c := &gamev1.Compute{}
	if err := b.APIReader.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: computes.ObjectName(p.FleetID, p.ComputeName)}, c); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("compute %s of fleet %s is not registered (any more)", p.ComputeName, p.FleetID)
		}
		return nil, err
	}
	return c, nil
}

// Actions are the requests a process may make.
func (b *Backend) Actions() map[string]serversdk.Action {
	noBackfill := func(_ context.Context, _ *serversdk.Process, _ json.RawMessage) (any, *serversdk.Error) {
		return nil, serversdk.Errorf(http.StatusBadRequest, "matchmaking backfill is not offered: there is no FlexMatch matchmaker here")
	}
	return map[string]serversdk.Action{
		"ActivateServerProcess":  b.activateServerProcess,
		"HeartbeatServerProcess": b.heartbeat,
		"TerminateServerProcess": b.terminateServerProcess,
		"GetComputeCertificate":  b.getComputeCertificate,
		"GetFleetRoleCredentials": func(context.Context, *serversdk.Process, json.RawMessage) (any, *serversdk.Error) {
			// An empty AccessKeyId tells the SDK that this is not a managed fleet with a role.
			return map[string]any{"AccessKeyId": "", "SecretAccessKey": "", "SessionToken": "", "AssumedRoleUserArn": "", "AssumedRoleId": "", "Expiration": 0}, nil
		},
		"ActivateGameSession":               b.activateGameSession,
		"AcceptPlayerSession":               b.move(transitions.Accept),
		"RemovePlayerSession":               b.move(transitions.Remove),
		"DescribePlayerSessions":            b.describePlayerSessions,
		"UpdatePlayerSessionCreationPolicy": b.updatePlayerSessionCreationPolicy,
		"StartMatchBackfill":                noBackfill,
		"StopMatchBackfill":                 noBackfill,
	}
}

// activateServerProcess is ProcessReady: the process is ACTIVE on its compute, with its port and log paths.
func (b *Backend) activateServerProcess(ctx context.Context, p *serversdk.Process, body json.RawMessage) (any, *serversdk.Error) {
	var in struct {
		SdkVersion, SdkLanguage string
		Port                    int32
		LogPaths                []string
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, serversdk.Errorf(http.StatusBadRequest, "malformed ActivateServerProcess: %v", err)
	}
	if in.Port < 1 || in.Port > 60000 {
		return nil, serversdk.Errorf(http.StatusBadRequest, "Port must be between 1 and 60000, not %d", in.Port)
	}
	if len(in.LogPaths) > 16 {
		return nil, serversdk.Errorf(http.StatusBadRequest, "at most 16 LogPaths")
	}
	now := metav1.NewTime(b.Clock.Now())
	return nil, b.updateProcess(ctx, p, func(sp *gamev1.ServerProcess) {
		*sp = gamev1.ServerProcess{ProcessID: p.ID, Status: gamev1.ServerProcessActive, Port: in.Port, LogPaths: in.LogPaths,
			SDK: in.SdkLanguage + " " + in.SdkVersion, ActivationTime: &now, Connection: b.connection()}
	})
}

// terminateServerProcess is ProcessEnding: the process is TERMINATED.
func (b *Backend) terminateServerProcess(ctx context.Context, p *serversdk.Process, _ json.RawMessage) (any, *serversdk.Error) {
	now := metav1.NewTime(b.Clock.Now())
	return nil, b.updateProcess(ctx, p, func(sp *gamev1.ServerProcess) {
		if sp.Status == "" {
			sp.ProcessID = p.ID // ProcessEnding before ProcessReady
		}
		sp.Status, sp.TerminationTime, sp.TerminationReason = gamev1.ServerProcessTerminated, &now, gamev1.ProcessEndingReason
	})
}

// heartbeat is HealthCheck's report: a process's health is written only when it changes (an unhealthy
// process gets no new game session), so heartbeats of healthy processes cost the API server nothing.
func (b *Backend) heartbeat(ctx context.Context, p *serversdk.Process, body json.RawMessage) (any, *serversdk.Error) {
	var in struct{ HealthStatus bool }
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, serversdk.Errorf(http.StatusBadRequest, "malformed HeartbeatServerProcess: %v", err)
	}
	unchanged := func(c *gamev1.Compute) bool {
		i := slices.IndexFunc(c.Status.Processes, func(sp gamev1.ServerProcess) bool { return sp.ProcessID == p.ID })
		return i >= 0 && c.Status.Processes[i].Unhealthy == !in.HealthStatus
	}
	c := &gamev1.Compute{} // the cache's object, read only
	if err := b.Reader.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: computes.ObjectName(p.FleetID, p.ComputeName)}, c, client.UnsafeDisableDeepCopy); err == nil && unchanged(c) {
		return nil, nil // the common case: the cache says the same, nothing to read or write
	}
	// The cache differs, or does not have the process yet (a heartbeat right after ProcessReady): read it.
	live, err := b.compute(ctx, p)
	if err != nil {
		return nil, serversdk.Errorf(http.StatusNotFound, "%v", err)
	}
	i := slices.IndexFunc(live.Status.Processes, func(sp gamev1.ServerProcess) bool { return sp.ProcessID == p.ID })
	if i < 0 || live.Status.Processes[i].Status != gamev1.ServerProcessActive || unchanged(live) {
		return nil, nil // not registered (ProcessReady comes first), ended, or already so
	}
	return nil, b.updateProcess(ctx, p, func(sp *gamev1.ServerProcess) { sp.Unhealthy = !in.HealthStatus })
}

// updatePlayerSessionCreationPolicy sets the policy of the game session placed on the process.
func (b *Backend) updatePlayerSessionCreationPolicy(ctx context.Context, p *serversdk.Process, body json.RawMessage) (any, *serversdk.Error) {
	var in struct{ GameSessionId, PlayerSessionPolicy string }
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, serversdk.Errorf(http.StatusBadRequest, "malformed UpdatePlayerSessionCreationPolicy: %v", err)
	}
	policy := gamev1.PlayerSessionCreationPolicy(in.PlayerSessionPolicy)
	if policy != gamev1.PlayerSessionCreationPolicyAcceptAll && policy != gamev1.PlayerSessionCreationPolicyDenyAll {
		return nil, serversdk.Errorf(http.StatusBadRequest, "PlayerSessionPolicy must be ACCEPT_ALL or DENY_ALL")
	}
	gs, _, _, aerr := b.placedGameSession(ctx, p, in.GameSessionId)
	if aerr != nil {
		return nil, aerr
	}
	before := gs.DeepCopy()
	gs.Spec.PlayerSessionCreationPolicy = policy
	if err := b.Client.Patch(ctx, gs, client.MergeFrom(before)); err != nil {
		return nil, serversdk.Errorf(http.StatusInternalServerError, "%v", err)
	}
	return nil, nil
}

// placedGameSession is the game session placed on p, if its id is gameSessionID (its claim and the game
// session read from the API server), with p's compute and process entry (the cache's, unless the cache has
// not seen the process yet: read only).
func (b *Backend) placedGameSession(ctx context.Context, p *serversdk.Process, gameSessionID string) (*gamev1.GameSession, *gamev1.Compute, gamev1.ServerProcess, *serversdk.Error) {
	key := client.ObjectKey{Namespace: p.Namespace, Name: computes.ObjectName(p.FleetID, p.ComputeName)}
	cl := &gamev1.ProcessClaim{}
	if err := b.APIReader.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: computes.ClaimName(key.Name, p.ID)}, cl); apierrors.IsNotFound(err) {
		return nil, nil, gamev1.ServerProcess{}, serversdk.Errorf(http.StatusBadRequest, "no game session is placed on process %s", p.ID)
	} else if err != nil {
		return nil, nil, gamev1.ServerProcess{}, serversdk.Errorf(http.StatusInternalServerError, "%v", err)
	}
	gs := &gamev1.GameSession{}
	if err := b.APIReader.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: cl.Spec.GameSessionName}, gs); err != nil ||
		!computes.Holds(cl, gs) || gs.Status.GameSessionID != gameSessionID {
		return nil, nil, gamev1.ServerProcess{}, serversdk.Errorf(http.StatusBadRequest, "game session %s is not the one placed on process %s", gameSessionID, p.ID)
	}
	c := &gamev1.Compute{}
	find := func() int {
		return slices.IndexFunc(c.Status.Processes, func(sp gamev1.ServerProcess) bool { return sp.ProcessID == p.ID })
	}
	i := -1
	if err := b.Reader.Get(ctx, key, c, client.UnsafeDisableDeepCopy); err == nil {
		i = find()
	}
	if i < 0 {
		c2, err := b.compute(ctx, p)
		if err != nil {
			return nil, nil, gamev1.ServerProcess{}, serversdk.Errorf(http.StatusNotFound, "%v", err)
		}
		if c = c2; find() < 0 {
			return nil, nil, gamev1.ServerProcess{}, serversdk.Errorf(http.StatusBadRequest, "process %s is not registered (ProcessReady)", p.ID)
		}
		i = find()
	}
	return gs, c, c.Status.Processes[i], nil
}

// describePlayerSessions answers in the SDK's shape: times in epoch milliseconds (model/player.go).
func (b *Backend) describePlayerSessions(ctx context.Context, p *serversdk.Process, body json.RawMessage) (any, *serversdk.Error) {
	items, next, err := b.Describe(ctx, p.Namespace, body)
	if err != nil {
		var internal interface{ Internal() bool }
		if errors.As(err, &internal) && internal.Internal() {
			return nil, serversdk.Errorf(http.StatusInternalServerError, "%v", err)
		}
		return nil, serversdk.Errorf(http.StatusBadRequest, "%v", err)
	}
	type playerSession struct {
		PlayerId, PlayerSessionId, GameSessionId, FleetId, PlayerData, IpAddress, DnsName, Status string
		Port                                                                                      int32
		CreationTime, TerminationTime                                                             int64
	}
	out := struct {
		NextToken      string
		PlayerSessions []playerSession
	}{NextToken: next, PlayerSessions: []playerSession{}}
	for _, ps := range items {
		s := playerSession{PlayerId: ps.Spec.PlayerID, PlayerSessionId: ps.Status.PlayerSessionID, GameSessionId: ps.Status.GameSessionID,
			FleetId: ps.Status.FleetID, PlayerData: ps.Spec.PlayerData, IpAddress: ps.Status.IPAddress, DnsName: ps.Status.DNSName,
			Status: string(ps.Status.Status), Port: ps.Status.Port}
		if ps.Status.CreationTime != nil {
			s.CreationTime = ps.Status.CreationTime.UnixMilli()
		}
		if ps.Status.TerminationTime != nil {
			s.TerminationTime = ps.Status.TerminationTime.UnixMilli()
		}
		out.PlayerSessions = append(out.PlayerSessions, s)
	}
	return out, nil
}

// ClaimPrefix prefixes the process in the claim (status.gameServer) of a game session an SDK process
// activated: only that process's calls then act on it.
const ClaimPrefix = "gamelift-process:"

// activateGameSession is the game's ActivateGameSession: the game session placed on the process becomes
// ACTIVE, with its endpoint (the compute's address and the process's port, or the endpoint its placement
// recorded) and the process's claim, in one write (the game server's own transition, as a game server
// patching its game session makes it).
func (b *Backend) activateGameSession(ctx context.Context, p *serversdk.Process, body json.RawMessage) (any, *serversdk.Error) {
	var in struct{ GameSessionId string }
	if err := json.Unmarshal(body, &in); err != nil || in.GameSessionId == "" {
		return nil, serversdk.Errorf(http.StatusBadRequest, "ActivateGameSession needs a GameSessionId")
	}
	for attempt := 1; ; attempt++ {
		gs, c, sp, aerr := b.placedGameSession(ctx, p, in.GameSessionId)
		if aerr != nil {
			return nil, aerr
		}
		if gs.Status.Status != gamev1.GameSessionActivating || gs.Status.Port != 0 {
			return nil, serversdk.Errorf(http.StatusConflict, "game session %s is %s, not ACTIVATING: it was activated already", in.GameSessionId, gs.Status.Status)
		}
		before := gs.DeepCopy()
		gs.Status.Endpoint = endpointOf(gs, c, sp)
		gs.Status.Status = gamev1.GameSessionActive
		if gs.Status.GameServer == "" {
			gs.Status.GameServer = ClaimPrefix + c.Name + "/" + p.ID
		}
		err := b.Client.Status().Patch(ctx, gs, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
		switch {
		case err == nil:
			ctrl.LoggerFrom(ctx).Info("The game activated its game session", "gameSession", klog.KObj(gs), "process", p.ID)
			if b.Recorder != nil {
				b.Recorder.Eventf(gs, nil, corev1.EventTypeNormal, "Activated", "Activate", "Game session is ACTIVE at %s (ActivateGameSession of process %s)", gs.Status.Endpoint, p.ID)
			}
			return nil, nil
		case apierrors.IsConflict(err) && attempt < maxWriteAttempts:
			continue
		}
		return nil, serversdk.Errorf(http.StatusInternalServerError, "activating game session %s: %v", in.GameSessionId, err)
	}
}

// move is AcceptPlayerSession or RemovePlayerSession: a player session of the game session placed on the
// process, and only of it.
func (b *Backend) move(m transitions.Move) serversdk.Action {
	return func(ctx context.Context, p *serversdk.Process, body json.RawMessage) (any, *serversdk.Error) {
		var in struct{ GameSessionId, PlayerSessionId string }
		if err := json.Unmarshal(body, &in); err != nil || in.PlayerSessionId == "" {
			return nil, serversdk.Errorf(http.StatusBadRequest, "a PlayerSessionId is needed")
		}
		ps, refusal, err := b.Players.Apply(ctx, transitions.Request{Move: m, Namespace: p.Namespace, PlayerSessionID: in.PlayerSessionId,
			GameSessionID: in.GameSessionId, Authorize: func(ctx context.Context, ps *gamev1.PlayerSession) (*transitions.Refusal, error) {
				return b.hosts(ctx, p, ps)
			}})
		switch {
		case err != nil && apierrors.IsConflict(err):
			return nil, serversdk.Errorf(http.StatusConflict, "player session %s changed concurrently; retry", in.PlayerSessionId)
		case err != nil:
			return nil, serversdk.Errorf(http.StatusInternalServerError, "%v", err)
		case refusal != nil && refusal.Reason == transitions.NotFound:
			return nil, serversdk.Errorf(http.StatusNotFound, "%s", refusal.Message)
		case refusal != nil:
			return nil, serversdk.Errorf(http.StatusBadRequest, "%s", refusal.Message)
		}
		ctrl.LoggerFrom(ctx).V(1).Info("A game server process moved a player session", "playerSession", klog.KObj(ps), "status", ps.Status.Status, "process", p.ID)
		return nil, nil
	}
}

// hosts refuses a player session of another game session than the one placed on the process.
func (b *Backend) hosts(ctx context.Context, p *serversdk.Process, ps *gamev1.PlayerSession) (*transitions.Refusal, error) {
	key := client.ObjectKey{Namespace: p.Namespace, Name: computes.ClaimName(computes.ObjectName(p.FleetID, p.ComputeName), p.ID)}
	cl := &gamev1.ProcessClaim{} // the cache's object, read only; the API server's when the cache has not seen it yet
	err := b.Reader.Get(ctx, key, cl, client.UnsafeDisableDeepCopy)
	if apierrors.IsNotFound(err) {
		err = b.APIReader.Get(ctx, key, cl)
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, err
	}
	if err == nil && cl.Spec.GameSessionName == ps.Spec.GameSessionName {
		gs := &gamev1.GameSession{}
		if err := b.Reader.Get(ctx, client.ObjectKey{Namespace: ps.Namespace, Name: ps.Spec.GameSessionName}, gs, client.UnsafeDisableDeepCopy); err != nil {
			return nil, err
		}
		if computes.Holds(cl, gs) {
			return nil, nil
		}
	}
	return &transitions.Refusal{Reason: transitions.NotYours, Message: fmt.Sprintf("player session %s is not of the game session placed on process %s", ps.Status.PlayerSessionID, p.ID)}, nil
}

func (b *Backend) getComputeCertificate(ctx context.Context, p *serversdk.Process, _ json.RawMessage) (any, *serversdk.Error) {
	c, err := b.compute(ctx, p)
	if err != nil {
		return nil, serversdk.Errorf(http.StatusNotFound, "%v", err)
	}
	return map[string]string{"CertificatePath": c.Spec.CertificatePath, "ComputeName": c.Spec.ComputeName}, nil
}

// maxWriteAttempts bounds the retries of a status write that met a concurrent one.
const maxWriteAttempts = 5

// updateProcess changes p's entry of its compute's processes (added when missing). A compute full of
// processes drops its oldest TERMINATED ones.
func (b *Backend) updateProcess(ctx context.Context, p *serversdk.Process, change func(*gamev1.ServerProcess)) *serversdk.Error {
	return b.patchCompute(ctx, p, func(c *gamev1.Compute) *serversdk.Error {
		i := slices.IndexFunc(c.Status.Processes, func(sp gamev1.ServerProcess) bool { return sp.ProcessID == p.ID })
		if i < 0 {
			c.Status.Processes = append(c.Status.Processes, gamev1.ServerProcess{})
			i = len(c.Status.Processes) - 1
		}
		change(&c.Status.Processes[i])
		for len(c.Status.Processes) > maxProcesses {
			j := slices.IndexFunc(c.Status.Processes, func(sp gamev1.ServerProcess) bool { return sp.Status == gamev1.ServerProcessTerminated })
			if j < 0 {
				return serversdk.Errorf(http.StatusConflict, "compute %s already runs %d processes", p.ComputeName, maxProcesses)
			}
			c.Status.Processes = slices.Delete(c.Status.Processes, j, j+1)
		}
		return nil
	})
}

// patchCompute reads p's compute from the API server, lets change edit its status, and writes it under the
// optimistic lock, reading it again after a conflict (maxWriteAttempts times at most). The writes of one
// compute from this replica take turns (its processes start together: 50 ProcessReady at once would
// otherwise conflict with each other), so only another replica's or the leader's write can conflict.
func (b *Backend) patchCompute(ctx context.Context, p *serversdk.Process, change func(*gamev1.Compute) *serversdk.Error) *serversdk.Error {
	lock, _ := b.computeLocks.LoadOrStore(processKey{namespace: p.Namespace, compute: computes.ObjectName(p.FleetID, p.ComputeName)}, &sync.Mutex{})
	lock.(*sync.Mutex).Lock()
	defer lock.(*sync.Mutex).Unlock()
	for attempt := 1; ; attempt++ {
		c, err := b.compute(ctx, p)
		if err != nil {
			return serversdk.Errorf(http.StatusNotFound, "%v", err)
		}
		before := c.DeepCopy()
		if aerr := change(c); aerr != nil {
			return aerr
		}
		err = b.Client.Status().Patch(ctx, c, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
		switch {
		case err == nil:
			return nil
		case apierrors.IsConflict(err) && attempt < maxWriteAttempts:
			continue
		case apierrors.IsInvalid(err):
			return serversdk.Errorf(http.StatusBadRequest, "%v", err)
		}
		ctrl.LoggerFrom(ctx).Error(err, "Writing a compute's status", "compute", klog.KObj(c), "process", p.ID)
		return serversdk.Errorf(http.StatusInternalServerError, "writing the compute failed: %v", err)
	}
}

// maxProcesses is how many processes a compute holds (GameLift runs at most 50 on one).
const maxProcesses = 50
