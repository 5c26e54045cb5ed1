package controllers

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/admission"
	"github.com/playersessions/operator/internal/agones"
	"github.com/playersessions/operator/internal/indexes"
	"github.com/playersessions/operator/internal/metrics"
)

// GameSessionReconciler owns a game session's status and its seat ledger. It is the only writer of the
// ledger, and the workqueue never runs two reconciles of one game session at once, so admission is
// serialised per game session; every ledger write is guarded by the resourceVersion it was computed from.
type GameSessionReconciler struct {
	Deps

	written writtenVersions
	// claims are the processes this reconciler claimed for game sessions (their key -> claim) until their
	// status.process records it (reconcileProcess).
	claims sync.Map
}

// +kubebuilder:rbac:groups=game.playersessions.dev,resources=gamesessions,verbs=get;list;watch;update;patch;delete
// +kubebuilder:rbac:groups=game.playersessions.dev,resources=gamesessions/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=game.playersessions.dev,resources=gamesessions/finalizers,verbs=update
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete

// Reconcile moves one game session through its lifecycle.
func (r *GameSessionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	defer metrics.ObserveReconcile("gamesession", time.Now())
	gs := &gamev1.GameSession{}
	if err := r.Get(ctx, req.NamespacedName, gs); err != nil {
		r.written.forget(req.NamespacedName)
		r.claims.Delete(req.NamespacedName)
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if r.written.behind(req.NamespacedName, gs.ResourceVersion, r.Clock.Now()) {
		return ctrl.Result{RequeueAfter: cacheLagRetry}, nil // our last ledger write is on its way to the cache
	}
	before := gs.DeepCopy()
	released := false // the finalizer let go, or retention deleted it: nothing left to write
	fx := &effects{}
	defer func() {
		if released {
			return
		}
		fx.add(func() { r.recordGranted(before, gs) })
		writeStatus(ctx, r.Client, before, gs, fx, func(ok bool) {
			if ok {
				gs.Status.ObservedGeneration = gs.Generation
			}
			setGameSessionReadiness(gs)
		}, &result, &retErr)
		if gs.ResourceVersion != before.ResourceVersion {
			r.written.wrote(req.NamespacedName, gs.ResourceVersion, r.Clock.Now())
		}
	}()

	var players gamev1.PlayerSessionList
	if err := r.List(ctx, &players, client.InNamespace(gs.Namespace), client.MatchingFields{indexes.PlayerSessionGameSessionName: gs.Name}); err != nil {
		return ctrl.Result{}, err
	}

	if !gs.DeletionTimestamp.IsZero() {
		recheck, done, err := r.reconcileDelete(ctx, fx, before, gs, players.Items)
		released = done
		return ctrl.Result{RequeueAfter: recheck}, err
	}
	if controllerutil.AddFinalizer(gs, gamev1.GameSessionFinalizer) {
		// Patch the finalizer before anything else, so no game session with player sessions lacks it.
		if err := r.Patch(ctx, gs, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
			released = true
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		before = gs.DeepCopy()
	}

	r.reconcileIdentity(gs)
	allocate, err := r.reconcileAgones(ctx, fx, gs, players.Items)
	if err != nil {
		return ctrl.Result{}, err
	}
	place, err := r.reconcileProcess(ctx, fx, gs)
	if err != nil {
		return ctrl.Result{}, err
	}
	r.reconcileActivation(ctx, fx, gs)
	r.reconcileTermination(ctx, fx, gs)
	recheck, err := r.reconcileSeats(ctx, gs, players.Items)
	if err != nil {
		return ctrl.Result{}, err
	}
	archive, deleting, err := r.reconcileArchive(ctx, before, gs)
	if deleting || err != nil {
		released = deleting
		return ctrl.Result{}, err
	}
	expire, deleted, err := r.reconcileRetention(ctx, fx, gs)
	if deleted || err != nil {
		released = deleted
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: earliest(earliest(earliest(earliest(recheck, expire), allocate), archive), place)}, nil
}

// reconcileIdentity mints the game session's id and creation time once.
func (r *GameSessionReconciler) reconcileIdentity(gs *gamev1.GameSession) {
	if gs.Status.GameSessionID == "" {
		gs.Status.GameSessionID = r.GameSessionID(gs)
	}
	if gs.Status.CreationTime == nil {
		t := metav1.NewMicroTime(gs.CreationTimestamp.Time)
		gs.Status.CreationTime = &t
	}
	if gs.Status.Status == "" {
		gs.Status.Status = gamev1.GameSessionActivating
	}
}

// reconcileActivation copies the spec's endpoint into status and activates the game session once it has one
// (its Ready condition follows, in setGameSessionReadiness).
// A game session without a spec endpoint stays ACTIVATING until its game server (or the controller that
// manages it) sets status to ACTIVE with an endpoint.
func (r *GameSessionReconciler) reconcileActivation(ctx context.Context, fx *effects, gs *gamev1.GameSession) {
	if gs.Status.Status == gamev1.GameSessionTerminated {
		return
	}
	if gs.Spec.Port != 0 {
		gs.Status.Endpoint = gs.Spec.Endpoint
	}
	if gs.Status.Status == gamev1.GameSessionActivating && gs.Status.Port != 0 {
		gs.Status.Status = gamev1.GameSessionActive
		endpoint := gs.Status.Endpoint
		fx.add(func() {
			ctrl.LoggerFrom(ctx).Info("Game session activated", "gameSession", klog.KObj(gs))
			r.Recorder.Eventf(gs, nil, corev1.EventTypeNormal, "Activated", "Activate", "Game session is ACTIVE at %s", endpoint)
		})
	}
}

// recordGranted emits one event per ledger write that granted seats (an effect: once the write has landed):
// at game scale an event per admitted player session would be one more write per admission
// (docs/benchmarks.md), and each player session says RESERVED in its own status and Admitted condition.
func (r *GameSessionReconciler) recordGranted(before, gs *gamev1.GameSession) {
	held := make(map[gamev1.SeatHolder]bool, len(before.Status.Seats))
	for _, s := range before.Status.Seats {
		held[s] = true
	}
	granted := 0
	for _, s := range gs.Status.Seats {
		if !held[s] {
			granted++
		}
	}
	if granted > 0 {
		r.Recorder.Eventf(gs, nil, corev1.EventTypeNormal, "SeatsGranted", "Admit", "Granted %d seats; %d of %d taken", granted, len(gs.Status.Seats), gs.Spec.MaximumPlayerSessionCount)
	}
}

// reconcileTermination stamps the end of a game session that its game server (or the deletion) TERMINATED.
// Its player sessions see the stamp and complete themselves.
func (r *GameSessionReconciler) reconcileTermination(ctx context.Context, fx *effects, gs *gamev1.GameSession) {
	if gs.Status.Status != gamev1.GameSessionTerminated || gs.Status.TerminationTime != nil {
		return
	}
	now := metav1.NewMicroTime(r.Clock.Now())
	gs.Status.TerminationTime = &now
	fx.add(func() {
		ctrl.LoggerFrom(ctx).Info("Game session terminated", "gameSession", klog.KObj(gs))
		r.Recorder.Eventf(gs, nil, corev1.EventTypeNormal, "Terminated", "Terminate", "Game session ended; its player sessions are completed")
	})
}

// reconcileSeats runs one admission pass: frees the seats of ended player sessions, grants free seats to
// waiting ones in creation order, and refuses those that cannot get one. It returns when to look again.
func (r *GameSessionReconciler) reconcileSeats(ctx context.Context, gs *gamev1.GameSession, players []gamev1.PlayerSession) (time.Duration, error) {
	now := r.Clock.Now()
	plan := admission.PlanSeats(gs, players, now, r.PlayerSessionTimeout)
	gs.Status.Seats = plan.Seats
	gs.Status.CurrentPlayerSessionCount = int32(len(plan.Seats))
	if len(plan.Admitted) > 0 || len(plan.Released) > 0 {
		ctrl.LoggerFrom(ctx).V(1).Info("Seats changed", "gameSession", klog.KObj(gs), "admitted", plan.Admitted, "released", plan.Released, "seats", len(plan.Seats))
	}
	var recheck time.Duration
	if !plan.RecheckAt.IsZero() {
		recheck = plan.RecheckAt.Sub(now)
	}
	if len(plan.Deferred) > 0 {
		// The next pass refuses, against the ledger this one writes (our own write does not trigger it).
		recheck = earliest(recheck, max(r.BatchWindow, time.Millisecond))
	}
	if len(plan.Refusals) == 0 {
		return recheck, nil
	}
	// Refusals are final: make sure the ledger they were decided against is the one the API server holds.
	var live gamev1.GameSession
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(gs), &live); err != nil {
		return 0, err
	}
	if live.ResourceVersion != gs.ResourceVersion {
		return earliest(recheck, time.Second), nil
	}
	for _, ref := range plan.Refusals {
		if err := r.refuse(ctx, ref); err != nil {
			return 0, err
		}
	}
	return recheck, nil
}

// refuse records a final refusal on a player session.
func (r *GameSessionReconciler) refuse(ctx context.Context, ref admission.Refusal) error {
	ps := ref.PlayerSession.DeepCopy()
	if !admission.SetRefused(ps, r.Clock.Now(), ref.Reason, ref.Message) {
		return nil
	}
	setPlayerSessionReadiness(ps)
	if err := patchStatus(ctx, r.Client, ref.PlayerSession, ps); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return nil // It changed or went; the next pass decides again.
		}
		return err
	}
	recordRefusal(ctx, r.Recorder, ps, ref.Reason, ref.Message)
	return nil
}

