package controllers

import (
	"context"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
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
func (r *GameSessionReconciler) reconcileProcess(ctx context.Context, gs *gamev1.GameSession) (time.Duration, error) {
	if ok, err := r.onSDKFleet(ctx, gs); err != nil || !ok || gs.Status.Process != nil {
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
				return 0, nil
			case sp.Status == gamev1.ServerProcessActive && sp.GameSessionUID == "":
				idle = append(idle, processChoice{compute: c, process: sp})
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
	return 0, nil
}

type processChoice struct {
	compute *gamev1.Compute
	process gamev1.ServerProcess
}

func (r *GameSessionReconciler) placed(gs *gamev1.GameSession, c *gamev1.Compute, processID string) {
	gs.Status.Process = &gamev1.ServerProcessRef{Compute: c.Name, ProcessID: processID}
	meta.SetStatusCondition(&gs.Status.Conditions, metav1.Condition{Type: gamev1.GameSessionPlacedCondition, Status: metav1.ConditionTrue,
		Reason: gamev1.ProcessClaimedReason, Message: fmt.Sprintf("Placed on process %s of compute %s", processID, c.Spec.ComputeName)})
}

// gameSessionsForCompute maps a Compute's change to the ACTIVATING game sessions of its fleet waiting for
// a process (the oldest first, as many as the compute has idle processes).
func (r *GameSessionReconciler) gameSessionsForCompute(ctx context.Context, o client.Object) []reconcile.Request {
	c, ok := o.(*gamev1.Compute)
	if !ok {
		return nil
	}
	idle := 0
	for _, sp := range c.Status.Processes {
		if sp.Status == gamev1.ServerProcessActive && sp.GameSessionUID == "" {
			idle++
		}
	}
	if idle == 0 {
		return nil
	}
	var list gamev1.GameSessionList
	if err := r.List(ctx, &list, client.InNamespace(c.Namespace), client.MatchingFields{indexes.GameSessionFleetID: c.Spec.FleetID}); err != nil {
		return nil
	}
	slices.SortFunc(list.Items, func(a, b gamev1.GameSession) int { return a.CreationTimestamp.Compare(b.CreationTimestamp.Time) })
	var reqs []reconcile.Request
	for i := range list.Items {
		gs := &list.Items[i]
		if gs.Status.Status == gamev1.GameSessionActivating && gs.Status.Process == nil && gs.Spec.Agones == nil && gs.Spec.Port == 0 {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(gs)})
			if len(reqs) == idle {
				break
			}
		}
	}
	return reqs
}
