package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PlayerSessionStatusValue is the lifecycle state of a player session, as GameLift names it.
// +kubebuilder:validation:Enum=RESERVED;ACTIVE;COMPLETED;TIMEDOUT
type PlayerSessionStatusValue string

const (
	// PlayerSessionReserved: a seat is held; the game server has not yet accepted the player.
	PlayerSessionReserved PlayerSessionStatusValue = "RESERVED"
	// PlayerSessionActive: the game server accepted the player.
	PlayerSessionActive PlayerSessionStatusValue = "ACTIVE"
	// PlayerSessionCompleted: the player left, or the game session ended. Terminal.
	PlayerSessionCompleted PlayerSessionStatusValue = "COMPLETED"
	// PlayerSessionTimedOut: the reservation was not accepted in time. Terminal.
	PlayerSessionTimedOut PlayerSessionStatusValue = "TIMEDOUT"
)

// IsTerminal reports whether s is COMPLETED or TIMEDOUT.
func (s PlayerSessionStatusValue) IsTerminal() bool {
	return s == PlayerSessionCompleted || s == PlayerSessionTimedOut
}

// HoldsSeat reports whether s counts against its game session's capacity (RESERVED or ACTIVE).
func (s PlayerSessionStatusValue) HoldsSeat() bool {
	return s == PlayerSessionReserved || s == PlayerSessionActive
}

// PlayerSession condition types and reasons.
const (
	// PlayerSessionReadyCondition is True once admission has decided and granted a seat, whatever the
	// player session's status since (RESERVED, ACTIVE, COMPLETED, TIMEDOUT are all normal); False when it
	// was refused. A player session waiting for a seat has no status at all, so no condition (kstatus:
	// InProgress, from observedGeneration 0): it is not written until it is decided.
	PlayerSessionReadyCondition = "Ready"
	// PlayerSessionStalledCondition is True when the player session was refused for good, with the
	// refusal's reason (kstatus: Failed). Absent otherwise.
	PlayerSessionStalledCondition = "Stalled"

	// AdmittedCondition is True once a seat was granted; False when the player session was refused
	// (final: it never holds a seat); absent while admission waits (a waiting player session is not
	// written until it is decided).
	AdmittedCondition = "Admitted"

	// AdmissionPendingReason: admission has not decided yet (the reason of Ready False computed for a
	// waiting player session, which is not written until it is decided).
	AdmissionPendingReason = "Pending"
	// SeatReservedReason: a seat was granted and the player session is RESERVED.
	SeatReservedReason = "SeatReserved"
	// GameSessionFullReason: every seat of the game session was taken.
	GameSessionFullReason = "GameSessionFull"
	// InvalidGameSessionStatusReason: the game session is not ACTIVE.
	InvalidGameSessionStatusReason = "InvalidGameSessionStatus"
	// GameSessionNotFoundReason: no GameSession of that name exists in the namespace.
	GameSessionNotFoundReason = "GameSessionNotFound"
	// PlayerSessionCreationDeniedReason: the game session's playerSessionCreationPolicy is DENY_ALL.
	PlayerSessionCreationDeniedReason = "PlayerSessionCreationDenied"
	// InvalidGroupReason: the player session's group can never be admitted: its members disagree on its
	// size, there are more of them than it declares, or not all were created within the admission window.
	InvalidGroupReason = "InvalidGroup"
)

// GroupLabel carries spec.group.name on every member of a group (set by the GameLift endpoint), so that
// `kubectl get psess -l game.playersessions.dev/group=NAME` lists a group.
const GroupLabel = "game.playersessions.dev/group"

// PlayerSessionSpec is what a game backend asks for: a seat for a player in a game session.
// It is immutable once created.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable"
type PlayerSessionSpec struct {
	// gameSessionName is the name of the GameSession, in the same namespace, to join.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	GameSessionName string `json:"gameSessionName"`

	// playerId identifies the player, as the game backend knows it.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	PlayerID string `json:"playerId"`

	// playerData is free-form data about the player, passed to the game server.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	PlayerData string `json:"playerData,omitempty"`

	// group makes this player session one of a group that is admitted all or nothing, as GameLift's
	// CreatePlayerSessions is: once every member exists, they all get a seat or are all refused, and no
	// seat is ever held by part of a group. Create the members with the same group and size (the GameLift
	// endpoint does this for CreatePlayerSessions).
	// +optional
	Group *PlayerSessionGroup `json:"group,omitempty"`
}

// PlayerSessionGroup names a group of player sessions admitted all or nothing.
type PlayerSessionGroup struct {
	// name identifies the group among the player sessions of its game session.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// size is the number of player sessions in the group (GameLift's CreatePlayerSessions takes 1 to 25).
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=25
	Size int32 `json:"size"`
}