// reconcileRetention deletes a TERMINATED game session once the retention period after its end has passed,
// and reports whether it did (then nothing is left to write); otherwise it returns the time left.
func (r *GameSessionReconciler) reconcileRetention(ctx context.Context, fx *effects, gs *gamev1.GameSession) (time.Duration, bool, error) {
	if gs.Status.Status != gamev1.GameSessionTerminated || gs.Status.TerminationTime == nil {
		return 0, false, nil
	}
	if wait := gs.Status.TerminationTime.Add(r.Retention).Sub(r.Clock.Now()); wait > 0 {
		return wait, false, nil
	}
	if kept, err := retainDeclared(ctx, fx, r.APIReader, r.Recorder, r.Options, gs, &gamev1.GameSession{}, &gs.Status.Conditions); kept || err != nil {
		return 0, false, err
	}
	ctrl.LoggerFrom(ctx).Info("Deleting game session after retention", "gameSession", klog.KObj(gs))
	if err := r.Delete(ctx, gs, client.Preconditions{UID: &gs.UID}); client.IgnoreNotFound(err) != nil {
		return 0, false, err
	}
	return 0, true, nil
}

// reconcileDelete handles a deleted game session: it becomes TERMINATED (if it was not already), its player
// sessions complete and stamp its end on themselves, and then the finalizer lets the object go. It reports
// when to look again (the admission pass may leave refusals for the next one) and whether the finalizer
// was removed. before is the object as read, which the API server holds.
func (r *GameSessionReconciler) reconcileDelete(ctx context.Context, fx *effects, before, gs *gamev1.GameSession, players []gamev1.PlayerSession) (time.Duration, bool, error) {
	if !controllerutil.ContainsFinalizer(gs, gamev1.GameSessionFinalizer) {
		return 0, true, nil
	}
	if gs.Status.Status != gamev1.GameSessionTerminated {
		gs.Status.Status = gamev1.GameSessionTerminated
		if gs.Status.StatusReason == "" {
			gs.Status.StatusReason = "FORCE_TERMINATED"
		}
	}
	r.reconcileIdentity(gs)
	r.reconcileTermination(ctx, fx, gs)
	recheck, err := r.reconcileSeats(ctx, gs, players)
	if err != nil {
		return 0, false, err
	}
	// Let go only once the end is persisted and every player session has recorded it; their updates bring us back.
	if before.Status.TerminationTime == nil || !allPlayerSessionsReleased(before, players) {
		return recheck, false, nil
	}
	controllerutil.RemoveFinalizer(gs, gamev1.GameSessionFinalizer)
	patch := client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})
	if err := r.Patch(ctx, gs, patch); err != nil {
		if apierrors.IsConflict(err) {
			return ConflictRetry, false, nil
		}
		return 0, false, client.IgnoreNotFound(err)
	}
	ctrl.LoggerFrom(ctx).Info("Game session released its player sessions", "gameSession", klog.KObj(gs))
	return 0, true, nil
}

