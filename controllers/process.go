package controllers

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/computes"
	"github.com/playersessions/operator/internal/indexes"
)

// +kubebuilder:rbac:groups=game.playersessions.dev,resources=computes,verbs=get;list;watch
// +kubebuilder:rbac:groups=game.playersessions.dev,resources=computes/status,verbs=get;patch

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
// fleet: it claims the process on its Compute (status.processes[].gameSessionUID, under the optimistic lock,
// so a process never takes two game sessions) and records it in the game session's status.process. Before
// claiming, it reads the fleet's computes from the API server, and adopts a process already claimed for this
// game session (a claim whose record in the game session was lost), so a game session is never placed on
// two processes. The process's replica then pushes CreateGameSession to it; the game's ActivateGameSession
// writes the endpoint (internal/gameservers). No idle process: it waits (a Compute's change wakes it).
func (r *GameSessionReconciler) reconcileProcess(ctx context.Context, fx *effects, gs *gamev1.GameSession) (time.Duration, error) {
	if gs.Status.Process != nil {
		if err := r.reconcileProcessEnd(ctx, fx, gs); err != nil {
			return 0, err
		}
		return r.reconcileActivationTimeout(ctx, fx, gs), nil
	}
	if ok, err := r.onSDKFleet(ctx, gs); err != nil || !ok {
		return 0, err
	}
	var list gamev1.ComputeList
	if err := r.APIReader.List(ctx, &list, client.InNamespace(gs.Namespace), client.MatchingFields{"spec.fleetId": gs.Spec.FleetID}); err != nil {
		return 0, err
	}
	var idle []processChoice
	for i := range list.Items {
		c := &list.Items[i]
		for _, sp := range c.Status.Processes {
			switch {
			case sp.GameSessionUID == string(gs.UID):
				r.placed(gs, c, sp.ProcessID)
				return r.reconcileActivationTimeout(ctx, fx, gs), nil
			case sp.Status == gamev1.ServerProcessActive && sp.GameSessionUID == "" && !sp.Unhealthy:
				if _, lost, err := processLost(ctx, r.Client, r.ReplicaNamespace, sp.Connection, r.Clock.Now()); err != nil {
					return 0, err
				} else if !lost { // a process without its connection would not get the push
					idle = append(idle, processChoice{compute: c, process: sp})
				}
			}
		}
	}
	if len(idle) == 0 {
		meta.SetStatusCondition(&gs.Status.Conditions, metav1.Condition{Type: gamev1.GameSessionPlacedCondition, Status: metav1.ConditionFalse,
			Reason: gamev1.NoIdleProcessReason, Message: fmt.Sprintf("No idle game server process in fleet %s; waiting for one", gs.Spec.FleetID)})
		return 0, nil
	}
	// The longest idle first (the earliest ProcessReady), as the processes wait their turn.
	slices.SortFunc(idle, func(a, b processChoice) int { return a.process.ActivationTime.Compare(b.process.ActivationTime.Time) })
	chosen := idle[0]
	before := chosen.compute.DeepCopy()
	i := slices.IndexFunc(chosen.compute.Status.Processes, func(sp gamev1.ServerProcess) bool { return sp.ProcessID == chosen.process.ProcessID })
	chosen.compute.Status.Processes[i].GameSessionName, chosen.compute.Status.Processes[i].GameSessionUID = gs.Name, string(gs.UID)
	if err := r.Status().Patch(ctx, chosen.compute, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsConflict(err) {
			return cacheLagRetry, nil // the compute changed (another placement, a process): choose again
		}
		return 0, err
	}
	ctrl.LoggerFrom(ctx).Info("Placed the game session on a game server process", "gameSession", klog.KObj(gs),
		"compute", klog.KObj(chosen.compute), "process", chosen.process.ProcessID)
	r.placed(gs, chosen.compute, chosen.process.ProcessID)
	return r.reconcileActivationTimeout(ctx, fx, gs), nil
}

