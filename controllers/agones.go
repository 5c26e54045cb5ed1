package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/agones"
	"github.com/playersessions/operator/internal/ids"
	"github.com/playersessions/operator/internal/indexes"
	"github.com/playersessions/operator/internal/metrics"
)

// The bridge to Agones. A GameSession with spec.agones is bound to a GameServer (named, or allocated from a
// Fleet); the GameServer's state and address drive the game session's status and endpoint, and its players
// List accepts and completes player sessions. The GameSession reconciler runs reconcileAgones, the
// PlayerSession reconciler reconcileAgonesPlayers: each decision rides on the reconciler's one status write.
// The operator never writes a GameServer except through allocation, and puts no finalizer on one.

// +kubebuilder:rbac:groups=agones.dev,resources=gameservers,verbs=get;list;watch
// +kubebuilder:rbac:groups=agones.dev,resources=fleets,verbs=get;list;watch
// +kubebuilder:rbac:groups=allocation.agones.dev,resources=gameserverallocations,verbs=create

// bindingOutcome is what a GameServer means for its game session.
type bindingOutcome int

const (
	bindingWait   bindingOutcome = iota // ACTIVATING: not Allocated (or no address) yet
	bindingActive                       // ACTIVE at the endpoint
	bindingEnd                          // TERMINATED
	bindingError                        // ERROR
)

// bindingDecision is decideBinding's answer.
type bindingDecision struct {
	outcome      bindingOutcome
	reason       string // GameServerBound condition reason
	message      string
	statusReason string // GameSession status.statusReason, for an end
	endpoint     gamev1.Endpoint
}

// decideBinding decides, from the GameServer as it is now (nil: it does not exist), what the game session
// is. It is level-based: the same GameServer always gives the same answer. bound is what was recorded when
// the game session became ACTIVE on it (empty UID: never).
func decideBinding(spec *gamev1.AgonesGameServer, bound gamev1.AgonesStatus, name string, server *agones.GameServer) bindingDecision {
	wasActive := bound.GameServerUID != ""
	switch {
	case server == nil && wasActive, server != nil && wasActive && server.UID != bound.GameServerUID:
		return bindingDecision{outcome: bindingEnd, reason: gamev1.GameServerGoneReason, statusReason: "INTERRUPTED",
			message: fmt.Sprintf("GameServer %s was deleted or replaced", name)}
	case server == nil:
		return bindingDecision{outcome: bindingWait, reason: gamev1.WaitingForGameServerReason,
			message: fmt.Sprintf("GameServer %s does not exist", name)}
	case server.Deleting || server.State == agones.StateShutdown:
		return bindingDecision{outcome: bindingEnd, reason: gamev1.GameServerShutdownReason, statusReason: "TRIGGERED_ON_PROCESS_TERMINATE",
			message: fmt.Sprintf("GameServer %s shut down", name)}
	case server.State == agones.StateError || server.State == agones.StateUnhealthy:
		return bindingDecision{outcome: bindingError, reason: gamev1.GameServerUnhealthyReason,
			message: fmt.Sprintf("GameServer %s is %s", name, server.State)}
	case server.State == agones.StateAllocated && wasActive && server.LastAllocated != bound.LastAllocated:
		return bindingDecision{outcome: bindingEnd, reason: gamev1.GameServerReleasedReason, statusReason: "TRIGGERED_ON_PROCESS_TERMINATE",
			message: fmt.Sprintf("GameServer %s was allocated again (%s %s)", name, agones.LastAllocatedAnnotation, server.LastAllocated)}
	case server.State == agones.StateAllocated:
		ip, dns, port, ok := server.Endpoint(spec.PortName)
		if !ok {
			return bindingDecision{outcome: bindingWait, reason: gamev1.WaitingForGameServerReason,
				message: fmt.Sprintf("GameServer %s is Allocated but has no address or port %q yet", name, spec.PortName)}
		}
		return bindingDecision{outcome: bindingActive, reason: gamev1.GameServerAllocatedReason, endpoint: gamev1.Endpoint{IPAddress: ip, DNSName: dns, Port: port},
			message: fmt.Sprintf("Bound to Allocated GameServer %s", name)}
	case wasActive:
		return bindingDecision{outcome: bindingEnd, reason: gamev1.GameServerReleasedReason, statusReason: "TRIGGERED_ON_PROCESS_TERMINATE",
			message: fmt.Sprintf("GameServer %s went back to %s", name, server.State)}
	}
	return bindingDecision{outcome: bindingWait, reason: gamev1.WaitingForGameServerReason,
		message: fmt.Sprintf("GameServer %s is %s; waiting for it to be Allocated", name, server.State)}
}

