package controllers

import (
	"context"
	"errors"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/admission"
	"github.com/playersessions/operator/internal/history"
)

// fakeArchiver is a history store that keeps one copy per id and counts calls; fail makes the next call fail.
type fakeArchiver struct {
	calls        int
	records      map[string]history.Record
	gameSessions map[string]history.GameSessionRecord
	fail         error
}

func (a *fakeArchiver) ArchiveGameSessions(_ context.Context, recs []history.GameSessionRecord) error {
	if a.gameSessions == nil {
		a.gameSessions = map[string]history.GameSessionRecord{}
	}
	for _, r := range recs {
		a.gameSessions[r.GameSessionID] = r
	}
	return nil
}

func (a *fakeArchiver) Archive(_ context.Context, recs []history.Record) error {
	a.calls++
	if a.fail != nil {
		err := a.fail
		a.fail = nil
		return err
	}
	for _, r := range recs {
		if _, ok := a.records[r.PlayerSessionID]; !ok {
			a.records[r.PlayerSessionID] = r
		}
	}
	return nil
}

// endedPS is a player session that completed in a game session that ended at ended.
func endedPS(name string, ended time.Time) *gamev1.PlayerSession {
	ps := newPS(name, "gone")
	end := metav1.NewMicroTime(ended)
	ps.Status = gamev1.PlayerSessionStatus{Status: gamev1.PlayerSessionCompleted, PlayerSessionID: "psess-" + name, GameSessionID: "gsid",
		CreationTime: &end, TerminationTime: &end, GameSessionTerminationTime: &end, ObservedGeneration: 1}
	return ps
}

// TestArchive: an ended player session moves to the history store after the grace period, written first
// and deleted after; a failed write keeps the object; a failed delete archives again (one copy) and
// deletes next time; a declared object stays.
func TestArchive(t *testing.T) {
	g := NewWithT(t)
	grace := 5 * time.Minute
	declared := endedPS("declared", t0)
	declared.Labels = map[string]string{"app.kubernetes.io/instance": "fleet"}
	refused := newPS("refused", "gone")
	admission.SetRefused(refused, t0, gamev1.GameSessionFullReason, "full")
	f := newFixture(t, endedPS("a", t0), refused, declared)
	store := &fakeArchiver{records: map[string]history.Record{}}
	f.psr.History, f.psr.HistoryGrace = store, grace
	exists := func(name string) bool {
		return f.c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: name}, &gamev1.PlayerSession{}) == nil
	}
	reconcile := func(name string) (ctrl.Result, error) {
		return f.psr.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "ns", Name: name}})
	}

	// Within the grace period: kept, and looked at again when it ends.
	f.clock.SetTime(t0.Add(time.Minute))
	res, err := reconcile("a")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.RequeueAfter).To(Equal(4 * time.Minute))
	g.Expect(store.calls).To(BeZero())

	// The store fails: the object stays, the error is returned (retried with backoff).
	f.clock.SetTime(t0.Add(grace))
	store.fail = errors.New("connection refused")
	_, err = reconcile("a")
	g.Expect(err).To(HaveOccurred())
	g.Expect(exists("a")).To(BeTrue())

	// Archived, then deleted.
	_, err = reconcile("a")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(exists("a")).To(BeFalse())
	g.Expect(store.records).To(HaveKey("psess-a"))
	rec := store.records["psess-a"]
	g.Expect(rec.GameSessionEndedAt).To(BeTemporally("==", t0))
	g.Expect(string(rec.Object)).To(ContainSubstring(`"kind":"PlayerSession"`))

	// Declared by an applier: never archived (Git would recreate it).
	_, err = reconcile("declared")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(exists("declared")).To(BeTrue())
	g.Expect(store.records).NotTo(HaveKey("psess-declared"))

	// Refused: it never held a seat and has no GameLift id; it stays a custom resource.
	_, err = reconcile("refused")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(exists("refused")).To(BeTrue())
	g.Expect(store.records).To(HaveLen(1))
}

// TestArchiveCrashBetweenWriteAndDelete: the delete fails after the write (a crash, or a conflict); the
// next pass writes again (the store keeps one copy) and deletes.
func TestArchiveCrashBetweenWriteAndDelete(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, endedPS("a", t0))
	store := &fakeArchiver{records: map[string]history.Record{}}
	f.psr.History, f.psr.HistoryGrace = store, time.Minute
	f.clock.SetTime(t0.Add(time.Hour))
	failing := &failingDeletes{Client: f.psr.Client, err: apierrors.NewServiceUnavailable("etcd leader changed")}
	f.psr.Client = failing
	_, err := f.psr.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "ns", Name: "a"}})
	g.Expect(err).To(HaveOccurred())
	g.Expect(store.records).To(HaveLen(1))

	// The delete meets a conflict (the object changed after it was archived): no error, look again soon.
	failing.err = apierrors.NewConflict(schema.GroupResource{Resource: "playersessions"}, "a", errors.New("changed"))
	res, err := f.psr.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "ns", Name: "a"}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.RequeueAfter).To(Equal(ConflictRetry))

	failing.err = nil
	_, err = f.psr.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "ns", Name: "a"}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(store.calls).To(Equal(3))
	g.Expect(store.records).To(HaveLen(1), "one copy")
	g.Expect(f.c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: "a"}, &gamev1.PlayerSession{})).NotTo(Succeed())
}

type failingDeletes struct {
	client.Client
	err error
}

func (c *failingDeletes) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	if c.err != nil {
		return c.err
	}
	return c.Client.Delete(ctx, obj, opts...)
}

// TestArchiveGameSession: a TERMINATED game session goes to the history store after the grace period and
// is then deleted (its finalizer lets go as for any deletion).
func TestArchiveGameSession(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, newGS("arena", 2, true))
	store := &fakeArchiver{records: map[string]history.Record{}}
	f.gsr.History, f.gsr.HistoryGrace = store, time.Minute
	f.reconcileGS(t, "arena") // finalizer, id, ACTIVE
	gs := f.gs(t, "arena")
	before := gs.DeepCopy()
	gs.Status.Status = gamev1.GameSessionTerminated
	g.Expect(f.c.Status().Patch(context.Background(), gs, client.MergeFrom(before))).To(Succeed())
	f.reconcileGS(t, "arena") // stamps the end
	g.Expect(f.reconcileGS(t, "arena").RequeueAfter).To(Equal(time.Minute), "waits for the grace period")
	g.Expect(store.gameSessions).To(BeEmpty())

	f.clock.Step(time.Minute)
	f.reconcileGS(t, "arena") // archives, then deletes
	g.Expect(store.gameSessions).To(HaveLen(1))
	for _, r := range store.gameSessions {
		g.Expect(r.Status).To(Equal("TERMINATED"))
		g.Expect(r.EndedAt).To(BeTemporally("==", t0))
	}
	f.reconcileGS(t, "arena") // the finalizer lets go: no player session waits for it
	err := f.c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: "arena"}, &gamev1.GameSession{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "deleted: %v", err)
}
