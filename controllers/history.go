package controllers

import (
	"context"
	"encoding/json"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/history"
	"github.com/playersessions/operator/internal/metrics"
)

// Archiver writes ended player sessions to the history store (history.Store). Archive must be idempotent:
// it is called again for a record it already holds after a crash between archiving and deleting, or by
// two managers at once.
type Archiver interface {
	Archive(ctx context.Context, recs []history.Record) error
	ArchiveGameSessions(ctx context.Context, recs []history.GameSessionRecord) error
}

// Archivable reports whether ps belongs in the history store: it ended (COMPLETED or TIMEDOUT) and so did
// its game session, and it has its GameLift id. A refused player session never held a seat and has no
// id; it stays a custom resource until its retention ends.
func Archivable(ps *gamev1.PlayerSession) bool {
	return ps.Status.Status.IsTerminal() && ps.Status.GameSessionTerminationTime != nil && ps.Status.PlayerSessionID != ""
}

// objectJSON is obj as the history store keeps it: JSON with its kind, without managed fields.
func objectJSON(obj client.Object, kind string) ([]byte, error) {
	c := obj.DeepCopyObject().(client.Object)
	c.SetManagedFields(nil)
	c.GetObjectKind().SetGroupVersionKind(gamev1.GroupVersion.WithKind(kind))
	return json.Marshal(c)
}

// RecordOf is the history record of an ended player session: its indexed fields, and the object as JSON
// without its managed fields.
func RecordOf(ps *gamev1.PlayerSession) (history.Record, error) {
	obj, err := objectJSON(ps, "PlayerSession")
	if err != nil {
		return history.Record{}, err
	}
	return history.Record{
		Namespace: ps.Namespace, Name: ps.Name, PlayerSessionID: ps.Status.PlayerSessionID,
		GameSessionID: ps.Status.GameSessionID, PlayerID: ps.Spec.PlayerID, Status: string(ps.Status.Status),
		GameSessionEndedAt: ps.Status.GameSessionTerminationTime.Time, Object: obj,
	}, nil
}

// reconcileArchive moves an ended player session to the history store once its game session has been
// over for HistoryGrace: it writes the record first and deletes the custom resource after, guarded by the
// resourceVersion it archived, so a crash between the two archives it again (one copy: the store ignores
// a record it holds) and a change in between (a late write) is archived again before the object goes.
// An object an applier declares stays (GitOps would recreate it). It reports when to look again and
// whether the object is gone.
func (r *PlayerSessionReconciler) reconcileArchive(ctx context.Context, before, ps *gamev1.PlayerSession, now time.Time) (time.Duration, bool, error) {
	if r.History == nil || !Archivable(ps) || r.Declared(ps) != "" {
		return 0, false, nil
	}
	if !equality.Semantic.DeepEqual(before.Status, ps.Status) {
		return 0, false, nil // this pass writes the status first; that write brings the object back
	}
	if wait := ps.Status.GameSessionTerminationTime.Add(r.HistoryGrace).Sub(now); wait > 0 {
		return wait, false, nil
	}
	rec, err := RecordOf(ps)
	if err != nil {
		return 0, false, err
	}
	return archiveThenDelete(ctx, r.Client, ps, func() error {
		return r.History.Archive(ctx, []history.Record{rec})
	})
}

// GameSessionRecordOf is the history record of an ended game session.
func GameSessionRecordOf(gs *gamev1.GameSession) (history.GameSessionRecord, error) {
	obj, err := objectJSON(gs, "GameSession")
	if err != nil {
		return history.GameSessionRecord{}, err
	}
	return history.GameSessionRecord{Namespace: gs.Namespace, Name: gs.Name, GameSessionID: gs.Status.GameSessionID, FleetID: gs.Spec.FleetID,
		Status: string(gs.Status.Status), EndedAt: gs.Status.TerminationTime.Time, Object: obj}, nil
}

// reconcileArchive moves a TERMINATED game session to the history store once it has been over for
// HistoryGrace: written first, then deleted (its finalizer then lets go once its player sessions have
// recorded its end, as for any deletion). A game session an applier declares stays. It reports when to
// look again and whether the object is being deleted (nothing left to write in this pass).
func (r *GameSessionReconciler) reconcileArchive(ctx context.Context, before, gs *gamev1.GameSession) (time.Duration, bool, error) {
	if r.History == nil || gs.Status.Status != gamev1.GameSessionTerminated || gs.Status.TerminationTime == nil || r.Declared(gs) != "" {
		return 0, false, nil
	}
	if wait := gs.Status.TerminationTime.Add(r.HistoryGrace).Sub(r.Clock.Now()); wait > 0 {
		return wait, false, nil
	}
	if !equality.Semantic.DeepEqual(before.Status, gs.Status) {
		return 0, false, nil // this pass writes the status first
	}
	rec, err := GameSessionRecordOf(gs)
	if err != nil {
		return 0, false, err
	}
	return archiveThenDelete(ctx, r.Client, gs, func() error {
		return r.History.ArchiveGameSessions(ctx, []history.GameSessionRecord{rec})
	})
}

// archiveThenDelete writes obj to the history store with write, then deletes it with its UID and
// resourceVersion as preconditions: a failed write keeps the object (the error is returned, and retried);
// a failed delete leaves it to be written again (the store keeps one copy); a conflict (it changed after
// it was written) looks again after ConflictRetry. It reports whether the object is gone or going.
func archiveThenDelete(ctx context.Context, c client.Client, obj client.Object, write func() error) (time.Duration, bool, error) {
	if err := write(); err != nil {
		metrics.ArchiveErrors.Inc()
		return 0, false, err
	}
	uid, rv := obj.GetUID(), obj.GetResourceVersion()
	if err := c.Delete(ctx, obj, client.Preconditions{UID: &uid, ResourceVersion: &rv}); err != nil {
		switch {
		case apierrors.IsNotFound(err):
			return 0, true, nil
		case apierrors.IsConflict(err):
			return ConflictRetry, false, nil
		}
		return 0, false, err
	}
	metrics.Archived.Inc()
	ctrl.LoggerFrom(ctx).V(1).Info("Moved to the history store", "object", klog.KObj(obj))
	return 0, true, nil
}
