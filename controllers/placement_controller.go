package controllers

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/admission"
	"github.com/playersessions/operator/internal/computes"
	"github.com/playersessions/operator/internal/indexes"
	"github.com/playersessions/operator/internal/metrics"
)

// GameSessionPlacementReconciler runs game session placements: it puts the new game session on the first
// destination of the placement's queue that can take it now, waits for it to become ACTIVE, reserves the
// desired players' seats in it as one group (all or none), and ends the placement FULFILLED; or
// CANCELLED (stopped while PENDING), TIMED_OUT (the queue's timeout passed), FAILED (the queue is gone,
// the players were refused). Its progress is persisted in the placement's status (the attempts, each
// with the game session made there, named after the placement and the attempt), and every object it makes
// has a name derived from the placement, so a restart or a new leader resumes it without placing twice.
type GameSessionPlacementReconciler struct {
	Deps
}

// +kubebuilder:rbac:groups=game.playersessions.dev,resources=gamesessionplacements,verbs=get;list;watch
// +kubebuilder:rbac:groups=game.playersessions.dev,resources=gamesessionplacements/status,verbs=get;patch
// +kubebuilder:rbac:groups=game.playersessions.dev,resources=gamesessionqueues,verbs=get;list;watch
// +kubebuilder:rbac:groups=game.playersessions.dev,resources=gamesessions,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=game.playersessions.dev,resources=playersessions,verbs=get;list;watch;create

// placementRecheck is how soon a PENDING placement whose destinations cannot take a game session now looks
// again (a fleet's capacity changes without an event the placement watches).
const placementRecheck = time.Second

// maxAttempts bounds a placement's attempts (its status lists them).
const maxAttempts = 100

// Reconcile advances one placement and says when to look again (its timeout, or a recheck).
func (r *GameSessionPlacementReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	defer metrics.ObserveReconcile("gamesessionplacement", time.Now())
	p := &gamev1.GameSessionPlacement{}
	if err := r.Get(ctx, req.NamespacedName, p); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if ended(p) && p.Status.ObservedGeneration == p.Generation {
		return ctrl.Result{}, nil
	}
	before := p.DeepCopy()
	fx := &effects{}
	defer writeStatus(ctx, r.Client, before, p, fx, func(ok bool) {
		if ok {
			p.Status.ObservedGeneration = p.Generation
		}
		setPlacementReadiness(p)
	}, &result, &retErr)
	if ended(p) {
		return ctrl.Result{}, nil
	}
	if p.Status.Status == "" {
		start := p.CreationTimestamp
		p.Status.Status, p.Status.StartTime = gamev1.PlacementPending, &start
	}
	wait, err := r.reconcilePending(ctx, fx, p)
	return ctrl.Result{RequeueAfter: wait}, err
}

func ended(p *gamev1.GameSessionPlacement) bool {
	return p.Status.Status != "" && p.Status.Status != gamev1.PlacementPending
}

// reconcilePending decides a PENDING placement's next step, in order: stopped, its queue gone, timed
// out, its current game session's progress, a new attempt.
func (r *GameSessionPlacementReconciler) reconcilePending(ctx context.Context, fx *effects, p *gamev1.GameSessionPlacement) (time.Duration, error) {
	if p.Spec.Stopped {
		return 0, r.end(ctx, fx, p, gamev1.PlacementCancelled, "Stopped (StopGameSessionPlacement) while PENDING")
	}
	q, err := r.queue(ctx, p)
	if err != nil {
		return 0, err
	}
	if q == nil {
		return 0, r.end(ctx, fx, p, gamev1.PlacementFailed, fmt.Sprintf("Game session queue %s not found", p.Spec.GameSessionQueueName))
	}
	timeout := time.Duration(gamev1.DefaultQueueTimeoutSeconds) * time.Second
	if q.Spec.TimeoutInSeconds != nil {
		timeout = time.Duration(*q.Spec.TimeoutInSeconds) * time.Second
	}
	left := p.Status.StartTime.Add(timeout).Sub(r.Clock.Now())
	if left <= 0 {
		return 0, r.end(ctx, fx, p, gamev1.PlacementTimedOut, fmt.Sprintf("Not fulfilled within the queue's timeout, %s", timeout))
	}
	if n := len(p.Status.Attempts); n > 0 {
		wait, next, err := r.reconcileAttempt(ctx, fx, p, p.Status.Attempts[n-1])
		if err != nil || !next {
			return earliest(wait, left), err
		}
	}
	if len(p.Status.Attempts) >= maxAttempts {
		return 0, r.end(ctx, fx, p, gamev1.PlacementFailed, fmt.Sprintf("No destination kept a game session in %d attempts", maxAttempts))
	}
	return earliest(r.attempt(ctx, p, q), left), nil
}

