package controllers

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/computes"
	"github.com/playersessions/operator/internal/indexes"
)

// +kubebuilder:rbac:groups=game.playersessions.dev,resources=computes,verbs=get;list;watch
// +kubebuilder:rbac:groups=game.playersessions.dev,resources=processclaims,verbs=get;list;watch;create;delete

// onSDKFleet reports whether gs is to be placed on a GameLift Server SDK process: an ACTIVATING game
// session without an endpoint of its own or Agones, on a fleet with registered computes in its namespace.
func (r *GameSessionReconciler) onSDKFleet(ctx context.Context, gs *gamev1.GameSession) (bool, error) {
	if gs.Spec.Agones != nil || gs.Spec.Port != 0 || gs.Status.Status != gamev1.GameSessionActivating {
		return false, nil
	}
	if gs.Status.Process != nil {
		return true, nil
	}
	var list gamev1.ComputeList
	if err := r.List(ctx, &list, client.InNamespace(gs.Namespace), client.MatchingFields{indexes.ComputeFleetID: gs.Spec.FleetID}, client.Limit(1)); err != nil {
		return false, err
	}
	return len(list.Items) > 0, nil
}

// reconcileProcess places an ACTIVATING game session of an SDK fleet on one idle ACTIVE process of the
// fleet: it claims the process by creating the process's ProcessClaim (named after the compute and the
// process: a process already claimed refuses a second claim, AlreadyExists, so a process never takes two
// game sessions; a small object, where a claim written in the Compute's status rewrote its 50 processes:
// docs/benchmarks.md) and records it in the game session's status.process. A game session is never placed
// on two processes: it adopts a process already claimed for it, as the cache shows it, or as this leader
// remembers claiming it (claims: a claim whose record in the game session has not reached the cache, or
// was lost with a conflicting status write). A claim older than the cache is in it: a claim of a former
// leader was made before this one's Lease was acquired, and its cache has been watching since. The choice
// is spread over the idle processes by the game session's UID, so that concurrent placements claim on
// different computes rather than all on the longest idle process's. The process's replica then pushes
// CreateGameSession to it once the placement is recorded; the game's ActivateGameSession makes it ACTIVE
// (internal/gameservers). No idle process: it waits (a Compute's change wakes it). A process that ends as
// it is claimed (the cache had not seen it end) ends the game session (reconcileProcessEnd), as a process
// ending just after would.
func (r *GameSessionReconciler) reconcileProcess(ctx context.Context, fx *effects, gs *gamev1.GameSession) (time.Duration, error) {
	if gs.Status.Process != nil {
		r.claims.Delete(client.ObjectKeyFromObject(gs)) // recorded
		if err := r.reconcileProcessEnd(ctx, fx, gs); err != nil {
			return 0, err
		}
		return r.reconcileActivationTimeout(ctx, fx, gs), nil
	}
	if ok, err := r.onSDKFleet(ctx, gs); err != nil || !ok {
		return 0, err
	}
	if v, ok := r.claims.Load(client.ObjectKeyFromObject(gs)); ok && v.(claim).uid == gs.UID {
		ref := v.(claim).ref
		gs.Status.Process = &ref
		r.placedAt(gs, ref.ProcessID)
		return r.reconcileActivationTimeout(ctx, fx, gs), nil
	}
	var mine gamev1.ProcessClaimList
	if err := r.List(ctx, &mine, client.InNamespace(gs.Namespace), client.MatchingFields{indexes.ProcessClaimGameSessionUID: string(gs.UID)}, client.UnsafeDisableDeepCopy); err != nil {
		return 0, err
	}
	if len(mine.Items) > 0 {
		r.placedOn(gs, mine.Items[0].Spec.Compute, mine.Items[0].Spec.ProcessID)
		return r.reconcileActivationTimeout(ctx, fx, gs), nil
	}
	idle, err := computes.IdleProcesses(ctx, r.Client, gs.Namespace, gs.Spec.FleetID) // the cache's objects: read only
	if err != nil {
		return 0, err
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(gs.UID))
	var chosen *computes.IdleProcess
	for k := range idle { // from the game session's own starting point, the first connected one
		candidate := &idle[(int(h.Sum32()%uint32(len(idle)))+k)%len(idle)]
		if _, lost, err := processLost(ctx, r.Client, r.ReplicaNamespace, candidate.Process.Connection, r.Clock.Now()); err != nil {
			return 0, err
		} else if !lost { // a process without its connection would not get the push
			chosen = candidate
			break
		}
	}
	if chosen == nil {
		meta.SetStatusCondition(&gs.Status.Conditions, metav1.Condition{Type: gamev1.GameSessionPlacedCondition, Status: metav1.ConditionFalse,
			Reason: gamev1.NoIdleProcessReason, Message: fmt.Sprintf("No idle game server process in fleet %s; waiting for one", gs.Spec.FleetID)})
		return 0, nil
	}
	if err := r.Create(ctx, computes.Claim(chosen.Compute, chosen.Process.ProcessID, gs)); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return cacheLagRetry, nil // claimed since the cache saw it: choose again
		}
		return 0, err
	}
	ctrl.LoggerFrom(ctx).Info("Placed the game session on a game server process", "gameSession", klog.KObj(gs),
		"compute", klog.KObj(chosen.Compute), "process", chosen.Process.ProcessID)
	r.claims.Store(client.ObjectKeyFromObject(gs), claim{uid: gs.UID, ref: gamev1.ServerProcessRef{Compute: chosen.Compute.Name, ProcessID: chosen.Process.ProcessID}})
	r.placedOn(gs, chosen.Compute.Name, chosen.Process.ProcessID)
	return r.reconcileActivationTimeout(ctx, fx, gs), nil
}

