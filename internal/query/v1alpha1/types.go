// Package v1alpha1 is the read-only query API (group query.playersessions.dev): player sessions and game
// sessions served by the manager from in-memory indexes, with indexed field selectors, paging and watch.
//
// +kubebuilder:object:generate=true
// +groupName=query.playersessions.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
)

// GroupName is the group of the query API.
const GroupName = "query.playersessions.dev"

// SchemeGroupVersion is the group and version of the query API.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1alpha1"}

// PlayerSession is a read-only view of a game.playersessions.dev PlayerSession, answered from the manager's
// indexes.
//
// +kubebuilder:object:root=true
type PlayerSession struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the player session's object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// spec is the player session's spec.
	// +optional
	Spec gamev1.PlayerSessionSpec `json:"spec,omitempty"`
	// status is the player session's status.
	// +optional
	Status gamev1.PlayerSessionStatus `json:"status,omitempty"`
}

// PlayerSessionList is a page of player sessions.
//
// +kubebuilder:object:root=true
type PlayerSessionList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata holds the snapshot's resourceVersion and the continue token.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the player sessions of this page.
	Items []PlayerSession `json:"items"`
}

// GameSession is a read-only view of a game.playersessions.dev GameSession, answered from the manager's
// search index (the one SearchGameSessions reads).
//
// +kubebuilder:object:root=true
type GameSession struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the game session's object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// spec is the game session's spec.
	// +optional
	Spec gamev1.GameSessionSpec `json:"spec,omitempty"`
	// status is the game session's status.
	// +optional
	Status gamev1.GameSessionStatus `json:"status,omitempty"`
}

// GameSessionList is a page of game sessions.
//
// +kubebuilder:object:root=true
type GameSessionList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata holds the index's resourceVersion and the continue token.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the game sessions of this page.
	Items []GameSession `json:"items"`
}

// AddToScheme registers the query API's types.
func AddToScheme(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(SchemeGroupVersion, &PlayerSession{}, &PlayerSessionList{}, &GameSession{}, &GameSessionList{})
	metav1.AddToGroupVersion(scheme, SchemeGroupVersion)
	return nil
}
