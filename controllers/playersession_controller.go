package controllers

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/admission"
	"github.com/playersessions/operator/internal/agones"
	"github.com/playersessions/operator/internal/ids"
	"github.com/playersessions/operator/internal/indexes"
	"github.com/playersessions/operator/internal/metrics"
)

// PlayerSessionReconciler owns a player session's status after admission: it takes up the seat its game
// session granted (RESERVED), times out reservations, completes the player session when its game session
// ends, and deletes it when retention has passed. Every deadline comes from a persisted timestamp.
type PlayerSessionReconciler struct {
	Deps
}

// +kubebuilder:rbac:groups=game.playersessions.dev,resources=playersessions,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups=game.playersessions.dev,resources=playersessions/status,verbs=get;update;patch

// Reconcile moves one player session through its lifecycle.
func (r *PlayerSessionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	defer metrics.ObserveReconcile("playersession", time.Now())
	ps := &gamev1.PlayerSession{}
	if err := r.Get(ctx, req.NamespacedName, ps); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := ps.DeepCopy()
	deleted := false // retention deleted it: nothing left to write
	fx := &effects{}
	defer func() {
		if !deleted {
			writeStatus(ctx, r.Client, before, ps, fx, func(ok bool) {
				if admission.IsPending(ps) {
					// A waiting player session is not written until it is decided: one write less per
					// admission, and its resourceVersion stays the revision of its create, which orders it
					// among the others (admission.Before). kstatus reads it as InProgress (generation 1,
					// observedGeneration 0), which it is.
					ps.Status = before.Status
					return
				}
				if ok {
					ps.Status.ObservedGeneration = ps.Generation
				}
				setPlayerSessionReadiness(ps)
			}, &result, &retErr)
		}
	}()

	gs, err := r.gameSessionOf(ctx, ps, false)
	if err != nil {
		return ctrl.Result{}, err
	}
	now := r.Clock.Now()
	waitAdmission, err := r.reconcileAdmission(ctx, fx, ps, gs, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.reconcileAgonesPlayers(ctx, fx, before, ps, gs); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.reconcileGameSessionEnd(ctx, fx, ps, gs, now); err != nil {
		return ctrl.Result{}, err
	}
	timeout := r.reconcileTimeout(ctx, fx, ps, now)
	r.reconcileEnded(ctx, fx, ps, gs, now)
	archive, gone, err := r.reconcileArchive(ctx, before, ps, now)
	if gone || err != nil {
		deleted = gone
		return ctrl.Result{}, err
	}
	expire, gone, err := r.reconcileRetention(ctx, fx, ps, now)
	if gone || err != nil {
		deleted = gone
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: earliest(earliest(earliest(waitAdmission, timeout), expire), archive)}, nil
}

// gameSessionOf returns the game session ps belongs to, or nil when there is none. From the cache unless live;
// a game session of the same name that is not the one ps was bound to counts as none.
func (r *PlayerSessionReconciler) gameSessionOf(ctx context.Context, ps *gamev1.PlayerSession, live bool) (*gamev1.GameSession, error) {
	var reader client.Reader = r.Client
	if live {
		reader = r.APIReader
	}
	gs := &gamev1.GameSession{}
	if err := reader.Get(ctx, client.ObjectKey{Namespace: ps.Namespace, Name: ps.Spec.GameSessionName}, gs); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	if ps.Status.GameSessionID != "" && gs.Status.GameSessionID != ps.Status.GameSessionID {
		return nil, nil
	}
	return gs, nil
}

// reconcileAdmission takes up a seat the game session granted, or refuses a player session whose game session
// does not exist once the admission window (one timeout from creation) has passed. The game session
// reconciler decides every other admission.
func (r *PlayerSessionReconciler) reconcileAdmission(ctx context.Context, fx *effects, ps *gamev1.PlayerSession, gs *gamev1.GameSession, now time.Time) (time.Duration, error) {
	if ps.Status.Status != "" || admission.IsRefused(ps) {
		return 0, nil
	}
	switch {
	case gs != nil && admission.HasSeat(gs, ps) && gs.Status.GameSessionID != "":
		reserve(ps, gs, r.Options, now)
		fx.add(func() {
			metrics.Admissions.Inc()
			ctrl.LoggerFrom(ctx).V(1).Info("Player session reserved", "playerSession", klog.KObj(ps), "gameSession", klog.KObj(gs))
		})
		return 0, nil
	case gs != nil:
		return 0, nil // the game session decides; its ledger write brings us back
	}
	deadline := ps.CreationTimestamp.Add(r.PlayerSessionTimeout)
	if now.Before(deadline) {
		return deadline.Sub(now), nil // waiting for the game session to exist
	}
	live, err := r.gameSessionOf(ctx, ps, true)
	if err != nil || live != nil {
		return time.Second, err // The cache is behind; the game session reconciler will decide.
	}
	msg := "Game session " + ps.Spec.GameSessionName + " not found in namespace " + ps.Namespace
	if admission.SetRefused(ps, now, gamev1.GameSessionNotFoundReason, msg) {
		fx.add(func() { recordRefusal(ctx, r.Recorder, ps, gamev1.GameSessionNotFoundReason, msg) })
	}
	return 0, nil
}

// reconcileTimeout moves a RESERVED player session to TIMEDOUT once its acceptance deadline has passed, and
// otherwise returns the time left. The deadline is the persisted creation time plus the timeout, so a
// restarted manager keeps it exactly.
func (r *PlayerSessionReconciler) reconcileTimeout(ctx context.Context, fx *effects, ps *gamev1.PlayerSession, now time.Time) time.Duration {
	if ps.Status.Status != gamev1.PlayerSessionReserved || ps.Status.CreationTime == nil {
		return 0
	}
	deadline := ps.Status.CreationTime.Add(r.PlayerSessionTimeout)
	if now.Before(deadline) {
		return deadline.Sub(now)
	}
	ps.Status.Status = gamev1.PlayerSessionTimedOut
	end := metav1.NewMicroTime(now)
	ps.Status.TerminationTime = &end
	fx.add(func() {
		metrics.Timeouts.Inc()
		metrics.TimeoutLateness.Observe(now.Sub(deadline).Seconds())
		ctrl.LoggerFrom(ctx).V(1).Info("Player session timed out", "playerSession", klog.KObj(ps), "late", now.Sub(deadline))
		r.Recorder.Eventf(ps, nil, corev1.EventTypeNormal, "TimedOut", "Timeout", "Not accepted within %s; seat released", r.PlayerSessionTimeout)
	})
	return 0
}

// reconcileGameSessionEnd completes a player session whose game session ended and records when it ended,
// which is what retention counts from once the GameSession object is gone.
func (r *PlayerSessionReconciler) reconcileGameSessionEnd(ctx context.Context, fx *effects, ps *gamev1.PlayerSession, gs *gamev1.GameSession, now time.Time) error {
	if ps.Status.GameSessionID == "" || ps.Status.GameSessionTerminationTime != nil {
		return nil
	}
	var end metav1.MicroTime
	switch {
	case gs != nil && gs.Status.Status == gamev1.GameSessionTerminated && gs.Status.TerminationTime != nil:
		end = *gs.Status.TerminationTime
	case gs != nil:
		return nil
	default:
		// Gone without ending its player sessions (its finalizer was removed by hand): confirm, then end now.
		live, err := r.gameSessionOf(ctx, ps, true)
		if err != nil || live != nil {
			return err
		}
		end = metav1.NewMicroTime(now)
	}
	ps.Status.GameSessionTerminationTime = &end
	if ps.Status.Status.HoldsSeat() {
		ps.Status.Status = gamev1.PlayerSessionCompleted
		fx.add(func() {
			r.Recorder.Eventf(ps, nil, corev1.EventTypeNormal, "Completed", "Complete", "Game session %s ended", ps.Spec.GameSessionName)
		})
	}
	return nil
}

// reconcileEnded stamps the end of a player session a game server COMPLETED, and keeps the endpoint of a
// live one in step with its game session.
func (r *PlayerSessionReconciler) reconcileEnded(ctx context.Context, fx *effects, ps *gamev1.PlayerSession, gs *gamev1.GameSession, now time.Time) {
	if ps.Status.Status.IsTerminal() && ps.Status.TerminationTime == nil {
		end := metav1.NewMicroTime(now)
		ps.Status.TerminationTime = &end
		if ps.Status.GameSessionTerminationTime == nil {
			fx.add(func() {
				ctrl.LoggerFrom(ctx).V(1).Info("Player session completed", "playerSession", klog.KObj(ps))
				r.Recorder.Eventf(ps, nil, corev1.EventTypeNormal, "Completed", "Complete", "Player left")
			})
		}
	}
	if gs != nil && ps.Status.Status.HoldsSeat() {
		ps.Status.Endpoint, ps.Status.GameServer = gs.Status.Endpoint, gs.Status.GameServer
	}
}

// reconcileRetention deletes a player session once the retention period after its game session's end (or,
// for a refused one, after its refusal) has passed, and otherwise returns the time left.
func (r *PlayerSessionReconciler) reconcileRetention(ctx context.Context, fx *effects, ps *gamev1.PlayerSession, now time.Time) (time.Duration, bool, error) {
	anchor := retentionAnchor(ps)
	if anchor == nil {
		return 0, false, nil
	}
	if wait := anchor.Add(r.Retention).Sub(now); wait > 0 {
		return wait, false, nil
	}
	if kept, err := retainDeclared(ctx, fx, r.APIReader, r.Recorder, r.Options, ps, &gamev1.PlayerSession{}, &ps.Status.Conditions); kept || err != nil {
		return 0, false, err
	}
	ctrl.LoggerFrom(ctx).V(1).Info("Deleting player session after retention", "playerSession", klog.KObj(ps))
	if err := r.Delete(ctx, ps, client.Preconditions{UID: &ps.UID, ResourceVersion: &ps.ResourceVersion}); err != nil {
		if apierrors.IsNotFound(err) {
			return 0, true, nil
		}
		return 0, false, err
	}
	return 0, true, nil
}

// retentionAnchor is the time retention counts from: the end of the game session, or the refusal.
func retentionAnchor(ps *gamev1.PlayerSession) *metav1.MicroTime {
	switch {
	case ps.Status.GameSessionTerminationTime != nil:
		return ps.Status.GameSessionTerminationTime
	case admission.IsRefused(ps):
		return ps.Status.TerminationTime
	}
	return nil
}

// reserve makes ps RESERVED in gs, which granted it a seat.
func reserve(ps *gamev1.PlayerSession, gs *gamev1.GameSession, o Options, now time.Time) {
	created := metav1.NewMicroTime(now)
	ps.Status.Status = gamev1.PlayerSessionReserved
	ps.Status.PlayerSessionID = ids.PlayerSessionID(ps)
	ps.Status.GameSessionID = gs.Status.GameSessionID
	ps.Status.FleetID = gs.Spec.FleetID
	ps.Status.FleetArn = o.FleetArn(gs.Spec.FleetID)
	ps.Status.CreationTime = &created
	ps.Status.Endpoint, ps.Status.GameServer = gs.Status.Endpoint, gs.Status.GameServer
	meta.SetStatusCondition(&ps.Status.Conditions, metav1.Condition{
		Type: gamev1.AdmittedCondition, Status: metav1.ConditionTrue, Reason: gamev1.SeatReservedReason,
		Message: "Seat reserved in game session " + gs.Name, ObservedGeneration: ps.Generation,
	})
}

func recordRefusal(ctx context.Context, rec events.EventRecorder, ps *gamev1.PlayerSession, reason, message string) {
	metrics.Refused(reason)
	ctrl.LoggerFrom(ctx).Info("Player session refused", "playerSession", klog.KObj(ps), "reason", reason)
	rec.Eventf(ps, nil, corev1.EventTypeWarning, reason, "Refuse", "%s", message)
}

// SetupWithManager registers the controller: it watches player sessions and, through the game session name
// index, the game sessions they belong to.
func (r *PlayerSessionReconciler) SetupWithManager(mgr ctrl.Manager) error {
	c, err := ctrl.NewControllerManagedBy(mgr).
		For(&gamev1.PlayerSession{}).
		Watches(&gamev1.GameSession{}, handler.EnqueueRequestsFromMapFunc(r.playerSessionsOf)).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles}).
		Named("playersession").
		Build(r)
	if err != nil || r.Agones == nil {
		return err
	}
	return r.Agones.OnInstall(func() error {
		return c.Watch(source.Kind[client.Object](mgr.GetCache(), agones.NewGameServer(), handler.EnqueueRequestsFromMapFunc(r.playerSessionsForGameServer)))
	})
}