// reconcileAgones binds an Agones game session to its GameServer (allocating one from the fleet first if
// need be) and mirrors the GameServer into the game session's status. It returns when to look again.
func (r *GameSessionReconciler) reconcileAgones(ctx context.Context, fx *effects, gs *gamev1.GameSession, players []gamev1.PlayerSession) (time.Duration, error) {
	spec := gs.Spec.Agones
	if spec == nil || gs.Status.Status == gamev1.GameSessionTerminated {
		return 0, nil
	}
	if gs.Status.Agones == nil {
		gs.Status.Agones = &gamev1.AgonesStatus{}
	}
	if !r.Agones.Installed() {
		r.setBound(gs, metav1.ConditionFalse, gamev1.WaitingForGameServerReason, "Agones is not installed (no agones.dev GameServer API)")
		return 0, nil
	}
	name := indexes.GameServerOf(gs)
	var server *agones.GameServer
	var err error
	if name == "" {
		if gs.Status.Status == gamev1.GameSessionError {
			return 0, nil
		}
		var wait time.Duration
		if server, wait, err = r.allocate(ctx, fx, gs); err != nil || server == nil {
			return wait, err
		}
		name = server.Name
	} else if server, err = r.Agones.GameServer(ctx, client.ObjectKey{Namespace: gs.Namespace, Name: name}, false); err != nil {
		return 0, err
	}
	d := decideBinding(spec, *gs.Status.Agones, name, server)
	if d.outcome == bindingEnd || d.outcome == bindingError {
		// Final: decide again on the GameServer as the API server holds it, not as the cache last saw it.
		if server, err = r.Agones.GameServer(ctx, client.ObjectKey{Namespace: gs.Namespace, Name: name}, true); err != nil {
			return 0, err
		}
		d = decideBinding(spec, *gs.Status.Agones, name, server)
	}
	var wait time.Duration
	if d.outcome == bindingActive {
		placed, again, err := r.placeOnGameServer(ctx, gs, name, d.endpoint)
		if err != nil {
			return 0, err
		}
		if placed && gs.Status.Port == 0 {
			d.endpoint = gs.Status.Endpoint // the game's ActivateGameSession makes it ACTIVE, at d.endpoint
		}
		wait = again
	}
	r.applyBinding(ctx, fx, gs, name, server, d)
	if server != nil && d.outcome != bindingEnd {
		r.reportUnknownPlayers(ctx, fx, gs, server, players)
	}
	return wait, nil
}

// applyBinding writes a binding decision into the game session's status.
func (r *GameSessionReconciler) applyBinding(ctx context.Context, fx *effects, gs *gamev1.GameSession, name string, server *agones.GameServer, d bindingDecision) {
	st := gs.Status.Agones
	switch d.outcome {
	case bindingActive:
		if st.GameServerUID == "" {
			st.GameServerName, st.GameServerUID, st.LastAllocated = name, server.UID, server.LastAllocated
			fx.add(func() {
				metrics.AgonesBinds.Inc()
				ctrl.LoggerFrom(ctx).Info("Game session bound to GameServer", "gameSession", klog.KObj(gs), "gameServer", name)
				r.Recorder.Eventf(gs, nil, corev1.EventTypeNormal, "GameServerBound", "Bind", "Bound to Allocated GameServer %s", name)
			})
		}
		if gs.Status.Status == gamev1.GameSessionActivating || gs.Status.Status == gamev1.GameSessionActive {
			gs.Status.Endpoint = d.endpoint
		}
		r.setBound(gs, metav1.ConditionTrue, d.reason, d.message)
	case bindingEnd:
		gs.Status.Status = gamev1.GameSessionTerminated
		if gs.Status.StatusReason == "" {
			gs.Status.StatusReason = d.statusReason
		}
		r.setBound(gs, metav1.ConditionFalse, d.reason, d.message)
		fx.add(func() { r.Recorder.Eventf(gs, nil, corev1.EventTypeNormal, d.reason, "Unbind", "%s", d.message) })
	case bindingError:
		if gs.Status.Status != gamev1.GameSessionError {
			gs.Status.Status = gamev1.GameSessionError
			fx.add(func() { r.Recorder.Eventf(gs, nil, corev1.EventTypeWarning, d.reason, "Unbind", "%s", d.message) })
		}
		r.setBound(gs, metav1.ConditionFalse, d.reason, d.message)
	default:
		r.setBound(gs, metav1.ConditionFalse, d.reason, d.message)
	}
}

