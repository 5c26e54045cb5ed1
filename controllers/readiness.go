package controllers

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/admission"
)

// Readiness, as GitOps tools read it. Flux (kstatus) and the Argo CD health checks in config/argocd read the
// conditions Ready and Stalled and status.observedGeneration; these functions derive both conditions from
// the rest of the status, and each reconciler calls them just before its one status write, so they always
// describe what is written with them.

// setGameSessionReadiness derives Ready and Stalled from the game session's status: ACTIVE and TERMINATED
// (a normal end) are Ready; ACTIVATING and TERMINATING are not yet; ERROR is Stalled.
func setGameSessionReadiness(gs *gamev1.GameSession) {
	ready := metav1.Condition{Type: gamev1.GameSessionReadyCondition, ObservedGeneration: gs.Generation}
	switch gs.Status.Status {
	case gamev1.GameSessionActive:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionTrue, gamev1.GameSessionActiveReason, "Game session accepts player sessions"
	case gamev1.GameSessionTerminated:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionTrue, gamev1.GameSessionEndedReason, "Game session ended; it accepts no more player sessions"
	case gamev1.GameSessionActivating, "":
		ready.Status, ready.Reason = metav1.ConditionFalse, gamev1.WaitingForEndpointReason
		ready.Message = "Waiting for an endpoint: set spec.port with spec.ipAddress or spec.dnsName, or let the game server activate it"
		if gs.Spec.Agones != nil {
			ready.Message = "Waiting for an Allocated Agones GameServer with an address (see the GameServerBound condition)"
		}
	default:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, gamev1.GameSessionNotActiveReason, fmt.Sprintf("Game session is %s", gs.Status.Status)
	}
	meta.SetStatusCondition(&gs.Status.Conditions, ready)
	if gs.Status.Status != gamev1.GameSessionError {
		meta.RemoveStatusCondition(&gs.Status.Conditions, gamev1.GameSessionStalledCondition)
		return
	}
	stalled := metav1.Condition{Type: gamev1.GameSessionStalledCondition, Status: metav1.ConditionTrue, ObservedGeneration: gs.Generation,
		Reason: gamev1.GameSessionErrorReason, Message: "Game session is in ERROR: its game server failed; it accepts no player sessions"}
	if b := meta.FindStatusCondition(gs.Status.Conditions, gamev1.GameServerBoundCondition); b != nil && b.Status == metav1.ConditionFalse {
		stalled.Reason, stalled.Message = b.Reason, b.Message
	}
	meta.SetStatusCondition(&gs.Status.Conditions, stalled)
}

// setPlayerSessionReadiness derives Ready and Stalled from the Admitted condition: admitted is Ready
// (RESERVED, ACTIVE, COMPLETED and TIMEDOUT are all normal), waiting is not yet, refused is Stalled.
func setPlayerSessionReadiness(ps *gamev1.PlayerSession) {
	ready := metav1.Condition{Type: gamev1.PlayerSessionReadyCondition, Status: metav1.ConditionFalse, ObservedGeneration: ps.Generation,
		Reason: gamev1.AdmissionPendingReason, Message: "Waiting for a seat in game session " + ps.Spec.GameSessionName}
	admitted := meta.FindStatusCondition(ps.Status.Conditions, gamev1.AdmittedCondition)
	switch {
	case ps.Status.Status != "":
		ready.Status, ready.Reason, ready.Message = metav1.ConditionTrue, gamev1.SeatReservedReason, "Seat granted in game session "+ps.Spec.GameSessionName+"; status.status tells the rest"
	case admitted != nil && admitted.Status != metav1.ConditionTrue:
		ready.Reason, ready.Message = admitted.Reason, admitted.Message
	}
	meta.SetStatusCondition(&ps.Status.Conditions, ready)
	if !admission.IsRefused(ps) {
		meta.RemoveStatusCondition(&ps.Status.Conditions, gamev1.PlayerSessionStalledCondition)
		return
	}
	meta.SetStatusCondition(&ps.Status.Conditions, metav1.Condition{Type: gamev1.PlayerSessionStalledCondition, Status: metav1.ConditionTrue,
		ObservedGeneration: ps.Generation, Reason: admitted.Reason, Message: "Refused for good: " + admitted.Message})
}