// reconcileProcessEnd ends a game session whose process ended: TERMINATED when the process called
// ProcessEnding, TERMINATED with status reason INTERRUPTED when its compute or its process is gone, or the
// process lost its connection and did not come back (ComputeReconciler). It decides on the cache and
// confirms an end on the API server: a cache that has not seen the compute, or the claim, yet is no loss.
func (r *GameSessionReconciler) reconcileProcessEnd(ctx context.Context, fx *effects, gs *gamev1.GameSession) error {
	if gs.Status.Status == gamev1.GameSessionTerminated || gs.Status.Status == gamev1.GameSessionError {
		return nil
	}
	c, cl, err := processOf(ctx, r.Client, gs)
	if err != nil {
		return err
	}
	end, reason, message := decideProcessEnd(gs, c, cl)
	if end { // final: decide again on the API server's objects (the cache may not have the claim yet)
		if c, cl, err = processOf(ctx, r.APIReader, gs); err != nil {
			return err
		}
		end, reason, message = decideProcessEnd(gs, c, cl)
	}
	if !end {
		return nil
	}
	if reason == "" && gs.Status.Status == gamev1.GameSessionTerminating {
		reason = gs.Status.StatusReason // TerminateGameSession's TRIGGERED_ON_PROCESS_TERMINATE
	}
	gs.Status.Status, gs.Status.StatusReason = gamev1.GameSessionTerminated, reason
	fx.add(func() {
		ctrl.LoggerFrom(ctx).Info("Game session ended with its process", "gameSession", klog.KObj(gs), "reason", message)
		r.Recorder.Eventf(gs, nil, corev1.EventTypeNormal, "ProcessEnded", "Terminate", "Game session ended: %s", message)
	})
	return nil
}

// processOf reads the compute and the claim of the process gs is placed on (nil: not found), read only.
func processOf(ctx context.Context, r client.Reader, gs *gamev1.GameSession) (*gamev1.Compute, *gamev1.ProcessClaim, error) {
	ref := gs.Status.Process
	c, cl := &gamev1.Compute{}, &gamev1.ProcessClaim{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: gs.Namespace, Name: ref.Compute}, c, client.UnsafeDisableDeepCopy); apierrors.IsNotFound(err) {
		c = nil
	} else if err != nil {
		return nil, nil, err
	}
	if err := r.Get(ctx, client.ObjectKey{Namespace: gs.Namespace, Name: computes.ClaimName(ref.Compute, ref.ProcessID)}, cl, client.UnsafeDisableDeepCopy); apierrors.IsNotFound(err) {
		cl = nil
	} else if err != nil {
		return nil, nil, err
	}
	return c, cl, nil
}

