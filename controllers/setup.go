package controllers

import (
	"context"

	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/playersessions/operator/internal/agones"
	"github.com/playersessions/operator/internal/indexes"
)

// FieldManager is the field manager of every write the controllers make, so that an applier (Argo CD,
// Flux) sees which fields are the operator's.
const FieldManager = "playersessions-manager"

// Deps are what both reconcilers work with.
type Deps struct {
	// Client writes, and reads through the manager's cache.
	client.Client
	// APIReader reads from the API server, bypassing the cache, to confirm a decision is not based on a
	// stale object (a game session really gone, a ledger really current).
	APIReader client.Reader
	Clock     clock.PassiveClock
	Recorder  events.EventRecorder
	// Agones binds game sessions with spec.agones to GameServers, and moves their player sessions with the
	// GameServer's players List (nil: no Agones integration).
	Agones *agones.Client
	Options
}

// Setup registers the field indexes and both reconcilers with mgr. With an Agones client (nil:
// no Agones integration), the reconcilers bind game sessions to Agones GameServers once it is installed.
func Setup(ctx context.Context, mgr ctrl.Manager, clk clock.PassiveClock, opts Options, ag *agones.Client) error {
	if err := indexes.Setup(ctx, mgr.GetFieldIndexer()); err != nil {
		return err
	}
	deps := func(name string) Deps {
		return Deps{Client: client.WithFieldOwner(mgr.GetClient(), FieldManager), APIReader: mgr.GetAPIReader(), Clock: clk,
			Recorder: mgr.GetEventRecorder(name), Agones: ag, Options: opts}
	}
	if err := (&GameSessionReconciler{Deps: deps("gamesession-controller")}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&ComputeReconciler{Deps: deps("compute-controller")}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&PodReconciler{Deps: deps("pod-controller")}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&GameSessionPlacementReconciler{Deps: deps("gamesessionplacement-controller")}).SetupWithManager(mgr); err != nil {
		return err
	}
	return (&PlayerSessionReconciler{Deps: deps("playersession-controller")}).SetupWithManager(mgr)
}
