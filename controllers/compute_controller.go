package controllers

import (
	"context"
	"fmt"
	"slices"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/agones"
	"github.com/playersessions/operator/internal/indexes"
	"github.com/playersessions/operator/internal/metrics"
	"github.com/playersessions/operator/internal/replicas"
)

// ComputeReconciler ends the GameLift Server SDK processes whose connection is lost: closed without
// ProcessEnding, or held by a replica that restarted or stopped renewing its Lease (replicas.Lost). A
// process that has not connected again ProcessReconnectGrace after the loss is TERMINATED with reason
// ConnectionLost; the game session placed on it then ends INTERRUPTED (reconcileProcessEnd). The loss and
// its time are persisted (the disconnection time, the Leases), so a restarted leader decides the same.
type ComputeReconciler struct {
	Deps
}

// +kubebuilder:rbac:groups=game.playersessions.dev,resources=computes,verbs=get;list;watch
// +kubebuilder:rbac:groups=game.playersessions.dev,resources=computes/status,verbs=get;patch

// Reconcile ends a compute's lost processes and looks again when the next one's grace ends.
func (r *ComputeReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	defer metrics.ObserveReconcile("compute", time.Now())
	c := &gamev1.Compute{}
	if err := r.Get(ctx, req.NamespacedName, c); apierrors.IsNotFound(err) {
		return ctrl.Result{}, r.releaseClaims(ctx, req.NamespacedName, nil)
	} else if err != nil {
		return ctrl.Result{}, err
	}
	before := c.DeepCopy()
	fx := &effects{}
	defer writeStatus(ctx, r.Client, before, c, fx, func(bool) {}, &result, &retErr)
	now := r.Clock.Now()
	var next time.Duration
	for i := range c.Status.Processes {
		sp := &c.Status.Processes[i]
		if sp.Status != gamev1.ServerProcessActive {
			continue
		}
		since, lost, err := processLost(ctx, r.Client, r.ReplicaNamespace, sp.Connection, now)
		if err != nil {
			return ctrl.Result{}, err
		}
		if !lost {
			continue
		}
		if wait := since.Add(r.ProcessReconnectGrace).Sub(now); wait > 0 {
			next = earliest(next, wait)
			continue
		}
		at := metav1.NewTime(now)
		sp.Status, sp.TerminationReason, sp.TerminationTime = gamev1.ServerProcessTerminated, gamev1.ConnectionLostReason, &at
		msg := fmt.Sprintf("Process %s lost its connection at %s and did not connect again within %s", sp.ProcessID, since.UTC().Format(time.RFC3339), r.ProcessReconnectGrace)
		fx.add(func() {
			ctrl.LoggerFrom(ctx).Info("Game server process lost", "compute", klog.KObj(c), "process", sp.ProcessID, "since", since)
			r.Recorder.Eventf(c, nil, corev1.EventTypeWarning, string(gamev1.ConnectionLostReason), "Terminate", "%s", msg)
		})
	}
	if err := r.releaseClaims(ctx, req.NamespacedName, c); err != nil {
		return ctrl.Result{}, err
	}
	again, err := r.reconcileGameServer(ctx, c)
	return ctrl.Result{RequeueAfter: earliest(next, again)}, err
}

// +kubebuilder:rbac:groups=game.playersessions.dev,resources=processclaims,verbs=get;list;watch;delete