// decideProcessEnd decides whether gs ended with its process, from its compute c (nil: gone) and the
// process's claim cl (nil: none), with the status reason and a message.
func decideProcessEnd(gs *gamev1.GameSession, c *gamev1.Compute, cl *gamev1.ProcessClaim) (end bool, reason, message string) {
	ref := gs.Status.Process
	if c == nil {
		return true, gamev1.GameSessionInterrupted, fmt.Sprintf("compute %s was deregistered", ref.Compute)
	}
	i := slices.IndexFunc(c.Status.Processes, func(sp gamev1.ServerProcess) bool { return sp.ProcessID == ref.ProcessID })
	switch {
	case i < 0:
		return true, gamev1.GameSessionInterrupted, fmt.Sprintf("process %s of compute %s is gone", ref.ProcessID, c.Spec.ComputeName)
	case !computes.Holds(cl, gs):
		return true, gamev1.GameSessionInterrupted, fmt.Sprintf("the claim of process %s of compute %s on the game session is gone", ref.ProcessID, c.Spec.ComputeName)
	case c.Status.Processes[i].Status == gamev1.ServerProcessTerminated && c.Status.Processes[i].TerminationReason == gamev1.ConnectionLostReason:
		return true, gamev1.GameSessionInterrupted, fmt.Sprintf("process %s of compute %s lost its connection and did not come back", ref.ProcessID, c.Spec.ComputeName)
	case c.Status.Processes[i].Status == gamev1.ServerProcessTerminated:
		return true, "", fmt.Sprintf("process %s of compute %s ended (ProcessEnding)", ref.ProcessID, c.Spec.ComputeName)
	}
	return false, "", ""
}

// reconcileActivationTimeout makes ERROR a game session still ACTIVATING ProcessActivationTimeout after it
// was placed (the Placed condition's transition, persisted), and says when to look again before that.
func (r *GameSessionReconciler) reconcileActivationTimeout(ctx context.Context, fx *effects, gs *gamev1.GameSession) time.Duration {
	placed := meta.FindStatusCondition(gs.Status.Conditions, gamev1.GameSessionPlacedCondition)
	if gs.Status.Status != gamev1.GameSessionActivating || placed == nil || placed.Status != metav1.ConditionTrue || r.ProcessActivationTimeout <= 0 {
		return 0
	}
	if wait := placed.LastTransitionTime.Add(r.ProcessActivationTimeout).Sub(r.Clock.Now()); wait > 0 {
		return wait
	}
	gs.Status.Status = gamev1.GameSessionError
	msg := fmt.Sprintf("The game server process %s did not activate the game session within %s", gs.Status.Process.ProcessID, r.ProcessActivationTimeout)
	meta.SetStatusCondition(&gs.Status.Conditions, metav1.Condition{Type: gamev1.GameSessionPlacedCondition, Status: metav1.ConditionFalse,
		Reason: gamev1.ActivationTimedOutReason, Message: msg})
	fx.add(func() {
		ctrl.LoggerFrom(ctx).Info("Game session not activated in time", "gameSession", klog.KObj(gs), "process", gs.Status.Process.ProcessID)
		r.Recorder.Eventf(gs, nil, corev1.EventTypeWarning, gamev1.ActivationTimedOutReason, "Activate", "%s", msg)
	})
	return 0
}

