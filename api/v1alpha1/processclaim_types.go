package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ProcessClaimSpec names a game server process of a compute and the game session placed on it.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="a process claim is immutable"
type ProcessClaimSpec struct {
	// compute is the name of the process's Compute object, in the claim's namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Compute string `json:"compute"`

	// processId is the SDK's process id (pID) of the process on that compute.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	ProcessID string `json:"processId"`

	// gameSessionName and gameSessionUID are the game session placed on the process.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	GameSessionName string `json:"gameSessionName"`
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	GameSessionUID string `json:"gameSessionUID"`
}

// ProcessClaim records that a game server process of a compute hosts a game session. The operator places a
// game session on an idle process by creating the process's claim, named after the compute and the process
// (computes.ClaimName): a second claim on the same process cannot be created (AlreadyExists), so a process
// never takes two game sessions, and no placement rewrites the compute's list of processes. A claim is
// immutable; it goes with its Compute (its owner) and, once the process's entry has left the Compute (a
// compute full of processes drops its oldest TERMINATED ones), the operator deletes it.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=pclaim,categories=gamesessions
// +kubebuilder:printcolumn:name="Compute",type=string,JSONPath=".spec.compute"
// +kubebuilder:printcolumn:name="Process",type=string,JSONPath=".spec.processId"
// +kubebuilder:printcolumn:name="GameSession",type=string,JSONPath=".spec.gameSessionName"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type ProcessClaim struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the claim.
	// +required
	Spec ProcessClaimSpec `json:"spec"`
}

// ProcessClaimList is a list of ProcessClaims.
//
// +kubebuilder:object:root=true
type ProcessClaimList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ProcessClaim `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ProcessClaim{}, &ProcessClaimList{})
}