func (r *GameSessionReconciler) setBound(gs *gamev1.GameSession, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&gs.Status.Conditions, metav1.Condition{
		Type: gamev1.GameServerBoundCondition, Status: status, Reason: reason, Message: message, ObservedGeneration: gs.Generation,
	})
}

// allocate gets the game session a GameServer from its fleet. It first looks for one an earlier allocation
// labelled for this game session (whose answer, or whose status write, was lost), so that a retry or a
// restart never allocates twice. It allocates only when the cache shows a Ready GameServer the allocation
// could get: a game session on an empty fleet waits for one (a GameServer becoming Ready wakes the oldest
// waiting game sessions it could serve, gameSessionsForGameServer) at the cost of no request at all,
// instead of each retrying allocations on its own backoff. Before it allocates, it looks again, live, for a
// GameServer already labelled for it. Allocations that find none (a race for the same GameServer) are
// retried after a backoff persisted in status; after the allocation timeout it gives up with ERROR. It
// returns the GameServer allocated or found, or when to try again.
func (r *GameSessionReconciler) allocate(ctx context.Context, fx *effects, gs *gamev1.GameSession) (*agones.GameServer, time.Duration, error) {
	spec, st, now := gs.Spec.Agones, gs.Status.Agones, r.Clock.Now()
	found, err := r.Agones.AllocatedForCached(ctx, gs.Namespace, string(gs.UID))
	if err != nil {
		return nil, 0, err
	}
	if found != nil {
		st.GameServerName = found.Name
		return found, 0, nil
	}
	deadline := gs.CreationTimestamp.Add(r.AgonesAllocationTimeout)
	if !now.Before(deadline) {
		gs.Status.Status = gamev1.GameSessionError
		msg := fmt.Sprintf("No GameServer could be allocated from fleet %s within %s (%d attempts)", spec.FleetName, r.AgonesAllocationTimeout, st.AllocationAttempts)
		r.setBound(gs, metav1.ConditionFalse, gamev1.AllocationTimedOutReason, msg)
		fx.add(func() {
			ctrl.LoggerFrom(ctx).Info("Allocation timed out", "gameSession", klog.KObj(gs), "fleet", spec.FleetName)
			r.Recorder.Eventf(gs, nil, corev1.EventTypeWarning, gamev1.AllocationTimedOutReason, "Allocate", "%s", msg)
		})
		return nil, 0, nil
	}
	if st.LastAllocationTime != nil {
		if next := st.LastAllocationTime.Add(allocationBackoff(st.AllocationAttempts)); now.Before(next) {
			return nil, min(next.Sub(now), deadline.Sub(now)), nil
		}
	}
	selectors := selectorsOf(spec)
	ready, err := r.Agones.ReadyServers(ctx, gs.Namespace, spec.FleetName, selectors)
	if err != nil {
		return nil, 0, err
	}
	if len(ready) == 0 {
		r.setBound(gs, metav1.ConditionFalse, gamev1.AllocatingReason, fmt.Sprintf("Waiting for a Ready GameServer in fleet %s that the selectors match (allocating when there is one)", spec.FleetName))
		// A Ready GameServer's event wakes it; it also looks again at the cache now and then, which costs
		// the API server nothing, in case a wake-up went to a game session the cache showed waiting still.
		return nil, min(emptyFleetRecheck, deadline.Sub(now)), nil
	}
	if found, err = r.Agones.AllocatedFor(ctx, gs.Namespace, string(gs.UID)); err != nil || found != nil {
		if found != nil {
			st.GameServerName = found.Name
		}
		return found, 0, err
	}
	state, name, err := r.Agones.Allocate(ctx, agones.AllocationRequest{
		Namespace: gs.Namespace, Fleet: spec.FleetName, Selectors: selectors,
		GameSessionUID: string(gs.UID), GameSession: gs.Namespace + "/" + gs.Name,
		PlayersList: spec.PlayersList, Capacity: int64(gs.Spec.MaximumPlayerSessionCount),
	})
	at := metav1.NewMicroTime(now)
	st.LastAllocationTime = &at
	if err != nil {
		metrics.AgonesAllocations.WithLabelValues("Failed").Inc()
		st.AllocationAttempts++
		r.setBound(gs, metav1.ConditionFalse, gamev1.AllocatingReason, "Allocation from fleet "+spec.FleetName+" failed: "+err.Error())
		return nil, min(allocationBackoff(st.AllocationAttempts), deadline.Sub(now)), nil
	}
	metrics.AgonesAllocations.WithLabelValues(state).Inc()
	if state != agones.AllocationAllocated {
		st.AllocationAttempts++
		msg := fmt.Sprintf("No GameServer available in fleet %s (%s, attempt %d)", spec.FleetName, state, st.AllocationAttempts)
		r.setBound(gs, metav1.ConditionFalse, gamev1.AllocatingReason, msg)
		ctrl.LoggerFrom(ctx).V(1).Info("Allocation found no GameServer", "gameSession", klog.KObj(gs), "fleet", spec.FleetName, "state", state)
		return nil, min(allocationBackoff(st.AllocationAttempts), deadline.Sub(now)), nil
	}
	st.GameServerName = name
	ctrl.LoggerFrom(ctx).Info("Allocated a GameServer", "gameSession", klog.KObj(gs), "fleet", spec.FleetName, "gameServer", name)
	r.Recorder.Eventf(gs, nil, corev1.EventTypeNormal, "Allocated", "Allocate", "Allocated GameServer %s from fleet %s", name, spec.FleetName)
	// The cache may not have the GameServer's Allocated state yet: read it live.
	server, err := r.Agones.GameServer(ctx, client.ObjectKey{Namespace: gs.Namespace, Name: name}, true)
	if err != nil || server == nil {
		return nil, time.Second, err
	}
	return server, 0, nil
}