// allPlayerSessionsReleased reports whether every player session of gs has recorded the game session's end
// (or never got a seat), so that they can outlive the object.
func allPlayerSessionsReleased(gs *gamev1.GameSession, players []gamev1.PlayerSession) bool {
	for i := range players {
		ps := &players[i]
		switch {
		case admission.IsRefused(ps):
		case ps.Status.GameSessionID != "" && ps.Status.GameSessionID != gs.Status.GameSessionID:
		case ps.Status.Status == "":
			return false // Refused in this pass; wait to see it.
		case ps.Status.GameSessionTerminationTime == nil || !ps.Status.Status.IsTerminal():
			return false
		}
	}
	return true
}

// SetupWithManager registers the controller: it watches game sessions and the player sessions naming them,
// and the Agones GameServers they are bound to once Agones is installed.
func (r *GameSessionReconciler) SetupWithManager(mgr ctrl.Manager) error {
	c, err := ctrl.NewControllerManagedBy(mgr).
		For(&gamev1.GameSession{}, builder.WithPredicates(notOwnLedgerWrite())).
		Watches(&gamev1.PlayerSession{}, r.playerSessionEvents()).
		Watches(&gamev1.Compute{}, r.computeEvents()).
		Watches(&gamev1.ProcessClaim{}, r.claimEvents()).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles}).
		Named("gamesession").
		Build(r)
	if err != nil || r.Agones == nil {
		return err
	}
	return r.Agones.OnInstall(func() error {
		if err := c.Watch(source.Kind[client.Object](mgr.GetCache(), agones.NewGameServer(), handler.EnqueueRequestsFromMapFunc(r.gameSessionsForGameServer))); err != nil {
			return err
		}
		// Agones game sessions created before Agones was installed look again now.
		return c.Watch(source.Func(func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
			var list gamev1.GameSessionList
			if err := mgr.GetCache().List(ctx, &list); err != nil {
				return err
			}
			for i := range list.Items {
				if list.Items[i].Spec.Agones != nil {
					q.Add(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
				}
			}
			return nil
		}))
	})
}

