package controllers

import (
	"context"

	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/playersessions/operator/internal/agones"
	"github.com/playersessions/operator/internal/indexes"
)

// FieldManager is the field manager of every write the controllers make, so that an applier (Argo CD,
// Flux) sees which fields are the operator's.
const FieldManager = "playersessions-manager"

// Setup registers the field indexes and both reconcilers with mgr. With an Agones client (nil:
// no Agones integration), the reconcilers bind game sessions to Agones GameServers once it is installed.
func Setup(ctx context.Context, mgr ctrl.Manager, clk clock.PassiveClock, opts Options, ag *agones.Client) error {
	c := client.WithFieldOwner(mgr.GetClient(), FieldManager)
	if err := indexes.Setup(ctx, mgr.GetFieldIndexer()); err != nil {
		return err
	}
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