// emptyFleetRecheck is how often a game session waiting on an empty fleet looks at the cache again.
const emptyFleetRecheck = 2 * time.Second

// selectorsOf are the label selectors of a game session's fleet allocation.
func selectorsOf(spec *gamev1.AgonesGameServer) []metav1.LabelSelector {
	selectors := make([]metav1.LabelSelector, 0, len(spec.Selectors))
	for _, s := range spec.Selectors {
		selectors = append(selectors, metav1.LabelSelector{MatchLabels: s.MatchLabels, MatchExpressions: s.MatchExpressions})
	}
	return selectors
}

// allocationBackoff is the wait after the n-th unsuccessful allocation: 250 ms doubling, at most 5 s.
func allocationBackoff(n int32) time.Duration {
	d := 250 * time.Millisecond
	for i := int32(1); i < n && d < 5*time.Second; i++ {
		d *= 2
	}
	return min(d, 5*time.Second)
}

// maxUnknownPlayers bounds status.agones.unknownPlayers.
const maxUnknownPlayers = 16

// reportUnknownPlayers records the values of the players List that match none of the game session's player
// sessions: counted and reported once each (an event), listed in status. They are not errors: a game server
// may track players the operator does not seat.
func (r *GameSessionReconciler) reportUnknownPlayers(ctx context.Context, fx *effects, gs *gamev1.GameSession, server *agones.GameServer, players []gamev1.PlayerSession) {
	spec, st := gs.Spec.Agones, gs.Status.Agones
	known := make(map[string]struct{}, len(players))
	for i := range players {
		known[playersListValue(spec, &players[i])] = struct{}{}
	}
	var unknown []string
	for v := range server.Players(spec.PlayersList) {
		if _, ok := known[v]; !ok {
			unknown = append(unknown, v)
		}
	}
	slices.Sort(unknown)
	var fresh []string
	for _, v := range unknown {
		if !slices.Contains(st.UnknownPlayers, v) {
			fresh = append(fresh, v)
		}
	}
	if len(fresh) > 0 {
		fx.add(func() {
			metrics.AgonesUnknownListValues.Add(float64(len(fresh)))
			ctrl.LoggerFrom(ctx).Info("Players List holds values of no player session", "gameSession", klog.KObj(gs), "values", fresh)
			r.Recorder.Eventf(gs, nil, corev1.EventTypeWarning, "UnknownPlayers", "Track",
				"GameServer %s list %q holds %d value(s) that match no player session: %v", server.Name, spec.PlayersList, len(fresh), fresh)
		})
	}
	if len(unknown) > maxUnknownPlayers {
		unknown = unknown[:maxUnknownPlayers]
	}
	st.UnknownPlayers = unknown
}

