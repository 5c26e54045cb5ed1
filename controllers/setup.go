package controllers

import (
	"context"

	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/playersessions/operator/internal/agones"
)

// The GameLift endpoint (internal/gamelift) shares the manager's identity: it reads access-key Secrets and
// creates player sessions. Its markers live here, where controller-gen reads them. The Secrets rule is
// cluster-wide because keys live in the tenants' namespaces; the cache reads only labelled access-key
// Secrets (config/rbac/kustomization.yaml says why).
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// The continue-token key that replicas share is a Secret the first replica creates in its own namespace.
// +kubebuilder:rbac:groups="",namespace=playersessions-system,resources=secrets,verbs=get;create
// +kubebuilder:rbac:groups=game.playersessions.dev,resources=playersessions,verbs=create
// +kubebuilder:rbac:groups=game.playersessions.dev,resources=gamesessions,verbs=create

// FieldManager is the field manager of every write the controllers make, so that an applier (Argo CD,
// Flux) sees which fields are the operator's.
const FieldManager = "playersessions-manager"

// Setup registers the field indexes, the metrics and both reconcilers with mgr. With an Agones client (nil:
// no Agones integration), the reconcilers bind game sessions to Agones GameServers once it is installed.
func Setup(ctx context.Context, mgr ctrl.Manager, clk clock.PassiveClock, opts Options, ag *agones.Client) error {
	c := client.WithFieldOwner(mgr.GetClient(), FieldManager)
	if err := SetupIndexes(ctx, mgr.GetFieldIndexer()); err != nil {
		return err
	}
	RegisterMetrics(mgr.GetCache())
	if err := (&GameSessionReconciler{
		Client: c, APIReader: mgr.GetAPIReader(), Clock: clk,
		Recorder: mgr.GetEventRecorder("gamesession-controller"), Agones: ag, Options: opts,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	return (&PlayerSessionReconciler{
		Client: c, APIReader: mgr.GetAPIReader(), Clock: clk,
		Recorder: mgr.GetEventRecorder("playersession-controller"), Agones: ag, Options: opts,
	}).SetupWithManager(mgr)
}

// StripForCache is the cache transform: it drops what no reader of the cache needs (managedFields and the
// last-applied-configuration annotation), which is most of a small object's memory.
func StripForCache(obj any) (any, error) {
	if o, ok := obj.(client.Object); ok {
		o.SetManagedFields(nil)
		if a := o.GetAnnotations(); a != nil {
			if _, ok := a["kubectl.kubernetes.io/last-applied-configuration"]; ok {
				delete(a, "kubectl.kubernetes.io/last-applied-configuration")
				o.SetAnnotations(a)
			}
		}
	}
	return obj, nil
}