// placeOnGameServer places a game session bound to an Allocated Agones GameServer on the GameLift Server
// SDK process of that GameServer's Pod, when its Pod opted in (controllers/pod_controller.go): it claims an
// idle ACTIVE process of the Pod's Compute as reconcileProcess does (or adopts one claimed for it), and
// records the GameServer's endpoint in status.process, for the CreateGameSession push and the game's
// ActivateGameSession. placed is false for a GameServer whose Pod has no such process (the game session
// then follows the GameServer alone); wait is when to look again for a process not registered yet.
func (r *GameSessionReconciler) placeOnGameServer(ctx context.Context, gs *gamev1.GameSession, server string, endpoint gamev1.Endpoint) (placed bool, wait time.Duration, err error) {
	if gs.Status.Process != nil {
		return true, 0, nil
	}
	pod := &corev1.Pod{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: gs.Namespace, Name: server}, pod); err != nil || pod.Labels[gamev1.GameLiftSDKLabel] != "true" {
		return false, 0, client.IgnoreNotFound(err)
	}
	key := client.ObjectKey{Namespace: gs.Namespace, Name: computes.ObjectName(pod.Annotations[gamev1.FleetIDAnnotation], pod.Annotations[gamev1.ComputeNameAnnotation])}
	c := &gamev1.Compute{}
	if err := r.APIReader.Get(ctx, key, c); err != nil {
		if apierrors.IsNotFound(err) {
			meta.SetStatusCondition(&gs.Status.Conditions, metav1.Condition{Type: gamev1.GameSessionPlacedCondition, Status: metav1.ConditionFalse,
				Reason: gamev1.NoIdleProcessReason, Message: fmt.Sprintf("GameServer %s has no registered compute yet", server)})
			return true, gameServerRecheck, nil
		}
		return false, 0, err
	}
	claimed, err := computes.Claims(ctx, r.Client, c)
	if err != nil {
		return false, 0, err
	}
	i := slices.IndexFunc(c.Status.Processes, func(sp gamev1.ServerProcess) bool { return computes.Holds(claimed[sp.ProcessID], gs) })
	if i < 0 {
		if i = slices.IndexFunc(c.Status.Processes, func(sp gamev1.ServerProcess) bool {
			return computes.Idle(sp, claimed[sp.ProcessID] != nil)
		}); i < 0 {
			meta.SetStatusCondition(&gs.Status.Conditions, metav1.Condition{Type: gamev1.GameSessionPlacedCondition, Status: metav1.ConditionFalse,
				Reason: gamev1.NoIdleProcessReason, Message: fmt.Sprintf("GameServer %s has no idle game server process", server)})
			return true, gameServerRecheck, nil
		}
		if err := r.Create(ctx, computes.Claim(c, c.Status.Processes[i].ProcessID, gs)); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return true, cacheLagRetry, nil // claimed since the cache saw it (by this game session, too): look again
			}
			return false, 0, err
		}
		ctrl.LoggerFrom(ctx).Info("Placed the game session on its GameServer's process", "gameSession", klog.KObj(gs), "gameServer", server,
			"compute", klog.KObj(c), "process", c.Status.Processes[i].ProcessID)
	}
	r.placedOn(gs, c.Name, c.Status.Processes[i].ProcessID)
	gs.Status.Process.Endpoint = &endpoint
	return true, 0, nil // reconcileProcess, next, counts the activation timeout
}

// claim is a process this reconciler claimed for the game session of that UID.
type claim struct {
	uid types.UID
	ref gamev1.ServerProcessRef
}

// placedOn records in gs its placement on process processID of the Compute named compute.
func (r *GameSessionReconciler) placedOn(gs *gamev1.GameSession, compute, processID string) {
	gs.Status.Process = &gamev1.ServerProcessRef{Compute: compute, ProcessID: processID}
	r.placedAt(gs, processID)
}

// placedAt sets the Placed condition of a game session whose status.process is set.
func (r *GameSessionReconciler) placedAt(gs *gamev1.GameSession, processID string) {
	meta.SetStatusCondition(&gs.Status.Conditions, metav1.Condition{Type: gamev1.GameSessionPlacedCondition, Status: metav1.ConditionTrue,
		Reason: gamev1.ProcessClaimedReason, Message: fmt.Sprintf("Placed on process %s of compute %s", processID, gs.Status.Process.Compute),
		LastTransitionTime: metav1.NewTime(r.Clock.Now())}) // the activation timeout counts from it
}

// computeEvents maps a Compute's changes to the game sessions they concern: a game session whose process
// entry changed (ended, lost, unhealthy, dropped) or whose compute is gone, and, when the compute has idle
// processes, the game sessions of its fleet waiting for one (the oldest first, as many as it has idle). A
// change that concerns no game session (a connection record, a token) wakes none: with 50 processes on a
// compute, waking each of its game sessions on each such change would be 50 reconciles per write.
func (r *GameSessionReconciler) computeEvents() handler.EventHandler {
	type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q queue) {
			if c, ok := e.Object.(*gamev1.Compute); ok {
				r.enqueueWaiting(ctx, c.Namespace, c.Spec.FleetID, q)
			}
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q queue) {
			old, okOld := e.ObjectOld.(*gamev1.Compute)
			c, okNew := e.ObjectNew.(*gamev1.Compute)
			if !okOld || !okNew {
				return
			}
			changed := changedProcesses(old, c)
			claimed, err := computes.Claims(ctx, r.Client, c)
			if err != nil {
				return
			}
			for _, pid := range changed {
				if cl := claimed[pid]; cl != nil {
					q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: c.Namespace, Name: cl.Spec.GameSessionName}})
				}
			}
			r.enqueueWaiting(ctx, c.Namespace, c.Spec.FleetID, q)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q queue) {
			c, ok := e.Object.(*gamev1.Compute)
			if !ok {
				return
			}
			var placed gamev1.GameSessionList
			if err := r.List(ctx, &placed, client.InNamespace(c.Namespace), client.MatchingFields{indexes.GameSessionProcessCompute: c.Name}, client.UnsafeDisableDeepCopy); err != nil {
				return
			}
			for i := range placed.Items {
				q.Add(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&placed.Items[i])})
			}
		},
	}
}