// queue is the placement's queue (nil: none of that name in the namespace).
func (r *GameSessionPlacementReconciler) queue(ctx context.Context, p *gamev1.GameSessionPlacement) (*gamev1.GameSessionQueue, error) {
	var list gamev1.GameSessionQueueList
	if err := r.List(ctx, &list, client.InNamespace(p.Namespace), client.MatchingFields{indexes.QueueName: p.Spec.GameSessionQueueName}); err != nil {
		return nil, err
	}
	if len(list.Items) == 0 {
		return nil, nil
	}
	return &list.Items[0], nil
}

// reconcileAttempt follows the game session of the current attempt: ACTIVE, its players reserved:
// FULFILLED; its players refused: FAILED; it could not start there (no process or GameServer was left
// for it, it failed, it is gone): next is true, the destinations are tried again.
func (r *GameSessionPlacementReconciler) reconcileAttempt(ctx context.Context, fx *effects, p *gamev1.GameSessionPlacement, a gamev1.PlacementAttempt) (wait time.Duration, next bool, err error) {
	gs := &gamev1.GameSession{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: a.GameSessionName}, gs); apierrors.IsNotFound(err) {
		// Made by this placement a moment ago, or deleted since: the API server says which.
		if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: a.GameSessionName}, gs); apierrors.IsNotFound(err) {
			p.Status.Message = fmt.Sprintf("Game session %s on fleet %s is gone; trying the queue's destinations again", a.GameSessionName, a.FleetID)
			return 0, true, nil
		} else if err != nil {
			return 0, false, err
		}
		return cacheLagRetry, false, nil
	} else if err != nil {
		return 0, false, err
	}
	switch decideAttempt(gs) {
	case attemptWaiting:
		p.Status.Message = fmt.Sprintf("Game session %s on fleet %s is %s", gs.Name, a.FleetID, gs.Status.Status)
		return 0, false, nil // its changes wake the placement
	case attemptLost:
		p.Status.Message = fmt.Sprintf("Fleet %s could not start game session %s (%s); trying the queue's destinations again", a.FleetID, gs.Name, attemptLostReason(gs))
		fx.add(func() {
			r.Recorder.Eventf(p, gs, corev1.EventTypeNormal, "DestinationLost", "Place", "%s", p.Status.Message)
		})
		return 0, true, client.IgnoreNotFound(r.Delete(ctx, gs, client.Preconditions{UID: &gs.UID}))
	}
	return r.reserve(ctx, fx, p, gs)
}

type attemptState int

const (
	attemptWaiting attemptState = iota
	attemptLost
	attemptActive
)

// decideAttempt says where an attempt's game session is: ACTIVE (its players may be reserved), still
// starting, or lost (it will not start there: ended, failed, no process or GameServer left for it).
func decideAttempt(gs *gamev1.GameSession) attemptState {
	switch gs.Status.Status {
	case gamev1.GameSessionActive:
		return attemptActive
	case gamev1.GameSessionActivating, "":
		if c := meta.FindStatusCondition(gs.Status.Conditions, gamev1.GameSessionPlacedCondition); c != nil && c.Status == metav1.ConditionFalse && c.Reason == gamev1.NoIdleProcessReason {
			return attemptLost // another placement took the process this one saw idle
		}
		if c := meta.FindStatusCondition(gs.Status.Conditions, gamev1.GameServerBoundCondition); c != nil && c.Status == metav1.ConditionFalse && c.Reason == gamev1.AllocationTimedOutReason {
			return attemptLost
		}
		if !gs.DeletionTimestamp.IsZero() {
			return attemptLost
		}
		return attemptWaiting
	}
	return attemptLost // TERMINATING, TERMINATED, ERROR before its players were placed
}

