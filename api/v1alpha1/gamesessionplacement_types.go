package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// GameSessionPlacementState is a placement's state, as GameLift names it.
// +kubebuilder:validation:Enum=PENDING;FULFILLED;CANCELLED;TIMED_OUT;FAILED
type GameSessionPlacementState string

const (
	// PlacementPending: trying the queue's destinations.
	PlacementPending GameSessionPlacementState = "PENDING"
	// PlacementFulfilled: the game session is ACTIVE and the desired player sessions are reserved in it.
	PlacementFulfilled GameSessionPlacementState = "FULFILLED"
	// PlacementCancelled: stopped while PENDING.
	PlacementCancelled GameSessionPlacementState = "CANCELLED"
	// PlacementTimedOut: not fulfilled within the queue's timeout.
	PlacementTimedOut GameSessionPlacementState = "TIMED_OUT"
	// PlacementFailed: it cannot be fulfilled (its queue is gone, its players were refused).
	PlacementFailed GameSessionPlacementState = "FAILED"
)

// GameSessionPlacement condition types and reasons (kstatus: Ready True is Current; Stalled True is Failed).
const (
	// PlacementReadyCondition is True once FULFILLED, False otherwise.
	PlacementReadyCondition = "Ready"
	// PlacementStalledCondition is True once the placement ended without a game session (CANCELLED,
	// TIMED_OUT, FAILED).
	PlacementStalledCondition = "Stalled"

	// PlacementFulfilledReason, PlacementPendingReason, PlacementCancelledReason, PlacementTimedOutReason
	// and PlacementFailedReason are the reasons of those conditions, one per state.
	PlacementFulfilledReason = "Fulfilled"
	PlacementPendingReason   = "Pending"
	PlacementCancelledReason = "Cancelled"
	PlacementTimedOutReason  = "TimedOut"
	PlacementFailedReason    = "Failed"
)

// PlacementLabel names, on the game session and the player sessions a placement created, the placement.
const PlacementLabel = "game.playersessions.dev/placement"

// GameSessionPlacementSpec is a request to place a new game session through a queue, as GameLift's
// StartGameSessionPlacement takes it. Immutable, but for stopped.
// +kubebuilder:validation:XValidation:rule="self.placementId == oldSelf.placementId && self.gameSessionQueueName == oldSelf.gameSessionQueueName && self.maximumPlayerSessionCount == oldSelf.maximumPlayerSessionCount && has(self.gameProperties) == has(oldSelf.gameProperties) && (!has(self.gameProperties) || self.gameProperties == oldSelf.gameProperties) && has(self.gameSessionName) == has(oldSelf.gameSessionName) && (!has(self.gameSessionName) || self.gameSessionName == oldSelf.gameSessionName) && has(self.gameSessionData) == has(oldSelf.gameSessionData) && (!has(self.gameSessionData) || self.gameSessionData == oldSelf.gameSessionData) && has(self.playerLatencies) == has(oldSelf.playerLatencies) && (!has(self.playerLatencies) || self.playerLatencies == oldSelf.playerLatencies) && has(self.desiredPlayerSessions) == has(oldSelf.desiredPlayerSessions) && (!has(self.desiredPlayerSessions) || self.desiredPlayerSessions == oldSelf.desiredPlayerSessions)",message="a placement is immutable but for spec.stopped"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.stopped) || !oldSelf.stopped || (has(self.stopped) && self.stopped)",message="a stopped placement stays stopped"
// +kubebuilder:validation:XValidation:rule="!has(self.desiredPlayerSessions) || size(self.desiredPlayerSessions) <= self.maximumPlayerSessionCount",message="more desired player sessions than seats"
type GameSessionPlacementSpec struct {
	// placementId is GameLift's id of the placement, unique in the namespace (the object's name derives
	// from it).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=48
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9-]+$`
	PlacementID string `json:"placementId"`

	// gameSessionQueueName is the queue's name (its spec.name).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9-]+$`
	GameSessionQueueName string `json:"gameSessionQueueName"`

	// maximumPlayerSessionCount is the new game session's maximum.
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=200
	MaximumPlayerSessionCount int32 `json:"maximumPlayerSessionCount"`

	// gameProperties, gameSessionName and gameSessionData are the new game session's.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	GameProperties []GameProperty `json:"gameProperties,omitempty"`
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	GameSessionName string `json:"gameSessionName,omitempty"`
	// +optional
	// +kubebuilder:validation:MaxLength=262144
	GameSessionData string `json:"gameSessionData,omitempty"`

	// playerLatencies are kept as given (placement here has one location: docs/gamelift.md).
	// +optional
	// +kubebuilder:validation:MaxItems=100
	// +listType=atomic
	PlayerLatencies []PlayerLatency `json:"playerLatencies,omitempty"`

	// desiredPlayerSessions are reserved in the new game session, all of them or none (one group).
	// +optional
	// +kubebuilder:validation:MaxItems=25
	// +listType=atomic
	DesiredPlayerSessions []DesiredPlayerSession `json:"desiredPlayerSessions,omitempty"`

	// stopped is StopGameSessionPlacement: a PENDING placement becomes CANCELLED.
	// +optional
	Stopped bool `json:"stopped,omitempty"`
}

