package controllers

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ConflictRetry is how soon a reconcile whose status write met a conflict looks again, unless it asked
// to look again sooner.
const ConflictRetry = time.Second

// patchStatus writes the status of after as a merge patch against before, guarded by before's
// resourceVersion: a reconcile working from a stale cache gets a conflict, never a blind overwrite.
// It does nothing when nothing changed.
func patchStatus(ctx context.Context, c client.Client, before, after client.Object) error {
	if equality.Semantic.DeepEqual(before, after) {
		return nil
	}
	return c.Status().Patch(ctx, after, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
}

// effects are what a reconcile reports of the transitions it made (counters, events, log lines), held
// until its status write has landed: a pass whose write meets a conflict or fails reports nothing, and the
// pass that makes the transition again reports it, once.
type effects struct{ fns []func() }

// add holds f until the status write lands.
func (fx *effects) add(f func()) { fx.fns = append(fx.fns, f) }

// writeStatus is the one status write of a reconcile, which both reconcilers defer. finish(ok) completes
// the status first (ok: the reconcile succeeded, so observedGeneration may advance; then readiness). Once
// the write has landed (or there was nothing to write), it reports fx.
//
// The policy, the same for both kinds:
//   - nothing changed: no write;
//   - the object is gone: nothing to write, no error;
//   - conflict (it changed since it was read: another writer, or our own previous write not yet in the
//     cache): not an error, nothing of this pass is kept, and the reconcile looks again after
//     ConflictRetry, or sooner if it asked to (the newer version's event usually brings it back first;
//     the requeue covers the case where that event is filtered, as a game session's own writes are);
//   - any other error: returned with the reconcile's own, so the workqueue backs off.
//
// A failed reconcile still writes what it changed (its conditions), never observedGeneration.
func writeStatus(ctx context.Context, c client.Client, before, obj client.Object, fx *effects, finish func(ok bool), result *ctrl.Result, retErr *error) {
	finish(*retErr == nil)
	err := patchStatus(ctx, c, before, obj)
	switch {
	case err == nil:
		for _, f := range fx.fns {
			f()
		}
	case apierrors.IsNotFound(err):
	case apierrors.IsConflict(err) && *retErr == nil:
		ctrl.LoggerFrom(ctx).V(1).Info("Object changed while reconciling; looking again", "object", klog.KObj(obj))
		result.RequeueAfter = earliest(result.RequeueAfter, ConflictRetry)
	default:
		*retErr = kerrors.NewAggregate([]error{*retErr, err})
	}
}

// earliest returns the smaller non-zero duration (zero when both are zero).
func earliest(a, b time.Duration) time.Duration {
	switch {
	case a <= 0:
		return b
	case b <= 0:
		return a
	case a < b:
		return a
	}
	return b
}
