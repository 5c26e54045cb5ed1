// Package v1alpha1 contains the API of the game.playersessions.dev group: GameSession and
// PlayerSession, the Amazon GameLift player-session model as Kubernetes resources.
//
// +kubebuilder:object:generate=true
// +groupName=game.playersessions.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of this API.
	GroupVersion = schema.GroupVersion{Group: "game.playersessions.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this API with a scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this API to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