// PlayerLatency is a player's latency to a location.
type PlayerLatency struct {
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	PlayerID string `json:"playerId"`
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	RegionIdentifier string `json:"regionIdentifier"`
	// latencyInMilliseconds, as a decimal string (GameLift's is a float).
	// +required
	// +kubebuilder:validation:MaxLength=32
	LatencyInMilliseconds string `json:"latencyInMilliseconds"`
}

// DesiredPlayerSession is a player to reserve a seat for.
type DesiredPlayerSession struct {
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	PlayerID string `json:"playerId"`
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	PlayerData string `json:"playerData,omitempty"`
}

// PlacedPlayerSession is a player session a placement reserved.
type PlacedPlayerSession struct {
	// +required
	PlayerID string `json:"playerId"`
	// +required
	PlayerSessionID string `json:"playerSessionId"`
}

// GameSessionPlacementStatus is the observed state of a placement. The operator writes it.
type GameSessionPlacementStatus struct {
	// status is GameLift's state of the placement.
	// +optional
	Status GameSessionPlacementState `json:"status,omitempty"`

	// startTime is when the placement was requested (its creation), endTime when it ended.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// +optional
	EndTime *metav1.Time `json:"endTime,omitempty"`

	// attempts are the destinations tried, in order, each with the game session made there; the last is
	// the current one. A destination whose game session could not start (no idle process after all) is left
	// for the next.
	// +optional
	// +kubebuilder:validation:MaxItems=100
	// +listType=atomic
	Attempts []PlacementAttempt `json:"attempts,omitempty"`

	// gameSessionName is the GameSession object of the fulfilled placement; gameSessionId its GameLift id
	// (an ARN); the endpoint is where players connect.
	// +optional
	GameSessionName string `json:"gameSessionName,omitempty"`
	// +optional
	GameSessionID string `json:"gameSessionId,omitempty"`
	// +optional
	Endpoint `json:",inline"`

	// placedPlayerSessions are the player sessions reserved for the desired players.
	// +optional
	// +listType=atomic
	PlacedPlayerSessions []PlacedPlayerSession `json:"placedPlayerSessions,omitempty"`

	// message says why the placement is still PENDING or why it ended.
	// +optional
	Message string `json:"message,omitempty"`

	// observedGeneration is the generation last acted on (0: not yet observed).
	// +optional
	// +kubebuilder:default=0
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready, Stalled.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// PlacementAttempt is a destination a placement tried.
type PlacementAttempt struct {
	// fleetId is the destination's fleet.
	// +required
	FleetID string `json:"fleetId"`
	// gameSessionName is the GameSession object made there.
	// +required
	GameSessionName string `json:"gameSessionName"`
}

// GameSessionPlacement is a GameLift game session placement: a new game session put on the first
// destination of its queue that can take it, with the desired players' seats reserved in it, all or none.
// StartGameSessionPlacement creates one; StopGameSessionPlacement sets spec.stopped. It survives restarts
// (its progress is in its status and its game session's name derives from it) and reports kstatus
// conditions for GitOps tools.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=gsp,categories=gamesessions
// +kubebuilder:printcolumn:name="Placement",type=string,JSONPath=".spec.placementId"
// +kubebuilder:printcolumn:name="Queue",type=string,JSONPath=".spec.gameSessionQueueName"
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=".status.status"
// +kubebuilder:printcolumn:name="GameSession",type=string,JSONPath=".status.gameSessionName"
// +kubebuilder:printcolumn:name="Address",type=string,JSONPath=".status.ipAddress",priority=1
// +kubebuilder:printcolumn:name="Port",type=integer,JSONPath=".status.port",priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type GameSessionPlacement struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the placement request.
	// +required
	Spec GameSessionPlacementSpec `json:"spec"`

	// status is the placement's progress. It defaults to {} (observedGeneration 0), so that a new placement
	// reads as not yet observed (kstatus: InProgress) until the operator has seen it.
	// +optional
	// +kubebuilder:default={}
	Status GameSessionPlacementStatus `json:"status,omitempty"`
}

// GameSessionPlacementList is a list of GameSessionPlacements.
//
// +kubebuilder:object:root=true
type GameSessionPlacementList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []GameSessionPlacement `json:"items"`
}

func init() {
	SchemeBuilder.Register(&GameSessionPlacement{}, &GameSessionPlacementList{})
}
