package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultQueueTimeoutSeconds is how long a placement waits in a queue without a timeout of its own, as
// GameLift's default.
const DefaultQueueTimeoutSeconds = 600

// GameSessionQueueSpec is a queue of game session placements, as GameLift's CreateGameSessionQueue takes it.
type GameSessionQueueSpec struct {
	// name is GameLift's name of the queue, which placements name (GameSessionQueueName): one queue per name
	// in a namespace. The GameLift endpoint names the object after it.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9-]+$`
	Name string `json:"name"`

	// timeoutInSeconds is how long a placement may stay PENDING before it is TIMED_OUT.
	// +optional
	// +kubebuilder:default=600
	// +kubebuilder:validation:Minimum=0
	TimeoutInSeconds *int32 `json:"timeoutInSeconds,omitempty"`

	// destinations are the fleets a placement tries, first to last: the first that can take a game session
	// now gets it (a fleet of GameLift Server SDK computes: one with an idle process; an Agones Fleet: one
	// with a Ready GameServer; any other fleet: always, its game servers activating what they are given).
	// +optional
	// +kubebuilder:validation:MaxItems=100
	// +listType=atomic
	Destinations []QueueDestination `json:"destinations,omitempty"`

	// playerLatencyPolicies, filterConfiguration, priorityConfiguration, customEventData and
	// notificationTarget are kept as given and returned by DescribeGameSessionQueues; placement does not use
	// them (docs/gamelift.md says why: one location, no SNS).
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	PlayerLatencyPolicies []PlayerLatencyPolicy `json:"playerLatencyPolicies,omitempty"`
	// +optional
	FilterConfiguration *QueueFilterConfiguration `json:"filterConfiguration,omitempty"`
	// +optional
	PriorityConfiguration *QueuePriorityConfiguration `json:"priorityConfiguration,omitempty"`
	// +optional
	// +kubebuilder:validation:MaxLength=256
	CustomEventData string `json:"customEventData,omitempty"`
	// +optional
	// +kubebuilder:validation:MaxLength=300
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9:_-]*(\.fifo)?$`
	NotificationTarget string `json:"notificationTarget,omitempty"`
}

// QueueDestination is a fleet of a queue.
type QueueDestination struct {
	// destinationArn is the fleet's ARN, or its id.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9:/-]+$`
	DestinationArn string `json:"destinationArn"`
}

// PlayerLatencyPolicy is a queue's limit on players' latency for a while.
type PlayerLatencyPolicy struct {
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaximumIndividualPlayerLatencyMilliseconds int32 `json:"maximumIndividualPlayerLatencyMilliseconds,omitempty"`
	// +optional
	// +kubebuilder:validation:Minimum=0
	PolicyDurationSeconds int32 `json:"policyDurationSeconds,omitempty"`
}

// QueueFilterConfiguration is the locations a queue may place in.
type QueueFilterConfiguration struct {
	// +optional
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:items:MaxLength=64
	// +listType=atomic
	AllowedLocations []string `json:"allowedLocations,omitempty"`
}

// QueuePriorityConfiguration is how a queue orders its destinations.
type QueuePriorityConfiguration struct {
	// +optional
	// +kubebuilder:validation:MaxItems=4
	// +kubebuilder:validation:items:Enum=LATENCY;COST;DESTINATION;LOCATION
	// +listType=atomic
	PriorityOrder []string `json:"priorityOrder,omitempty"`
	// +optional
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:items:MaxLength=64
	// +listType=atomic
	LocationOrder []string `json:"locationOrder,omitempty"`
}

// GameSessionQueue is a GameLift game session queue: the fleets, in priority order, where its placements
// (GameSessionPlacement) put new game sessions. The GameLift endpoint's CreateGameSessionQueue creates one;
// kubectl and GitOps may as well. It has no status: a placement reads it when it runs.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=gsq,categories=gamesessions
// +kubebuilder:printcolumn:name="Queue",type=string,JSONPath=".spec.name"
// +kubebuilder:printcolumn:name="Timeout",type=integer,JSONPath=".spec.timeoutInSeconds"
// +kubebuilder:printcolumn:name="Destinations",type=string,JSONPath=".spec.destinations[*].destinationArn"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type GameSessionQueue struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the queue.
	// +required
	Spec GameSessionQueueSpec `json:"spec"`
}

// GameSessionQueueList is a list of GameSessionQueues.
//
// +kubebuilder:object:root=true
type GameSessionQueueList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []GameSessionQueue `json:"items"`
}

func init() {
	SchemeBuilder.Register(&GameSessionQueue{}, &GameSessionQueueList{})
}