// playersListValue is what the game server appends to the players List for ps.
func playersListValue(spec *gamev1.AgonesGameServer, ps *gamev1.PlayerSession) string {
	if spec.PlayersListValues == gamev1.AgonesListValuesPlayerID {
		return ps.Spec.PlayerID
	}
	return ids.PlayerSessionID(ps)
}

// reconcileAgonesPlayers accepts (RESERVED -> ACTIVE) a player session whose value is in its GameServer's
// players List, and completes (ACTIVE -> COMPLETED) one whose value left it. It decides from the whole List
// as it is now, never from the event that brought it here. before is the player session as read.
func (r *PlayerSessionReconciler) reconcileAgonesPlayers(ctx context.Context, fx *effects, before, ps *gamev1.PlayerSession, gs *gamev1.GameSession) error {
	if gs == nil || gs.Spec.Agones == nil || gs.Status.Agones == nil || gs.Status.Agones.GameServerUID == "" ||
		!before.Status.Status.HoldsSeat() || ps.Status.Status != before.Status.Status ||
		ps.Status.GameSessionID != gs.Status.GameSessionID || !r.Agones.Installed() {
		return nil
	}
	server, err := r.Agones.GameServer(ctx, client.ObjectKey{Namespace: gs.Namespace, Name: gs.Status.Agones.GameServerName}, false)
	if err != nil || server == nil || server.UID != gs.Status.Agones.GameServerUID {
		return err // Its game session decides what a missing or replaced GameServer means.
	}
	_, present := server.Players(gs.Spec.Agones.PlayersList)[playersListValue(gs.Spec.Agones, ps)]
	switch {
	case ps.Status.Status == gamev1.PlayerSessionReserved && present:
		ps.Status.Status = gamev1.PlayerSessionActive
		fx.add(func() {
			metrics.AgonesPlayerTransitions.WithLabelValues(string(gamev1.PlayerSessionActive)).Inc()
			r.Recorder.Eventf(ps, nil, corev1.EventTypeNormal, "Accepted", "Accept", "Player is in GameServer %s list %q", server.Name, gs.Spec.Agones.PlayersList)
		})
	case ps.Status.Status == gamev1.PlayerSessionActive && !present:
		ps.Status.Status = gamev1.PlayerSessionCompleted
		fx.add(func() { metrics.AgonesPlayerTransitions.WithLabelValues(string(gamev1.PlayerSessionCompleted)).Inc() })
	}
	return nil
}

