package v1alpha1

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// PlayerSessionCreationPolicy says whether a game session accepts new player sessions.
// +kubebuilder:validation:Enum=ACCEPT_ALL;DENY_ALL
type PlayerSessionCreationPolicy string

const (
	// PlayerSessionCreationPolicyAcceptAll accepts new player sessions while seats are free.
	PlayerSessionCreationPolicyAcceptAll PlayerSessionCreationPolicy = "ACCEPT_ALL"
	// PlayerSessionCreationPolicyDenyAll refuses every new player session.
	PlayerSessionCreationPolicyDenyAll PlayerSessionCreationPolicy = "DENY_ALL"
)

// GameSessionStatusValue is the lifecycle state of a game session, as GameLift names it.
// +kubebuilder:validation:Enum=ACTIVATING;ACTIVE;TERMINATING;TERMINATED;ERROR
type GameSessionStatusValue string

const (
	// GameSessionActivating: created, waiting for its game server (an endpoint) before accepting players.
	GameSessionActivating GameSessionStatusValue = "ACTIVATING"
	// GameSessionActive: accepting player sessions.
	GameSessionActive GameSessionStatusValue = "ACTIVE"
	// GameSessionTerminating: shutting down; no new player sessions.
	GameSessionTerminating GameSessionStatusValue = "TERMINATING"
	// GameSessionTerminated: ended; its player sessions are completed. Terminal.
	GameSessionTerminated GameSessionStatusValue = "TERMINATED"
	// GameSessionError: the game server failed; no new player sessions.
	GameSessionError GameSessionStatusValue = "ERROR"
)

// GameSession condition types and reasons.
const (
	// GameSessionReadyCondition is True once the game session has reached a steady state: ACTIVE (accepting
	// player sessions) or TERMINATED (a normal end, not a failure). False while it gets there (ACTIVATING,
	// TERMINATING) and in ERROR. GitOps tools read it through kstatus: True is Current, False InProgress.
	GameSessionReadyCondition = "Ready"
	// GameSessionStalledCondition is True while the game session is in ERROR: it will not become ACTIVE by
	// itself (kstatus: Failed). Absent otherwise.
	GameSessionStalledCondition = "Stalled"

	// GameSessionActiveReason: the game session is ACTIVE.
	GameSessionActiveReason = "Active"
	// WaitingForEndpointReason: ACTIVATING until spec or a game server provides an endpoint.
	WaitingForEndpointReason = "WaitingForEndpoint"
	// GameSessionEndedReason: the game session is TERMINATED.
	GameSessionEndedReason = "GameSessionEnded"
	// GameSessionNotActiveReason: TERMINATING or ERROR.
	GameSessionNotActiveReason = "GameSessionNotActive"
	// GameSessionErrorReason: Stalled in ERROR, for a game server that reported the error itself (an Agones
	// game session's Stalled condition carries its GameServerBound reason instead).
	GameSessionErrorReason = "GameSessionError"

	// GameServerBoundCondition says whether an Agones game session is bound to its GameServer: True once
	// bound, False while waiting for one or after it went away.
	GameServerBoundCondition = "GameServerBound"

	// GameSessionInterrupted is the status reason of a game session that ended because its game server
	// process was lost (GameLift's INTERRUPTED).
	GameSessionInterrupted = "INTERRUPTED"

	// GameSessionPlacedCondition says whether a game session of a fleet with registered computes is placed
	// on a GameLift Server SDK process: True once a process is claimed for it, False while none is idle.
	GameSessionPlacedCondition = "Placed"
	// ProcessClaimedReason: an idle process was claimed for the game session.
	ProcessClaimedReason = "ProcessClaimed"
	// NoIdleProcessReason: no ACTIVE process of the fleet is free; the game session waits for one.
	NoIdleProcessReason = "NoIdleProcess"
	// ActivationTimedOutReason: the process did not call ActivateGameSession in time (ERROR).
	ActivationTimedOutReason = "ActivationTimedOut"

	// GameServerAllocatedReason: bound to an Allocated GameServer.
	GameServerAllocatedReason = "Allocated"
	// WaitingForGameServerReason: the named GameServer does not exist yet, or is not Allocated yet.
	WaitingForGameServerReason = "WaitingForGameServer"
	// AllocatingReason: allocating from the fleet; no GameServer was available so far.
	AllocatingReason = "Allocating"
	// AllocationTimedOutReason: no GameServer could be allocated within the allocation timeout (ERROR).
	AllocationTimedOutReason = "AllocationTimedOut"
	// GameServerGoneReason: the bound GameServer was deleted or replaced by another of the same name.
	GameServerGoneReason = "GameServerGone"
	// GameServerShutdownReason: the bound GameServer shut down.
	GameServerShutdownReason = "GameServerShutdown"
	// GameServerReleasedReason: the bound GameServer went back to Ready or was allocated again (for another game).
	GameServerReleasedReason = "GameServerReleased"
	// GameServerUnhealthyReason: the bound GameServer is Unhealthy or in Error (ERROR).
	GameServerUnhealthyReason = "GameServerUnhealthy"

	// RetentionEndedCondition (on both kinds) is True when the retention period of an object that an applier
	// declares (Argo CD, Flux) has ended: the operator keeps it, because deleting it would make the applier
	// recreate it as a new session; remove it from Git to delete it.
	RetentionEndedCondition = "RetentionEnded"
	// DeclaredByApplierReason: RetentionEnded, kept because an applier declares the object.
	DeclaredByApplierReason = "DeclaredByApplier"

	// GameSessionFinalizer ends a deleted game session's player sessions before the object goes.
	GameSessionFinalizer = "game.playersessions.dev/end-player-sessions"
)