// reconcileProcessEnd ends a game session whose process ended: TERMINATED when the process called
// ProcessEnding, TERMINATED with status reason INTERRUPTED when its compute or its process is gone, or the
// process lost its connection and did not come back (ComputeReconciler) (read
// from the API server before deciding: a cache that has not seen the compute yet is not a loss).
func (r *GameSessionReconciler) reconcileProcessEnd(ctx context.Context, fx *effects, gs *gamev1.GameSession) error {
	if gs.Status.Status == gamev1.GameSessionTerminated || gs.Status.Status == gamev1.GameSessionError {
		return nil
	}
	ref := gs.Status.Process
	c := &gamev1.Compute{}
	err := r.Get(ctx, client.ObjectKey{Namespace: gs.Namespace, Name: ref.Compute}, c)
	if apierrors.IsNotFound(err) {
		err = r.APIReader.Get(ctx, client.ObjectKey{Namespace: gs.Namespace, Name: ref.Compute}, c)
	}
	var reason, message string
	switch {
	case apierrors.IsNotFound(err):
		reason, message = gamev1.GameSessionInterrupted, fmt.Sprintf("compute %s was deregistered", ref.Compute)
	case err != nil:
		return err
	default:
		i := slices.IndexFunc(c.Status.Processes, func(sp gamev1.ServerProcess) bool { return sp.ProcessID == ref.ProcessID })
		switch {
		case i < 0 || c.Status.Processes[i].GameSessionUID != string(gs.UID):
			reason, message = gamev1.GameSessionInterrupted, fmt.Sprintf("process %s of compute %s is gone", ref.ProcessID, c.Spec.ComputeName)
		case c.Status.Processes[i].Status == gamev1.ServerProcessTerminated && c.Status.Processes[i].TerminationReason == gamev1.ConnectionLostReason:
			reason, message = gamev1.GameSessionInterrupted, fmt.Sprintf("process %s of compute %s lost its connection and did not come back", ref.ProcessID, c.Spec.ComputeName)
		case c.Status.Processes[i].Status == gamev1.ServerProcessTerminated:
			message = fmt.Sprintf("process %s of compute %s ended (ProcessEnding)", ref.ProcessID, c.Spec.ComputeName)
		default:
			return nil
		}
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
	i := slices.IndexFunc(c.Status.Processes, func(sp gamev1.ServerProcess) bool { return sp.GameSessionUID == string(gs.UID) })
	if i < 0 {
		if i = slices.IndexFunc(c.Status.Processes, func(sp gamev1.ServerProcess) bool {
			return sp.Status == gamev1.ServerProcessActive && sp.GameSessionUID == "" && !sp.Unhealthy
		}); i < 0 {
			meta.SetStatusCondition(&gs.Status.Conditions, metav1.Condition{Type: gamev1.GameSessionPlacedCondition, Status: metav1.ConditionFalse,
				Reason: gamev1.NoIdleProcessReason, Message: fmt.Sprintf("GameServer %s has no idle game server process", server)})
			return true, gameServerRecheck, nil
		}
		before := c.DeepCopy()
		c.Status.Processes[i].GameSessionName, c.Status.Processes[i].GameSessionUID = gs.Name, string(gs.UID)
		if err := r.Status().Patch(ctx, c, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
			if apierrors.IsConflict(err) {
				return true, cacheLagRetry, nil
			}
			return false, 0, err
		}
		ctrl.LoggerFrom(ctx).Info("Placed the game session on its GameServer's process", "gameSession", klog.KObj(gs), "gameServer", server,
			"compute", klog.KObj(c), "process", c.Status.Processes[i].ProcessID)
	}
	r.placed(gs, c, c.Status.Processes[i].ProcessID)
	gs.Status.Process.Endpoint = &endpoint
	return true, 0, nil // reconcileProcess, next, counts the activation timeout
}

type processChoice struct {
	compute *gamev1.Compute
	process gamev1.ServerProcess
}

func (r *GameSessionReconciler) placed(gs *gamev1.GameSession, c *gamev1.Compute, processID string) {
	gs.Status.Process = &gamev1.ServerProcessRef{Compute: c.Name, ProcessID: processID}
	meta.SetStatusCondition(&gs.Status.Conditions, metav1.Condition{Type: gamev1.GameSessionPlacedCondition, Status: metav1.ConditionTrue,
		Reason: gamev1.ProcessClaimedReason, Message: fmt.Sprintf("Placed on process %s of compute %s", processID, c.Spec.ComputeName),
		LastTransitionTime: metav1.NewTime(r.Clock.Now())}) // the activation timeout counts from it
}

// gameSessionsForCompute maps a Compute's change (or its deletion) to the game sessions placed on it (their
// process may have ended) and to the ACTIVATING game sessions of its fleet waiting for a process (the
// oldest first, as many as the compute has idle processes).
func (r *GameSessionReconciler) gameSessionsForCompute(ctx context.Context, o client.Object) []reconcile.Request {
	c, ok := o.(*gamev1.Compute)
	if !ok {
		return nil
	}
	idle := 0
	for _, sp := range c.Status.Processes {
		if sp.Status == gamev1.ServerProcessActive && sp.GameSessionUID == "" && !sp.Unhealthy {
			idle++
		}
	}
	var list gamev1.GameSessionList
	if err := r.List(ctx, &list, client.InNamespace(c.Namespace), client.MatchingFields{indexes.GameSessionFleetID: c.Spec.FleetID}); err != nil {
		return nil
	}
	slices.SortFunc(list.Items, func(a, b gamev1.GameSession) int { return a.CreationTimestamp.Compare(b.CreationTimestamp.Time) })
	var reqs []reconcile.Request
	waiting := 0
	for i := range list.Items {
		gs := &list.Items[i]
		switch {
		case gs.Status.Process != nil && gs.Status.Process.Compute == c.Name: // its process may have ended
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(gs)})
		case waiting < idle && gs.Status.Status == gamev1.GameSessionActivating && gs.Status.Process == nil && gs.Spec.Agones == nil && gs.Spec.Port == 0:
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(gs)})
			waiting++
		}
	}
	return reqs
}