// claimEvents wakes the game session of a claim deleted (its compute's process entry is gone, or someone
// deleted it): the game session ends with its process (reconcileProcessEnd). A claim's creation is the
// placement's own write, which the reconcile that made it records; it wakes the fleet's next waiting game
// sessions if processes are still idle.
func (r *GameSessionReconciler) claimEvents() handler.EventHandler {
	return handler.Funcs{
		// A claim made: the next waiting game sessions of the fleet, if processes are still idle (two
		// processes becoming idle at once may both have woken the same, oldest, game session).
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			cl, ok := e.Object.(*gamev1.ProcessClaim)
			if !ok {
				return
			}
			c := &gamev1.Compute{}
			if err := r.Get(ctx, client.ObjectKey{Namespace: cl.Namespace, Name: cl.Spec.Compute}, c); err == nil {
				r.enqueueWaiting(ctx, c.Namespace, c.Spec.FleetID, q)
			}
		},
		DeleteFunc: func(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if cl, ok := e.Object.(*gamev1.ProcessClaim); ok {
				q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: cl.Namespace, Name: cl.Spec.GameSessionName}})
			}
		},
	}
}

// changedProcesses are the ids of the process entries whose status, termination or health differs
// between old and c (an entry added or removed included).
func changedProcesses(old, c *gamev1.Compute) []string {
	type view struct {
		status    gamev1.ServerProcessStatusValue
		reason    gamev1.ServerProcessTerminationReason
		unhealthy bool
	}
	views := func(c *gamev1.Compute) map[string]view {
		m := make(map[string]view, len(c.Status.Processes))
		for _, sp := range c.Status.Processes {
			m[sp.ProcessID] = view{sp.Status, sp.TerminationReason, sp.Unhealthy}
		}
		return m
	}
	before, after := views(old), views(c)
	var ids []string
	for id, a := range after {
		if b, ok := before[id]; !ok || a != b {
			ids = append(ids, id)
		}
	}
	for id := range before {
		if _, ok := after[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// enqueueWaiting wakes as many of the fleet's game sessions waiting for a process, oldest first, as the
// fleet has idle processes; one that holds a claim already (placed, its status not in the cache yet) is
// passed over, so that the wake-up goes to one that needs it.
func (r *GameSessionReconciler) enqueueWaiting(ctx context.Context, namespace, fleet string, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	processes, err := computes.IdleProcesses(ctx, r.Client, namespace, fleet)
	idle := len(processes)
	if err != nil || idle == 0 {
		return
	}
	var waiting gamev1.GameSessionList
	if err := r.List(ctx, &waiting, client.InNamespace(namespace), client.MatchingFields{indexes.GameSessionAwaitingProcess: fleet}, client.UnsafeDisableDeepCopy); err != nil {
		return
	}
	slices.SortFunc(waiting.Items, func(a, b gamev1.GameSession) int {
		return cmp.Or(a.CreationTimestamp.Compare(b.CreationTimestamp.Time), cmp.Compare(a.Name, b.Name))
	})
	for i := range waiting.Items {
		if idle == 0 {
			return
		}
		var mine gamev1.ProcessClaimList
		if err := r.List(ctx, &mine, client.InNamespace(namespace), client.MatchingFields{indexes.ProcessClaimGameSessionUID: string(waiting.Items[i].UID)}, client.UnsafeDisableDeepCopy); err != nil || len(mine.Items) > 0 {
			continue
		}
		q.Add(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&waiting.Items[i])})
		idle--
	}
}