// GameProperty is a key/value pair passed to the game server.
type GameProperty struct {
	// key of the property.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	Key string `json:"key"`

	// value of the property.
	// +required
	// +kubebuilder:validation:MaxLength=96
	Value string `json:"value"`
}

// AgonesPlayersListValues says what the values of a GameServer's players List are.
// +kubebuilder:validation:Enum=PlayerSessionId;PlayerId
type AgonesPlayersListValues string

const (
	// AgonesListValuesPlayerSessionID: the game server appends the player session id (psess-...).
	AgonesListValuesPlayerSessionID AgonesPlayersListValues = "PlayerSessionId"
	// AgonesListValuesPlayerID: the game server appends the player id.
	AgonesListValuesPlayerID AgonesPlayersListValues = "PlayerId"
)

// AgonesSelector narrows the GameServers of a fleet an allocation may pick, as a GameServerAllocation
// selector does. The fleet's own label is always added.
type AgonesSelector struct {
	// matchLabels the GameServer must carry.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	MatchLabels map[string]string `json:"matchLabels,omitempty"`

	// matchExpressions the GameServer's labels must satisfy.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	MatchExpressions []metav1.LabelSelectorRequirement `json:"matchExpressions,omitempty"`
}

// AgonesGameServer binds a game session to an Agones GameServer: an existing one by name, or one the operator
// allocates from a Fleet. The GameServer then provides the endpoint and the status, and its players List
// accepts and completes player sessions.
// +kubebuilder:validation:XValidation:rule="has(self.gameServerName) != has(self.fleetName)",message="set exactly one of gameServerName and fleetName"
// +kubebuilder:validation:XValidation:rule="!has(self.selectors) || has(self.fleetName)",message="selectors need fleetName"
type AgonesGameServer struct {
	// gameServerName binds to this existing GameServer in the game session's namespace, allocated by your own
	// allocator or matchmaker. The game session is ACTIVATING until the GameServer is Allocated.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	GameServerName string `json:"gameServerName,omitempty"`

	// fleetName allocates a GameServer from this Agones Fleet in the game session's namespace, with a
	// GameServerAllocation.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	FleetName string `json:"fleetName,omitempty"`

	// selectors narrow the fleet's GameServers, tried in order (GameServerAllocation spec.selectors).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	Selectors []AgonesSelector `json:"selectors,omitempty"`

	// playersList is the name of the GameServer's List (status.lists) that holds the connected players.
	// An allocation sets its capacity to maximumPlayerSessionCount.
	// +optional
	// +kubebuilder:default=players
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9]([-_.a-zA-Z0-9]*[a-zA-Z0-9])?$`
	PlayersList string `json:"playersList,omitempty"`

	// playersListValues says what the game server appends to the List: PlayerSessionId (default) or PlayerId.
	// +optional
	// +kubebuilder:default=PlayerSessionId
	PlayersListValues AgonesPlayersListValues `json:"playersListValues,omitempty"`

	// portName picks the GameServer port (status.ports[].name) players connect to; the first port when empty.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	PortName string `json:"portName,omitempty"`
}

// GameSessionSpec is the desired state of a game session: what a game backend or a GitOps tree declares.
// +kubebuilder:validation:XValidation:rule="!has(self.port) || has(self.ipAddress) || has(self.dnsName)",message="port needs ipAddress or dnsName"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.fleetId) || self.fleetId == oldSelf.fleetId",message="fleetId is immutable"
// +kubebuilder:validation:XValidation:rule="has(self.agones) == has(oldSelf.agones) && (!has(self.agones) || self.agones == oldSelf.agones)",message="agones is immutable"
// +kubebuilder:validation:XValidation:rule="!has(self.agones) || !(has(self.ipAddress) || has(self.dnsName) || has(self.port))",message="agones and a spec endpoint (ipAddress, dnsName, port) are exclusive: the GameServer provides the endpoint"
type GameSessionSpec struct {
	// fleetId is the GameLift fleet the game session belongs to.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[a-z]*fleet-[a-zA-Z0-9\-]+$`
	FleetID string `json:"fleetId"`

	// maximumPlayerSessionCount is the number of seats: RESERVED plus ACTIVE player sessions never exceed it.
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=200
	MaximumPlayerSessionCount int32 `json:"maximumPlayerSessionCount"`

	// playerSessionCreationPolicy says whether new player sessions are accepted.
	// +optional
	// +kubebuilder:default=ACCEPT_ALL
	PlayerSessionCreationPolicy PlayerSessionCreationPolicy `json:"playerSessionCreationPolicy,omitempty"`

	// name is a descriptive label of the game session.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Name string `json:"name,omitempty"`

	// gameProperties are passed to the game server.
	// +optional
	// +listType=map
	// +listMapKey=key
	// +kubebuilder:validation:MaxItems=16
	GameProperties []GameProperty `json:"gameProperties,omitempty"`

	// gameSessionData is free-form data passed to the game server (CreateGameSession takes 4 KiB of it, as
	// GameLift's; a placement 256 KiB, as GameLift's StartGameSessionPlacement).
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=262144
	GameSessionData string `json:"gameSessionData,omitempty"`

	// The game server's endpoint, for game servers not managed by another controller (ipAddress, dnsName,
	// port).
	Endpoint `json:",inline"`

	// agones binds the game session to an Agones GameServer, which then provides its endpoint and status and
	// accepts and completes its player sessions through a List. Immutable.
	// +optional
	Agones *AgonesGameServer `json:"agones,omitempty"`
}