func attemptLostReason(gs *gamev1.GameSession) string {
	for _, t := range []string{gamev1.GameSessionPlacedCondition, gamev1.GameServerBoundCondition} {
		if c := meta.FindStatusCondition(gs.Status.Conditions, t); c != nil && c.Status == metav1.ConditionFalse {
			return c.Message
		}
	}
	return "it is " + string(gs.Status.Status)
}

// reserve creates the desired player sessions in the ACTIVE game session, one group (admitted or refused
// as one), named after the placement; once admission has decided them all, the placement ends FULFILLED
// (all RESERVED) or FAILED (refused, and the game session made for it is ended).
func (r *GameSessionPlacementReconciler) reserve(ctx context.Context, fx *effects, p *gamev1.GameSessionPlacement, gs *gamev1.GameSession) (time.Duration, bool, error) {
	var placed []gamev1.PlacedPlayerSession
	decided := true
	for i, d := range p.Spec.DesiredPlayerSessions {
		ps := &gamev1.PlayerSession{}
		key := client.ObjectKey{Namespace: p.Namespace, Name: playerSessionName(p, i)}
		err := r.Get(ctx, key, ps)
		if apierrors.IsNotFound(err) {
			ps = &gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: key.Name,
				Labels: map[string]string{gamev1.PlacementLabel: p.Name, gamev1.GroupLabel: p.Name}},
				Spec: gamev1.PlayerSessionSpec{GameSessionName: gs.Name, PlayerID: d.PlayerID, PlayerData: d.PlayerData,
					Group: &gamev1.PlayerSessionGroup{Name: p.Name, Size: int32(len(p.Spec.DesiredPlayerSessions))}}}
			if err := r.Create(ctx, ps); err != nil && !apierrors.IsAlreadyExists(err) {
				if _, message, refused := admission.RefusalOf(err); refused {
					return 0, false, r.fail(ctx, fx, p, gs, "The desired player sessions were refused: "+message)
				}
				return 0, false, err
			}
			decided = false // created now (or a moment ago): admission decides next
			continue
		}
		if err != nil {
			return 0, false, err
		}
		if c := meta.FindStatusCondition(ps.Status.Conditions, gamev1.AdmittedCondition); c != nil && c.Status == metav1.ConditionFalse {
			return 0, false, r.fail(ctx, fx, p, gs, "The desired player sessions were refused: "+c.Message)
		}
		if ps.Status.PlayerSessionID == "" {
			decided = false
			continue
		}
		placed = append(placed, gamev1.PlacedPlayerSession{PlayerID: d.PlayerID, PlayerSessionID: ps.Status.PlayerSessionID})
	}
	if !decided {
		p.Status.Message = fmt.Sprintf("Game session %s is ACTIVE; reserving %d player sessions in it", gs.Name, len(p.Spec.DesiredPlayerSessions))
		return 0, false, nil // their admission wakes the placement
	}
	p.Status.GameSessionName, p.Status.GameSessionID, p.Status.Endpoint, p.Status.PlacedPlayerSessions = gs.Name, gs.Status.GameSessionID, gs.Status.Endpoint, placed
	return 0, false, r.end(ctx, fx, p, gamev1.PlacementFulfilled, fmt.Sprintf("Game session %s is ACTIVE at %s with %d player sessions reserved", gs.Name, gs.Status.Endpoint, len(placed)))
}