// PlayerSessionStatus is the observed state of a player session. The operator writes it, except that a game
// server moves status from RESERVED to ACTIVE when the player connects and to COMPLETED when the player leaves.
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.status) || has(self.status)",message="status cannot be removed once set"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.playerSessionId) || (has(self.playerSessionId) && self.playerSessionId == oldSelf.playerSessionId)",message="playerSessionId is immutable once set"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.gameSessionId) || (has(self.gameSessionId) && self.gameSessionId == oldSelf.gameSessionId)",message="gameSessionId is immutable once set"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.terminationTime) || (has(self.terminationTime) && self.terminationTime == oldSelf.terminationTime)",message="terminationTime is immutable once set"
type PlayerSessionStatus struct {
	// playerSessionId is the GameLift-style identifier (psess-...), unique cluster-wide.
	// +optional
	// +kubebuilder:validation:MinLength=7
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^psess-\S+$`
	PlayerSessionID string `json:"playerSessionId,omitempty"`

	// status is the lifecycle state. Allowed transitions: RESERVED to ACTIVE, TIMEDOUT or COMPLETED;
	// ACTIVE to COMPLETED. COMPLETED and TIMEDOUT are terminal.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf || (oldSelf == 'RESERVED' && self in ['ACTIVE', 'TIMEDOUT', 'COMPLETED']) || (oldSelf == 'ACTIVE' && self == 'COMPLETED')",message="illegal player session status transition: allowed are RESERVED to ACTIVE, TIMEDOUT or COMPLETED, and ACTIVE to COMPLETED; COMPLETED and TIMEDOUT are terminal"
	Status PlayerSessionStatusValue `json:"status,omitempty"`

	// gameSessionId is the GameLift-style id of the game session; it outlives the GameSession object.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	GameSessionID string `json:"gameSessionId,omitempty"`

	// fleetId is the game session's fleet.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	FleetID string `json:"fleetId,omitempty"`

	// fleetArn is the ARN of the game session's fleet.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	FleetArn string `json:"fleetArn,omitempty"`

	// creationTime is when the seat was reserved; the acceptance timeout counts from it.
	// +optional
	CreationTime *metav1.MicroTime `json:"creationTime,omitempty"`

	// terminationTime is when the player session became COMPLETED or TIMEDOUT.
	// +optional
	TerminationTime *metav1.MicroTime `json:"terminationTime,omitempty"`

	// gameSessionTerminationTime is when the game session ended. Retention counts from it, so the player
	// session can outlive the GameSession object.
	// +optional
	GameSessionTerminationTime *metav1.MicroTime `json:"gameSessionTerminationTime,omitempty"`

	// The game server's endpoint (ipAddress, dnsName, port), copied from the game session.
	Endpoint `json:",inline"`

	// gameServer is the identity that claimed the game session (its status.gameServer), copied by the
	// operator while the player session holds a seat: only that identity may accept or remove the player.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	GameServer string `json:"gameServer,omitempty"`

	// conditions describe admission (Admitted) and readiness (Ready, Stalled).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the spec generation the status was last computed from (0: not yet observed).
	// +optional
	// +kubebuilder:default=0
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// PlayerSession is a player's seat in a game session: RESERVED until the game server accepts the player
// (ACTIVE), then COMPLETED when the player leaves; TIMEDOUT if never accepted in time.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:metadata:annotations="argocd.argoproj.io/sync-options=Prune=false,Delete=false"
// +kubebuilder:metadata:annotations="kustomize.toolkit.fluxcd.io/prune=disabled"
// +kubebuilder:metadata:annotations="helm.sh/resource-policy=keep"
// +kubebuilder:validation:XValidation:rule="(has(oldSelf.status) && has(oldSelf.status.status)) || !has(self.status) || !has(self.status.status) || self.status.status == 'RESERVED'",message="a player session starts as RESERVED"
// +kubebuilder:resource:shortName=psess,categories=gamesessions
// +kubebuilder:selectablefield:JSONPath=".spec.playerId"
// +kubebuilder:selectablefield:JSONPath=".spec.gameSessionName"
// +kubebuilder:selectablefield:JSONPath=".status.status"
// +kubebuilder:selectablefield:JSONPath=".status.playerSessionId"
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=".status.status"
// +kubebuilder:printcolumn:name="Player",type=string,JSONPath=".spec.playerId"
// +kubebuilder:printcolumn:name="GameSession",type=string,JSONPath=".spec.gameSessionName"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
// +kubebuilder:printcolumn:name="Endpoint",type=string,JSONPath=".status.ipAddress",priority=1
// +kubebuilder:printcolumn:name="Port",type=integer,JSONPath=".status.port",priority=1
// +kubebuilder:printcolumn:name="PlayerSessionId",type=string,JSONPath=".status.playerSessionId",priority=1
// +kubebuilder:printcolumn:name="Admission",type=string,JSONPath=`.status.conditions[?(@.type=="Admitted")].reason`,priority=1
type PlayerSession struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the requested seat; immutable.
	// +required
	Spec PlayerSessionSpec `json:"spec"`

	// status is the observed state of the player session. It defaults to {} (observedGeneration 0), so that
	// a new object reads as not yet observed (kstatus: InProgress) until the operator has seen it.
	// +optional
	// +kubebuilder:default={}
	Status PlayerSessionStatus `json:"status,omitempty"`
}

// PlayerSessionList is a list of PlayerSessions.
//
// +kubebuilder:object:root=true
type PlayerSessionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PlayerSession `json:"items"`
}

func init() {
	SchemeBuilder.Register(&PlayerSession{}, &PlayerSessionList{})
}