// releaseClaims deletes the claims on the processes of the compute key that are no longer its: of a
// process whose entry has left it (a compute full of processes drops its oldest TERMINATED ones), or of a
// compute deregistered (c nil) or registered again since (another UID). Claims then do not outlive their
// processes on a long-lived compute, nor their compute where no garbage collector follows owner references
// (the local control plane). It decides on the cache and confirms on the API server: a claim is made on an
// entry the cache has seen, but a new leader's cache may have seen the claim before the entry.
func (r *ComputeReconciler) releaseClaims(ctx context.Context, key client.ObjectKey, c *gamev1.Compute) error {
	var list gamev1.ProcessClaimList // the cache's objects: read only
	if err := r.List(ctx, &list, client.InNamespace(key.Namespace), client.MatchingFields{indexes.ProcessClaimCompute: key.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return err
	}
	stale := func(c *gamev1.Compute) []*gamev1.ProcessClaim {
		var out []*gamev1.ProcessClaim
		for i := range list.Items {
			cl := &list.Items[i]
			if c == nil || !ownedBy(cl, c) ||
				!slices.ContainsFunc(c.Status.Processes, func(sp gamev1.ServerProcess) bool { return sp.ProcessID == cl.Spec.ProcessID }) {
				out = append(out, cl)
			}
		}
		return out
	}
	if len(stale(c)) == 0 {
		return nil
	}
	live := &gamev1.Compute{}
	if err := r.APIReader.Get(ctx, key, live); apierrors.IsNotFound(err) {
		live = nil
	} else if err != nil {
		return err
	}
	for _, cl := range stale(live) {
		gone := &gamev1.ProcessClaim{ObjectMeta: metav1.ObjectMeta{Namespace: cl.Namespace, Name: cl.Name}}
		if err := r.Delete(ctx, gone, client.Preconditions{UID: &cl.UID}); client.IgnoreNotFound(err) != nil && !apierrors.IsConflict(err) {
			return err
		}
		ctrl.LoggerFrom(ctx).V(1).Info("Deleted the claim of a process gone from its compute", "compute", key, "process", cl.Spec.ProcessID, "gameSession", cl.Spec.GameSessionName)
	}
	return nil
}

// ownedBy reports whether c is an owner of cl.
func ownedBy(cl *gamev1.ProcessClaim, c *gamev1.Compute) bool {
	return slices.ContainsFunc(cl.OwnerReferences, func(o metav1.OwnerReference) bool { return o.UID == c.UID })
}

// +kubebuilder:rbac:groups=agones.dev,resources=gameservers,verbs=patch

// reconcileGameServer plays the Agones SDK server's part in the lifecycle of the Agones GameServer whose Pod
// owns the compute (a Pod that opted in, whose game server talks to GameLift's SDK, not Agones'): Ready()
// once a process of the compute called ProcessReady (status.state Scheduled -> RequestReady; Agones then
// makes it Ready), Shutdown() once every process of it called ProcessEnding or was lost (status.state ->
// Shutdown; Agones then deletes it). It writes status.state only, in a JSON patch guarded by the
// resourceVersion it decided on, as Agones' SDK server does. It says when to look again (a GameServer not
// Scheduled yet).
func (r *ComputeReconciler) reconcileGameServer(ctx context.Context, c *gamev1.Compute) (time.Duration, error) {
	owner := metav1.GetControllerOf(c)
	if owner == nil || owner.Kind != "Pod" || r.Agones == nil || !r.Agones.Installed() {
		return 0, nil
	}
	pod := &corev1.Pod{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: owner.Name}, pod); err != nil || pod.UID != owner.UID {
		return 0, client.IgnoreNotFound(err)
	}
	name := pod.Labels[agones.GameServerPodLabel]
	if name == "" {
		return 0, nil
	}
	server, err := r.Agones.GameServer(ctx, client.ObjectKey{Namespace: c.Namespace, Name: name}, false)
	if err != nil || server == nil {
		return 0, err
	}
	active, ended := 0, 0
	for _, sp := range c.Status.Processes {
		switch sp.Status {
		case gamev1.ServerProcessActive:
			active++
		case gamev1.ServerProcessTerminated:
			ended++
		}
	}
	var state string
	switch {
	case server.Deleting || server.State == agones.StateShutdown:
		return 0, nil
	case active > 0 && server.State == agones.StateScheduled:
		state = agones.StateRequestReady
	case active > 0 && (server.State == "" || server.State == "PortAllocation" || server.State == "Creating" || server.State == "Starting"):
		return gameServerRecheck, nil // Ready() waits for the GameServer to be Scheduled
	case active == 0 && ended > 0:
		state = agones.StateShutdown
	default:
		return 0, nil
	}
	if err := r.Agones.SetState(ctx, c.Namespace, server, state); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsInvalid(err) { // changed since the cache saw it: decide again
			return ConflictRetry, nil
		}
		return 0, client.IgnoreNotFound(err)
	}
	ctrl.LoggerFrom(ctx).Info("Wrote an Agones GameServer's state for its GameLift process", "gameServer", klog.KRef(c.Namespace, name), "state", state)
	r.Recorder.Eventf(c, nil, corev1.EventTypeNormal, "GameServer"+state, "Lifecycle", "GameServer %s: %s (its processes: %d ACTIVE, %d TERMINATED)", name, state, active, ended)
	return 0, nil
}

// gameServerRecheck is how soon a GameServer not Scheduled yet is looked at again.
const gameServerRecheck = 2 * time.Second

// processLost is replicas.Lost with the Lease that conn names, read from the cache (none: ns is empty, so
// only a closed connection is a loss).
func processLost(ctx context.Context, c client.Reader, ns string, conn *gamev1.ProcessConnection, now time.Time) (time.Time, bool, error) {
	if conn == nil {
		return time.Time{}, false, nil
	}
	if ns == "" {
		if conn.DisconnectionTime != nil {
			return conn.DisconnectionTime.Time, true, nil
		}
		return time.Time{}, false, nil
	}
	lease := &coordinationv1.Lease{}
	switch err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: conn.Replica}, lease); {
	case apierrors.IsNotFound(err):
		lease = nil
	case err != nil:
		return time.Time{}, false, err
	}
	since, lost := replicas.Lost(conn, lease, now)
	return since, lost, nil
}