// SeatHolder is a player session holding one of a game session's seats.
type SeatHolder struct {
	// name of the PlayerSession object, in the game session's namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// uid of the PlayerSession object the seat was granted to: a player session deleted and created again
	// under the same name is another object, and does not inherit the seat. Empty in ledgers written before
	// it existed (matched by name).
	// +optional
	UID types.UID `json:"uid,omitempty"`
}

// AgonesStatus is what the operator knows of an Agones game session's GameServer.
type AgonesStatus struct {
	// gameServerName is the GameServer the game session is bound to.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	GameServerName string `json:"gameServerName,omitempty"`

	// gameServerUID is the bound GameServer's UID: another object of the same name is another game server.
	// +optional
	GameServerUID string `json:"gameServerUID,omitempty"`

	// lastAllocated is the GameServer's agones.dev/last-allocated annotation when the game session became
	// ACTIVE on it; a different value means the GameServer was allocated again, for another game.
	// +optional
	LastAllocated string `json:"lastAllocated,omitempty"`

	// allocationAttempts counts the GameServerAllocations that found no GameServer (backoff counts from it).
	// +optional
	// +kubebuilder:validation:Minimum=0
	AllocationAttempts int32 `json:"allocationAttempts,omitempty"`

	// lastAllocationTime is when the last GameServerAllocation was made.
	// +optional
	LastAllocationTime *metav1.MicroTime `json:"lastAllocationTime,omitempty"`

	// unknownPlayers are values of the players List that match none of the game session's player sessions
	// (at most 16 are listed).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=1024
	UnknownPlayers []string `json:"unknownPlayers,omitempty"`
}