// fail ends the placement FAILED and the game session made for it (nobody was placed in it).
func (r *GameSessionPlacementReconciler) fail(ctx context.Context, fx *effects, p *gamev1.GameSessionPlacement, gs *gamev1.GameSession, message string) error {
	if err := r.Delete(ctx, gs, client.Preconditions{UID: &gs.UID}); client.IgnoreNotFound(err) != nil {
		return err
	}
	return r.end(ctx, fx, p, gamev1.PlacementFailed, message)
}

// end ends the placement in state; a game session made for it that was not fulfilled is deleted (the
// finalizer ends it and its player sessions).
func (r *GameSessionPlacementReconciler) end(ctx context.Context, fx *effects, p *gamev1.GameSessionPlacement, state gamev1.GameSessionPlacementState, message string) error {
	if state != gamev1.PlacementFulfilled {
		if n := len(p.Status.Attempts); n > 0 {
			gs := &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Status.Attempts[n-1].GameSessionName}}
			if err := r.Delete(ctx, gs); client.IgnoreNotFound(err) != nil {
				return err
			}
		}
	}
	now := metav1.NewTime(r.Clock.Now())
	p.Status.Status, p.Status.EndTime, p.Status.Message = state, &now, message
	fx.add(func() {
		ctrl.LoggerFrom(ctx).Info("Game session placement ended", "placement", klog.KObj(p), "status", state, "message", message)
		kind := corev1.EventTypeNormal
		if state != gamev1.PlacementFulfilled {
			kind = corev1.EventTypeWarning
		}
		r.Recorder.Eventf(p, nil, kind, placementReason(state), "Place", "%s", message)
	})
	return nil
}

// destination is what a placement needs to know of a fleet to decide whether it can take a game session
// now.
type destination struct {
	fleet string
	// agones: the fleet is an Agones Fleet, with readyServers Ready GameServers; computes: the fleet has
	// registered Server SDK computes, idle of them with an idle process.
	agones       bool
	readyServers int
	computes     bool
	idle         bool
}

// canTake decides whether a destination can take a game session now: an Agones Fleet with a Ready
// GameServer, a fleet of computes with an idle process, or a fleet of neither kind (its game servers
// activate the game sessions they are given, as CreateGameSession's are).
func canTake(d destination) bool {
	switch {
	case d.agones:
		return d.readyServers > 0
	case d.computes:
		return d.idle
	}
	return true
}

// attempt puts the placement's game session on the first destination that can take it now (all are
// tried each time, first to last); none can: it waits and looks again.
func (r *GameSessionPlacementReconciler) attempt(ctx context.Context, p *gamev1.GameSessionPlacement, q *gamev1.GameSessionQueue) time.Duration {
	for _, dst := range q.Spec.Destinations {
		d, err := r.destination(ctx, p.Namespace, fleetOf(dst.DestinationArn))
		if err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Reading a destination", "placement", klog.KObj(p), "fleet", d.fleet)
			continue
		}
		if !canTake(d) {
			continue
		}
		gs := r.gameSessionFor(p, d, len(p.Status.Attempts))
		if err := r.Create(ctx, gs); err != nil && !apierrors.IsAlreadyExists(err) {
			ctrl.LoggerFrom(ctx).Error(err, "Creating a placement's game session", "placement", klog.KObj(p), "fleet", d.fleet)
			continue
		}
		p.Status.Attempts = append(p.Status.Attempts, gamev1.PlacementAttempt{FleetID: d.fleet, GameSessionName: gs.Name})
		p.Status.Message = fmt.Sprintf("Game session %s created on fleet %s", gs.Name, d.fleet)
		ctrl.LoggerFrom(ctx).Info("Placement tries a destination", "placement", klog.KObj(p), "fleet", d.fleet, "gameSession", gs.Name)
		return 0 // its game session's changes wake the placement
	}
	p.Status.Message = fmt.Sprintf("No destination of queue %s can take a game session now; looking again", q.Spec.Name)
	return placementRecheck
}