// notOwnLedgerWrite drops the update events that change nothing but the status fields this reconciler alone
// writes (the ledger, the count, conditions, observedGeneration). Reconciling again on its own write would
// plan again at once, and would turn a steady stream of player-session changes into one ledger write per
// API round trip instead of one per batch window. When a pass leaves work for the next one, it says so
// with RequeueAfter.
func notOwnLedgerWrite() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		old, okOld := e.ObjectOld.(*gamev1.GameSession)
		gs, okNew := e.ObjectNew.(*gamev1.GameSession)
		if !okOld || !okNew {
			return true
		}
		return !equality.Semantic.DeepEqual(withoutOwnStatus(old), withoutOwnStatus(gs))
	}}
}

// withoutOwnStatus is a shallow copy of gs with the fields this reconciler alone writes (and that need no
// next pass: the ledger, the count, conditions, observedGeneration, the Agones binding record) cleared; only the
// copy's own fields are assigned, so the cached object is not touched.
func withoutOwnStatus(gs *gamev1.GameSession) gamev1.GameSession {
	c := *gs
	c.ResourceVersion, c.ManagedFields = "", nil
	c.Status.Seats, c.Status.CurrentPlayerSessionCount, c.Status.Conditions, c.Status.ObservedGeneration = nil, 0, nil, 0
	c.Status.Agones = nil
	return c
}

// playerSessionEvents enqueues the game session of a player session that was created or deleted, ended,
// was refused or recorded the game session's end: the changes that can alter the ledger. Reservation and
// acceptance (RESERVED, ACTIVE) change nothing there. The game session is enqueued BatchWindow later (at
// once by default: the workqueue folds a burst into one pass, and one ledger write); a release (a player
// session that ended or went) ReleaseWindow later, unless something else brings the game session back sooner.
func (r *GameSessionReconciler) playerSessionEvents() handler.EventHandler {
	enqueue := func(o client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request], after time.Duration) {
		if ps, ok := o.(*gamev1.PlayerSession); ok {
			q.AddAfter(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ps.Namespace, Name: ps.Spec.GameSessionName}}, after)
		}
	}
	return handler.Funcs{
		CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(e.Object, q, r.BatchWindow)
		},
		DeleteFunc: func(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(e.Object, q, r.ReleaseWindow)
		},
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			old, okOld := e.ObjectOld.(*gamev1.PlayerSession)
			ps, okNew := e.ObjectNew.(*gamev1.PlayerSession)
			if !okOld || !okNew {
				return
			}
			switch change := playerSessionChangeForGameSession(old, ps); change {
			case ledgerRelease:
				enqueue(ps, q, r.ReleaseWindow)
			case ledgerChange:
				enqueue(ps, q, r.BatchWindow)
			}
		},
	}
}

type ledgerEffect int

const (
	ledgerNone    ledgerEffect = iota
	ledgerRelease              // a seat may be freed; nobody waits for it
	ledgerChange               // admission or the game session's end may proceed
)

// playerSessionChangeForGameSession classifies a player session update by what it means to its game session.
func playerSessionChangeForGameSession(old, ps *gamev1.PlayerSession) ledgerEffect {
	switch {
	case admission.IsRefused(ps) != admission.IsRefused(old),
		(ps.Status.GameSessionTerminationTime == nil) != (old.Status.GameSessionTerminationTime == nil):
		return ledgerChange
	case ps.Status.Status.IsTerminal() != old.Status.Status.IsTerminal(),
		!ps.DeletionTimestamp.Equal(old.DeletionTimestamp):
		return ledgerRelease
	}
	return ledgerNone
}