// ServerProcessRef names a game server process of a compute.
type ServerProcessRef struct {
	// compute is the name of the Compute object.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Compute string `json:"compute"`
	// processId is the process's id (the SDK's pID).
	// +required
	// +kubebuilder:validation:MaxLength=128
	ProcessID string `json:"processId"`
	// endpoint is where players reach the process when it is not the compute's address and the process's
	// port: the address and port of the Agones GameServer it runs in (its node's, its host port). The
	// CreateGameSession push carries it, and the game's ActivateGameSession makes it the game session's.
	// +optional
	Endpoint *Endpoint `json:"endpoint,omitempty"`
}

// GameSessionStatus is the observed state of a game session. The operator writes it; a game server may
// set status to ACTIVE (with an endpoint) or TERMINATED.
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.gameSessionId) || (has(self.gameSessionId) && self.gameSessionId == oldSelf.gameSessionId)",message="gameSessionId is immutable once set"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.status) || has(self.status)",message="status cannot be removed once set"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.gameServer) || !has(self.gameServer) || self.gameServer == oldSelf.gameServer",message="gameServer is claimed once: clear it before another game server may claim the game session"
type GameSessionStatus struct {
	// gameSessionId is the GameLift-style identifier, arn:aws:gamelift:<region>::gamesession/<fleetId>/<id>,
	// unique cluster-wide and stable for the life of the object.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	GameSessionID string `json:"gameSessionId,omitempty"`

	// status is the lifecycle state: ACTIVATING, ACTIVE, TERMINATING, TERMINATED or ERROR.
	// +optional
	// +kubebuilder:validation:XValidation:rule="oldSelf != 'TERMINATED' || self == 'TERMINATED'",message="a TERMINATED game session cannot change status"
	Status GameSessionStatusValue `json:"status,omitempty"`

	// statusReason explains a TERMINATED or ERROR status (INTERRUPTED, TRIGGERED_ON_PROCESS_TERMINATE, FORCE_TERMINATED).
	// +optional
	// +kubebuilder:validation:Enum=INTERRUPTED;TRIGGERED_ON_PROCESS_TERMINATE;FORCE_TERMINATED
	StatusReason string `json:"statusReason,omitempty"`

	// currentPlayerSessionCount is the number of RESERVED and ACTIVE player sessions (seats taken).
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=200
	CurrentPlayerSessionCount int32 `json:"currentPlayerSessionCount"`

	// seats is the seat ledger: the player sessions holding a seat. The operator grants a seat by adding a
	// player session here, under optimistic concurrency, before the player session becomes RESERVED, and
	// frees it after the player session ends.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=200
	Seats []SeatHolder `json:"seats,omitempty"`

	// creationTime is when the game session was created.
	// +optional
	CreationTime *metav1.MicroTime `json:"creationTime,omitempty"`

	// terminationTime is when the game session ended.
	// +optional
	TerminationTime *metav1.MicroTime `json:"terminationTime,omitempty"`

	// The game server's endpoint (ipAddress, dnsName, port): copied from the spec, or set by the game
	// server, or by the Agones integration from the bound GameServer.
	Endpoint `json:",inline"`

	// gameServer is the identity of the game server that claimed this game session: the API server sets it
	// on the first status write of a game server (its user name, and the pod of a pod's service-account
	// token: "NAME" or "NAME pod=POD"), and from then on only that identity may write the game session's or
	// its player sessions' game-server fields (config/policy/game_server_claim.yaml). A game server calling
	// the GameLift endpoint's AcceptPlayerSession or RemovePlayerSession claims it as
	// "gamelift-access-key:KEYID". Empty until claimed; once set it changes only by being cleared (an admin
	// lets another game server claim the game session).
	// +optional
	// +kubebuilder:validation:MaxLength=512
	GameServer string `json:"gameServer,omitempty"`

	// process is the GameLift Server SDK process the game session is placed on, when its fleet has
	// registered computes (docs/gamelift-game-servers.md).
	// +optional
	Process *ServerProcessRef `json:"process,omitempty"`

	// agones is the state of the bound Agones GameServer (with spec.agones).
	// +optional
	Agones *AgonesStatus `json:"agones,omitempty"`

	// conditions describe the game session's state (Ready, Stalled, GameServerBound).
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

// GameSession is a game in progress on a game server, with a fixed number of player seats.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:metadata:annotations="argocd.argoproj.io/sync-options=Prune=false,Delete=false"
// +kubebuilder:metadata:annotations="kustomize.toolkit.fluxcd.io/prune=disabled"
// +kubebuilder:metadata:annotations="helm.sh/resource-policy=keep"
// +kubebuilder:validation:XValidation:rule="!has(self.status) || !has(self.status.seats) || size(self.status.seats) <= self.spec.maximumPlayerSessionCount || (has(oldSelf.status) && has(oldSelf.status.seats) && size(self.status.seats) <= size(oldSelf.status.seats))",message="status.seats may only grow up to spec.maximumPlayerSessionCount"
// +kubebuilder:resource:shortName=gsess,categories=gamesessions
// +kubebuilder:selectablefield:JSONPath=".spec.fleetId"
// +kubebuilder:selectablefield:JSONPath=".status.status"
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=".status.status"
// +kubebuilder:printcolumn:name="Fleet",type=string,JSONPath=".spec.fleetId"
// +kubebuilder:printcolumn:name="Players",type=integer,JSONPath=".status.currentPlayerSessionCount"
// +kubebuilder:printcolumn:name="Max",type=integer,JSONPath=".spec.maximumPlayerSessionCount"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
// +kubebuilder:printcolumn:name="Endpoint",type=string,JSONPath=".status.ipAddress",priority=1
// +kubebuilder:printcolumn:name="Port",type=integer,JSONPath=".status.port",priority=1
// +kubebuilder:printcolumn:name="GameSessionId",type=string,JSONPath=".status.gameSessionId",priority=1
// +kubebuilder:printcolumn:name="GameServer",type=string,JSONPath=".status.agones.gameServerName",priority=1
type GameSession struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state of the game session.
	// +required
	Spec GameSessionSpec `json:"spec"`

	// status is the observed state of the game session. It defaults to {} (observedGeneration 0), so that a
	// new object reads as not yet observed (kstatus: InProgress) until the operator has seen it.
	// +optional
	// +kubebuilder:default={}
	Status GameSessionStatus `json:"status,omitempty"`
}

// GameSessionList is a list of GameSessions.
//
// +kubebuilder:object:root=true
type GameSessionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []GameSession `json:"items"`
}

func init() {
	SchemeBuilder.Register(&GameSession{}, &GameSessionList{})
}

// Endpoint is where players connect: a game session's (in its spec and status) and, copied from it, a
// player session's. The JSON is three flat fields of the object that holds it.
type Endpoint struct {
	// ipAddress is the game server's address.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[0-9A-Fa-f:.]+$`
	IPAddress string `json:"ipAddress,omitempty"`

	// dnsName is the game server's DNS name.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?$`
	DNSName string `json:"dnsName,omitempty"`

	// port is the game server's port.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=60000
	Port int32 `json:"port,omitempty"`
}

// String is host:port, the host being the IP address, else the DNS name.
func (e Endpoint) String() string {
	host := e.IPAddress
	if host == "" {
		host = e.DNSName
	}
	return fmt.Sprintf("%s:%d", host, e.Port)
}