// destination reads what canTake needs of a fleet, from the cache.
func (r *GameSessionPlacementReconciler) destination(ctx context.Context, namespace, fleet string) (destination, error) {
	d := destination{fleet: fleet}
	if r.Agones != nil && r.Agones.Installed() {
		ready, err := r.Agones.ReadyServers(ctx, namespace, fleet, nil)
		if err != nil {
			return d, err
		}
		if d.agones, err = r.Agones.FleetExists(ctx, namespace, fleet); err != nil {
			return d, err
		}
		d.readyServers = len(ready)
	}
	var err error
	d.computes, d.idle, err = computes.IdleIn(ctx, r.Client, namespace, fleet)
	return d, err
}

// gameSessionFor is the game session of attempt n of the placement on destination d.
func (r *GameSessionPlacementReconciler) gameSessionFor(p *gamev1.GameSessionPlacement, d destination, n int) *gamev1.GameSession {
	gs := &gamev1.GameSession{
		ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name + "-" + strconv.Itoa(n), Labels: map[string]string{gamev1.PlacementLabel: p.Name}},
		Spec: gamev1.GameSessionSpec{FleetID: d.fleet, MaximumPlayerSessionCount: p.Spec.MaximumPlayerSessionCount, Name: p.Spec.GameSessionName,
			GameProperties: p.Spec.GameProperties, GameSessionData: p.Spec.GameSessionData,
			PlayerSessionCreationPolicy: gamev1.PlayerSessionCreationPolicyAcceptAll},
	}
	if d.agones {
		gs.Spec.Agones = &gamev1.AgonesGameServer{FleetName: d.fleet}
	}
	return gs
}

// fleetOf is the fleet id of a destination (a fleet's ARN, or its id).
func fleetOf(arn string) string {
	if i := strings.LastIndex(arn, "/"); i >= 0 {
		return arn[i+1:]
	}
	return arn
}

func playerSessionName(p *gamev1.GameSessionPlacement, i int) string {
	return p.Name + "-p" + strconv.Itoa(i)
}

func placementReason(s gamev1.GameSessionPlacementState) string {
	switch s {
	case gamev1.PlacementFulfilled:
		return gamev1.PlacementFulfilledReason
	case gamev1.PlacementCancelled:
		return gamev1.PlacementCancelledReason
	case gamev1.PlacementTimedOut:
		return gamev1.PlacementTimedOutReason
	case gamev1.PlacementFailed:
		return gamev1.PlacementFailedReason
	}
	return gamev1.PlacementPendingReason
}

// setPlacementReadiness derives Ready (FULFILLED) and Stalled (ended without a game session) from the
// placement's state, for kstatus.
func setPlacementReadiness(p *gamev1.GameSessionPlacement) {
	reason := placementReason(p.Status.Status)
	ready := metav1.Condition{Type: gamev1.PlacementReadyCondition, Status: metav1.ConditionFalse, Reason: reason, Message: p.Status.Message, ObservedGeneration: p.Generation}
	if p.Status.Status == gamev1.PlacementFulfilled {
		ready.Status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&p.Status.Conditions, ready)
	if !ended(p) || p.Status.Status == gamev1.PlacementFulfilled {
		meta.RemoveStatusCondition(&p.Status.Conditions, gamev1.PlacementStalledCondition)
		return
	}
	meta.SetStatusCondition(&p.Status.Conditions, metav1.Condition{Type: gamev1.PlacementStalledCondition, Status: metav1.ConditionTrue,
		Reason: reason, Message: p.Status.Message, ObservedGeneration: p.Generation})
}

// SetupWithManager watches placements, and the game sessions and player sessions they made (labelled
// with the placement).
func (r *GameSessionPlacementReconciler) SetupWithManager(mgr ctrl.Manager) error {
	byLabel := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		if name := o.GetLabels()[gamev1.PlacementLabel]; name != "" {
			return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: o.GetNamespace(), Name: name}}}
		}
		return nil
	})
	return ctrl.NewControllerManagedBy(mgr).Named("gamesessionplacement").
		For(&gamev1.GameSessionPlacement{}).
		Watches(&gamev1.GameSession{}, byLabel).
		Watches(&gamev1.PlayerSession{}, byLabel).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles}).
		Complete(r)
}