// SetupWithManager watches Computes, and the replicas' Leases (ReplicaReconciler) for the computes whose
// connections a replica held when it is found gone.
func (r *ComputeReconciler) SetupWithManager(mgr ctrl.Manager) error {
	lost := make(chan event.TypedGenericEvent[*gamev1.Compute], 64)
	b := ctrl.NewControllerManagedBy(mgr).Named("compute").
		For(&gamev1.Compute{}, builder.WithPredicates(predicate.ResourceVersionChangedPredicate{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles})
	if r.ReplicaNamespace == "" {
		return b.Complete(r)
	}
	if err := b.WatchesRawSource(sourceChannel(lost)).Complete(r); err != nil {
		return err
	}
	return (&ReplicaReconciler{Deps: r.Deps, lost: lost}).SetupWithManager(mgr)
}

// ReplicaReconciler watches the replicas' Leases: when one expires or changes holder, it wakes the
// computes whose processes that replica's former run held (the index ComputeReplica), and it deletes a
// Lease that expired long ago and that no process names any more (a replica of a former rollout).
type ReplicaReconciler struct {
	Deps
	lost chan<- event.TypedGenericEvent[*gamev1.Compute]
}

// staleLease is how long after its expiry an unused replica Lease is deleted.
const staleLease = time.Hour

// Reconcile wakes the computes of a replica whose connections are lost, or looks again when its Lease
// would expire.
func (r *ReplicaReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	lease := &coordinationv1.Lease{}
	if err := r.Get(ctx, req.NamespacedName, lease); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	} else if err != nil {
		lease = nil
	}
	var list gamev1.ComputeList
	if err := r.List(ctx, &list, client.MatchingFields{indexes.ComputeReplica: req.Name}); err != nil {
		return ctrl.Result{}, err
	}
	now := r.Clock.Now()
	for i := range list.Items {
		for _, sp := range list.Items[i].Status.Processes {
			if sp.Status != gamev1.ServerProcessActive || sp.Connection == nil || sp.Connection.Replica != req.Name {
				continue
			}
			if _, lost := replicas.Lost(sp.Connection, lease, now); lost {
				r.lost <- event.TypedGenericEvent[*gamev1.Compute]{Object: &list.Items[i]}
				break
			}
		}
	}
	if lease == nil {
		return ctrl.Result{}, nil
	}
	expiry := replicas.Expiry(lease)
	if wait := expiry.Sub(now); wait > 0 {
		return ctrl.Result{RequeueAfter: wait + time.Second}, nil
	}
	if len(list.Items) == 0 && now.Sub(expiry) > staleLease {
		ctrl.LoggerFrom(ctx).Info("Deleting the Lease of a replica gone long ago", "lease", klog.KObj(lease))
		return ctrl.Result{}, client.IgnoreNotFound(r.Delete(ctx, lease, client.Preconditions{ResourceVersion: &lease.ResourceVersion}))
	}
	return ctrl.Result{RequeueAfter: staleLease}, nil
}

// SetupWithManager watches the Leases labelled replicas.Label (the only ones the manager caches), and
// only their creation, deletion and change of holder: a renewal changes nothing until it stops, which
// the requeue at the expiry finds.
func (r *ReplicaReconciler) SetupWithManager(mgr ctrl.Manager) error {
	holderChanged := predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, okO := e.ObjectOld.(*coordinationv1.Lease)
		n, okN := e.ObjectNew.(*coordinationv1.Lease)
		return !okO || !okN || o.Spec.HolderIdentity == nil || n.Spec.HolderIdentity == nil || *o.Spec.HolderIdentity != *n.Spec.HolderIdentity
	}}
	return ctrl.NewControllerManagedBy(mgr).Named("replica").
		For(&coordinationv1.Lease{}, builder.WithPredicates(holderChanged, predicate.NewPredicateFuncs(func(o client.Object) bool {
			return o.GetNamespace() == r.ReplicaNamespace && o.GetLabels()[replicas.Label] == "true"
		}))).
		Complete(r)
}

// sourceChannel enqueues the computes sent on ch.
func sourceChannel(ch chan event.TypedGenericEvent[*gamev1.Compute]) source.TypedSource[reconcile.Request] {
	return source.Channel(ch, &handler.TypedEnqueueRequestForObject[*gamev1.Compute]{})
}