// playerSessionsOf maps a game session to those of its player sessions a change of it can affect: waiting
// ones it granted a seat, seat holders whose endpoint it changed, and, once it ended, bound ones that have
// not yet recorded its end. Mapping every player session on every ledger change would make each admission
// cost a reconcile per seat.
func (r *PlayerSessionReconciler) playerSessionsOf(ctx context.Context, o client.Object) []reconcile.Request {
	gs, ok := o.(*gamev1.GameSession)
	if !ok {
		return nil
	}
	var list gamev1.PlayerSessionList
	if err := r.List(ctx, &list, client.InNamespace(gs.Namespace), client.MatchingFields{indexes.PlayerSessionGameSessionName: gs.Name}, client.UnsafeDisableDeepCopy); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Listing player sessions of game session", "gameSession", klog.KObj(gs))
		return nil
	}
	ended := gs.Status.Status == gamev1.GameSessionTerminated || !gs.DeletionTimestamp.IsZero()
	var reqs []reconcile.Request
	for i := range list.Items {
		ps := &list.Items[i]
		bound := ps.Status.GameSessionID != "" && ps.Status.GameSessionID == gs.Status.GameSessionID
		switch {
		case admission.IsPending(ps) && admission.HasSeat(gs, ps):
		case bound && ended && ps.Status.GameSessionTerminationTime == nil:
		case bound && ps.Status.Status.HoldsSeat() && (ps.Status.Endpoint != gs.Status.Endpoint || ps.Status.GameServer != gs.Status.GameServer):
		default:
			continue
		}
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(ps)})
	}
	return reqs
}