// listMismatch reports whether ps's status disagrees with its presence in the players List: RESERVED and
// present (to accept) or ACTIVE and absent (to complete).
func listMismatch(ps *gamev1.PlayerSession, spec *gamev1.AgonesGameServer, players map[string]struct{}) bool {
	_, present := players[playersListValue(spec, ps)]
	return (ps.Status.Status == gamev1.PlayerSessionReserved && present) || (ps.Status.Status == gamev1.PlayerSessionActive && !present)
}

// gameSessionsOfGameServer lists the game sessions bound to (or waiting for) the GameServer o.
func gameSessionsOfGameServer(ctx context.Context, c client.Reader, o client.Object) []gamev1.GameSession {
	var list gamev1.GameSessionList
	if err := c.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{indexes.GameSessionGameServer: o.GetName()}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Listing game sessions of GameServer", "gameServer", klog.KObj(o))
		return nil
	}
	return list.Items
}

// gameSessionsForGameServer maps a GameServer event to its game sessions: those bound to it, the one an
// allocation labelled it for, and, when it is Ready, the oldest game sessions waiting for a GameServer of its
// fleet that it could serve, as many as the fleet has Ready GameServers (the others wait for the next),
// passing over those the cache shows a GameServer allocated to already.
func (r *GameSessionReconciler) gameSessionsForGameServer(ctx context.Context, o client.Object) []reconcile.Request {
	var reqs []reconcile.Request
	for _, gs := range gameSessionsOfGameServer(ctx, r.Client, o) {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&gs)})
	}
	if ns, name, ok := strings.Cut(o.GetAnnotations()[agones.GameSessionAnnotation], "/"); ok {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: name}})
	}
	u, ok := o.(*unstructured.Unstructured)
	fleet := o.GetLabels()[agones.FleetLabel]
	if !ok || fleet == "" || agones.Parse(u).State != agones.StateReady {
		return reqs
	}
	ready, err := r.Agones.ReadyServers(ctx, o.GetNamespace(), fleet, nil)
	if err != nil || len(ready) == 0 {
		return reqs
	}
	var waiting gamev1.GameSessionList
	if err := r.Client.List(ctx, &waiting, client.InNamespace(o.GetNamespace()), client.MatchingFields{indexes.GameSessionAwaitingAllocation: fleet}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Listing game sessions waiting for a GameServer", "fleet", fleet)
		return reqs
	}
	slices.SortFunc(waiting.Items, func(a, b gamev1.GameSession) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	woken := 0
	for i := range waiting.Items {
		gs := &waiting.Items[i]
		if !agones.Matches(o.GetLabels(), selectorsOf(gs.Spec.Agones)) {
			continue
		}
		if found, err := r.Agones.AllocatedForCached(ctx, gs.Namespace, string(gs.UID)); err != nil || found != nil {
			// Allocated already (its status not yet in the cache): the wake-up goes to the next one.
			continue
		}
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(gs)})
		if woken++; woken == len(ready) {
			break
		}
	}
	return reqs
}

// playerSessionsForGameServer maps a GameServer event to the seat-holding player sessions of its game
// sessions whose status disagrees with the players List (the only ones it can move).
func (r *PlayerSessionReconciler) playerSessionsForGameServer(ctx context.Context, o client.Object) []reconcile.Request {
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return nil
	}
	server := agones.Parse(u)
	var reqs []reconcile.Request
	for _, gs := range gameSessionsOfGameServer(ctx, r.Client, o) {
		if gs.Spec.Agones == nil || gs.Status.Agones == nil || gs.Status.Agones.GameServerUID != server.UID {
			continue
		}
		players := server.Players(gs.Spec.Agones.PlayersList)
		var list gamev1.PlayerSessionList
		if err := r.List(ctx, &list, client.InNamespace(gs.Namespace), client.MatchingFields{indexes.PlayerSessionGameSessionName: gs.Name}, client.UnsafeDisableDeepCopy); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Listing player sessions of game session", "gameSession", klog.KObj(&gs))
			continue
		}
		for i := range list.Items {
			ps := &list.Items[i]
			if ps.Status.GameSessionID == gs.Status.GameSessionID && listMismatch(ps, gs.Spec.Agones, players) {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(ps)})
			}
		}
	}
	return reqs
}
