package controllers

import (
	"context"
	"slices"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/event"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/admission"
	"github.com/playersessions/operator/internal/agones"
	"github.com/playersessions/operator/internal/indexes"
)

// fixture is a fake API server (controller-runtime's fake client with the real indexes and status
// subresources), a fake clock and both reconcilers.
type fixture struct {
	c     client.Client
	clock *clocktesting.FakeClock
	gsr   *GameSessionReconciler
	psr   *PlayerSessionReconciler
	cr    *ComputeReconciler
	pr    *GameSessionPlacementReconciler
}

type builderIndexer struct{ b *fake.ClientBuilder }

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func (i builderIndexer) IndexField(_ context.Context, obj client.Object, field string, f client.IndexerFunc) error {
	i.b.WithIndex(obj, field, f)
	return nil
}

func newFixture(t *testing.T, objs ...client.Object) *fixture {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := gamev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := coordinationv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	// Agones' GameServers, read as unstructured objects (the fake client needs their kinds in the scheme).
	scheme.AddKnownTypeWithName(agones.GameServerGVK, &unstructured.Unstructured{})
	scheme.AddKnownTypeWithName(agones.GameServerListGVK, &unstructured.UnstructuredList{})
	scheme.AddKnownTypeWithName(agones.FleetGVK, &unstructured.Unstructured{})
	b := fake.NewClientBuilder().WithScheme(scheme).
		WithStatusSubresource(&gamev1.GameSession{}, &gamev1.PlayerSession{}, &gamev1.Compute{}, &gamev1.GameSessionPlacement{}).
		WithObjects(objs...)
	if err := indexes.Setup(context.Background(), builderIndexer{b}); err != nil {
		t.Fatal(err)
	}
	c := b.Build()
	clk := clocktesting.NewFakeClock(t0)
	opts := DefaultOptions()
	rec := events.NewFakeRecorder(100)
	return &fixture{
		c: c, clock: clk,
		gsr: &GameSessionReconciler{Deps: Deps{Client: c, APIReader: c, Clock: clk, Recorder: rec, Options: opts}},
		psr: &PlayerSessionReconciler{Deps: Deps{Client: c, APIReader: c, Clock: clk, Recorder: rec, Options: opts}},
		cr:  &ComputeReconciler{Deps: Deps{Client: c, APIReader: c, Clock: clk, Recorder: rec, Options: opts}},
		pr:  &GameSessionPlacementReconciler{Deps: Deps{Client: c, APIReader: c, Clock: clk, Recorder: rec, Options: opts}},
	}
}

// claims are the processes claimed for gs.
func (f *fixture) claims(t *testing.T, gs *gamev1.GameSession) []string {
	t.Helper()
	var list gamev1.ProcessClaimList
	if err := f.c.List(t.Context(), &list, client.MatchingFields{indexes.ProcessClaimGameSessionUID: string(gs.UID)}); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, cl := range list.Items {
		out = append(out, cl.Spec.ProcessID)
	}
	slices.Sort(out)
	return out
}

func (f *fixture) reconcileGS(t *testing.T, name string) ctrl.Result {
	t.Helper()
	res, err := f.gsr.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "ns", Name: name}})
	if err != nil {
		t.Fatalf("game session reconcile: %v", err)
	}
	return res
}

func (f *fixture) reconcilePS(t *testing.T, name string) ctrl.Result {
	t.Helper()
	res, err := f.psr.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "ns", Name: name}})
	if err != nil {
		t.Fatalf("player session reconcile: %v", err)
	}
	return res
}

func (f *fixture) gs(t *testing.T, name string) *gamev1.GameSession {
	t.Helper()
	gs := &gamev1.GameSession{}
	if err := f.c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: name}, gs); err != nil {
		t.Fatal(err)
	}
	return gs
}

func (f *fixture) ps(t *testing.T, name string) *gamev1.PlayerSession {
	t.Helper()
	ps := &gamev1.PlayerSession{}
	if err := f.c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: name}, ps); err != nil {
		t.Fatal(err)
	}
	return ps
}

// setPSStatus plays a game server patching status.
func (f *fixture) setPSStatus(t *testing.T, name string, s gamev1.PlayerSessionStatusValue) {
	t.Helper()
	ps := f.ps(t, name)
	before := ps.DeepCopy()
	ps.Status.Status = s
	if err := f.c.Status().Patch(context.Background(), ps, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
}

func newGS(name string, max int32, withEndpoint bool) *gamev1.GameSession {
	gs := &gamev1.GameSession{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-gs-" + name), CreationTimestamp: metav1.NewTime(t0)},
		Spec:       gamev1.GameSessionSpec{FleetID: "fleet-1", MaximumPlayerSessionCount: max, PlayerSessionCreationPolicy: gamev1.PlayerSessionCreationPolicyAcceptAll},
	}
	if withEndpoint {
		gs.Spec.IPAddress, gs.Spec.Port = "10.1.2.3", 7777
	}
	return gs
}

func newPS(name, game string) *gamev1.PlayerSession {
	return &gamev1.PlayerSession{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name), CreationTimestamp: metav1.NewTime(t0), Generation: 1},
		Spec:       gamev1.PlayerSessionSpec{GameSessionName: game, PlayerID: "player-" + name},
	}
}

// admit runs the two reconciles that take a player session from nothing to RESERVED.
func (f *fixture) admit(t *testing.T, game string, players ...string) {
	t.Helper()
	f.reconcileGS(t, game) // grants seats
	f.reconcileGS(t, game) // refuses what did not fit
	for _, p := range players {
		f.reconcilePS(t, p) // takes up the seat
	}
}

func TestGameSessionInitialisesAndActivates(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, newGS("with", 2, true), newGS("without", 2, false))
	f.reconcileGS(t, "with")
	f.reconcileGS(t, "without")

	with := f.gs(t, "with")
	g.Expect(with.Finalizers).To(ContainElement(gamev1.GameSessionFinalizer))
	g.Expect(with.Status.Status).To(Equal(gamev1.GameSessionActive))
	g.Expect(with.Status.GameSessionID).To(Equal("arn:aws:gamelift:local::gamesession/fleet-1/gsess-uid-gs-with"))
	g.Expect(with.Status.IPAddress).To(Equal("10.1.2.3"))
	g.Expect(with.Status.Port).To(BeEquivalentTo(7777))
	g.Expect(with.Status.CreationTime.Time).To(BeTemporally("==", t0))
	g.Expect(meta.IsStatusConditionTrue(with.Status.Conditions, gamev1.GameSessionReadyCondition)).To(BeTrue())
	g.Expect(with.Status.ObservedGeneration).To(Equal(with.Generation))

	without := f.gs(t, "without")
	g.Expect(without.Status.Status).To(Equal(gamev1.GameSessionActivating))
	g.Expect(meta.FindStatusCondition(without.Status.Conditions, gamev1.GameSessionReadyCondition).Reason).To(Equal(gamev1.WaitingForEndpointReason))
}

func TestReservationTimeoutAndAcceptance(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, newGS("gs", 3, true), newPS("a", "gs"), newPS("b", "gs"))
	f.reconcileGS(t, "gs")
	f.clock.Step(5 * time.Second)
	f.admit(t, "gs")
	res := f.reconcilePS(t, "a")
	g.Expect(res.RequeueAfter).To(Equal(60*time.Second), "a fresh reservation waits the whole timeout")
	f.reconcilePS(t, "b")

	a := f.ps(t, "a")
	g.Expect(a.Status.Status).To(Equal(gamev1.PlayerSessionReserved))
	g.Expect(a.Status.PlayerSessionID).To(Equal("psess-uid-a"))
	g.Expect(a.Status.GameSessionID).To(Equal(f.gs(t, "gs").Status.GameSessionID))
	g.Expect(a.Status.FleetArn).To(Equal("arn:aws:gamelift:local:000000000000:fleet/fleet-1"))
	g.Expect(a.Status.CreationTime.Time).To(BeTemporally("==", t0.Add(5*time.Second)))
	g.Expect(a.Status.IPAddress).To(Equal("10.1.2.3"))
	g.Expect(meta.FindStatusCondition(a.Status.Conditions, gamev1.AdmittedCondition).Reason).To(Equal(gamev1.SeatReservedReason))
	f.reconcileGS(t, "gs")
	g.Expect(f.gs(t, "gs").Status.CurrentPlayerSessionCount).To(BeEquivalentTo(2))

	// The game server accepts a; b is never accepted.
	f.clock.Step(20 * time.Second)
	f.setPSStatus(t, "a", gamev1.PlayerSessionActive)
	g.Expect(f.reconcilePS(t, "b").RequeueAfter).To(Equal(40*time.Second), "the deadline is recomputed from the persisted creation time")
	f.clock.Step(40*time.Second - time.Millisecond)
	f.reconcilePS(t, "b")
	g.Expect(f.ps(t, "b").Status.Status).To(Equal(gamev1.PlayerSessionReserved), "never early")
	f.clock.Step(time.Millisecond)
	g.Expect(f.reconcilePS(t, "b").RequeueAfter).To(BeZero())
	b := f.ps(t, "b")
	g.Expect(b.Status.Status).To(Equal(gamev1.PlayerSessionTimedOut))
	g.Expect(b.Status.TerminationTime.Time).To(BeTemporally("==", f.clock.Now()))

	f.reconcilePS(t, "a")
	g.Expect(f.ps(t, "a").Status.Status).To(Equal(gamev1.PlayerSessionActive), "an accepted player session does not time out")

	f.reconcileGS(t, "gs")
	gs := f.gs(t, "gs")
	g.Expect(gs.Status.CurrentPlayerSessionCount).To(BeEquivalentTo(1), "the timed-out seat is released")
	g.Expect(gs.Status.Seats).To(Equal([]gamev1.SeatHolder{{Name: "a", UID: "uid-a"}}))

	// The player leaves.
	f.clock.Step(time.Minute)
	f.setPSStatus(t, "a", gamev1.PlayerSessionCompleted)
	f.reconcilePS(t, "a")
	a = f.ps(t, "a")
	g.Expect(a.Status.TerminationTime.Time).To(BeTemporally("==", f.clock.Now()))
	g.Expect(a.Status.GameSessionTerminationTime).To(BeNil(), "retention waits for the game session to end")
	f.reconcileGS(t, "gs")
	g.Expect(f.gs(t, "gs").Status.CurrentPlayerSessionCount).To(BeZero())
}

func TestCapacityAndRefusals(t *testing.T) {
	g := NewWithT(t)
	objs := []client.Object{newGS("gs", 2, true)}
	for _, n := range []string{"p1", "p2", "p3", "p4"} {
		objs = append(objs, newPS(n, "gs"))
	}
	f := newFixture(t, objs...)
	res := f.reconcileGS(t, "gs")
	g.Expect(res.RequeueAfter).To(Equal(max(f.gsr.BatchWindow, time.Millisecond)), "the pass that grants seats leaves the refusals to the next one, and says when")
	f.admit(t, "gs", "p1", "p2", "p3", "p4")
	for n, want := range map[string]string{"p1": gamev1.SeatReservedReason, "p2": gamev1.SeatReservedReason, "p3": gamev1.GameSessionFullReason, "p4": gamev1.GameSessionFullReason} {
		ps := f.ps(t, n)
		g.Expect(meta.FindStatusCondition(ps.Status.Conditions, gamev1.AdmittedCondition).Reason).To(Equal(want), n)
	}
	// A freed seat does not revive a refusal.
	f.setPSStatus(t, "p1", gamev1.PlayerSessionCompleted)
	f.reconcileGS(t, "gs")
	f.reconcilePS(t, "p3")
	g.Expect(f.ps(t, "p3").Status.Status).To(BeEmpty())
	g.Expect(f.gs(t, "gs").Status.CurrentPlayerSessionCount).To(BeEquivalentTo(1))
}

func TestRefusalNeedsAFreshLedger(t *testing.T) {
	g := NewWithT(t)
	gs := newGS("gs", 1, true)
	f := newFixture(t, gs, newPS("a", "gs"), newPS("b", "gs"))
	f.reconcileGS(t, "gs") // activates and grants a
	// Decide against a stale copy of the game session: the live one has moved on.
	stale := f.gs(t, "gs")
	live := stale.DeepCopy()
	live.Status.Seats = nil
	g.Expect(f.c.Status().Update(context.Background(), live)).To(Succeed())
	res, err := f.gsr.reconcileSeats(context.Background(), stale, []gamev1.PlayerSession{*f.ps(t, "a"), *f.ps(t, "b")})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res).To(BeNumerically(">", 0), "retries instead of refusing")
	g.Expect(admission.IsRefused(f.ps(t, "b"))).To(BeFalse())
}

func TestDenyAllAndActivating(t *testing.T) {
	g := NewWithT(t)
	deny := newGS("deny", 5, true)
	deny.Spec.PlayerSessionCreationPolicy = gamev1.PlayerSessionCreationPolicyDenyAll
	f := newFixture(t, deny, newGS("activating", 5, false), newPS("d", "deny"), newPS("w", "activating"))
	f.reconcileGS(t, "deny")
	f.admit(t, "deny", "d")
	g.Expect(meta.FindStatusCondition(f.ps(t, "d").Status.Conditions, gamev1.AdmittedCondition).Reason).To(Equal(gamev1.PlayerSessionCreationDeniedReason))

	f.reconcileGS(t, "activating")
	f.clock.Step(30 * time.Second)
	g.Expect(f.reconcileGS(t, "activating").RequeueAfter).To(Equal(30*time.Second), "rechecks when the admission window closes")
	f.reconcilePS(t, "w")
	g.Expect(admission.IsPending(f.ps(t, "w"))).To(BeTrue(), "still waiting")
	f.clock.Step(30 * time.Second)
	f.reconcileGS(t, "activating")
	w := f.ps(t, "w")
	g.Expect(admission.IsRefused(w)).To(BeTrue())
	g.Expect(meta.FindStatusCondition(w.Status.Conditions, gamev1.AdmittedCondition).Reason).To(Equal(gamev1.InvalidGameSessionStatusReason))
}

func TestGameSessionNotFound(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, newPS("orphan", "missing"))
	f.clock.Step(10 * time.Second)
	g.Expect(f.reconcilePS(t, "orphan").RequeueAfter).To(Equal(50 * time.Second))
	waiting := f.ps(t, "orphan")
	g.Expect(waiting.Status.Conditions).To(BeEmpty(), "a waiting player session is not written")
	g.Expect(waiting.Status.ObservedGeneration).To(BeZero())
	f.clock.Step(50 * time.Second)
	res := f.reconcilePS(t, "orphan")
	ps := f.ps(t, "orphan")
	g.Expect(admission.IsRefused(ps)).To(BeTrue())
	g.Expect(meta.FindStatusCondition(ps.Status.Conditions, gamev1.AdmittedCondition).Reason).To(Equal(gamev1.GameSessionNotFoundReason))
	g.Expect(res.RequeueAfter).To(Equal(f.psr.Retention), "a refused player session is kept for the retention period")
	f.clock.Step(f.psr.Retention)
	f.reconcilePS(t, "orphan")
	g.Expect(apierrors.IsNotFound(f.c.Get(context.Background(), client.ObjectKeyFromObject(ps), ps))).To(BeTrue())
}

func TestGameSessionEndAndRetention(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, newGS("gs", 3, true), newPS("a", "gs"), newPS("b", "gs"), newPS("c", "gs"))
	f.reconcileGS(t, "gs")
	f.admit(t, "gs", "a", "b", "c")
	f.setPSStatus(t, "a", gamev1.PlayerSessionActive)
	f.setPSStatus(t, "c", gamev1.PlayerSessionActive)
	f.setPSStatus(t, "c", gamev1.PlayerSessionCompleted)
	f.reconcilePS(t, "c")

	// The game server ends the game session.
	f.clock.Step(10 * time.Second)
	gs := f.gs(t, "gs")
	before := gs.DeepCopy()
	gs.Status.Status = gamev1.GameSessionTerminated
	g.Expect(f.c.Status().Patch(context.Background(), gs, client.MergeFrom(before))).To(Succeed())
	g.Expect(f.reconcileGS(t, "gs").RequeueAfter).To(Equal(f.gsr.Retention))
	end := f.gs(t, "gs").Status.TerminationTime
	g.Expect(end.Time).To(BeTemporally("==", f.clock.Now()))

	f.clock.Step(time.Second)
	for _, n := range []string{"a", "b", "c"} {
		g.Expect(f.reconcilePS(t, n).RequeueAfter).To(Equal(f.psr.Retention-time.Second), n)
		ps := f.ps(t, n)
		g.Expect(ps.Status.Status).To(Equal(gamev1.PlayerSessionCompleted), n)
		g.Expect(ps.Status.TerminationTime).NotTo(BeNil(), n)
		g.Expect(ps.Status.GameSessionTerminationTime.Time).To(BeTemporally("==", end.Time), n)
	}
	f.reconcileGS(t, "gs")
	g.Expect(f.gs(t, "gs").Status.CurrentPlayerSessionCount).To(BeZero())

	// Retention: never early, then gone.
	f.clock.Step(f.psr.Retention - time.Second - time.Millisecond)
	f.reconcilePS(t, "a")
	f.reconcileGS(t, "gs")
	f.ps(t, "a")
	f.gs(t, "gs")
	f.clock.Step(time.Millisecond)
	f.reconcilePS(t, "a")
	f.reconcileGS(t, "gs")
	g.Expect(apierrors.IsNotFound(f.c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: "a"}, &gamev1.PlayerSession{}))).To(BeTrue())
	// The fake API server honours the finalizer: the game session is terminating, and lets go at once
	// because its player sessions already recorded its end.
	f.reconcileGS(t, "gs")
	g.Expect(apierrors.IsNotFound(f.c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: "gs"}, &gamev1.GameSession{}))).To(BeTrue())
}

func TestDeletedGameSessionReleasesPlayerSessions(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, newGS("gs", 3, true), newPS("a", "gs"), newPS("b", "gs"))
	f.reconcileGS(t, "gs")
	f.admit(t, "gs", "a", "b")
	f.setPSStatus(t, "a", gamev1.PlayerSessionActive)

	g.Expect(f.c.Delete(context.Background(), f.gs(t, "gs"))).To(Succeed())
	f.reconcileGS(t, "gs")
	gs := f.gs(t, "gs")
	g.Expect(gs.Status.Status).To(Equal(gamev1.GameSessionTerminated))
	g.Expect(gs.Status.StatusReason).To(Equal("FORCE_TERMINATED"))
	g.Expect(gs.Finalizers).To(ContainElement(gamev1.GameSessionFinalizer), "held until the player sessions recorded the end")
	f.reconcileGS(t, "gs")
	g.Expect(f.gs(t, "gs").Finalizers).To(ContainElement(gamev1.GameSessionFinalizer))

	for _, n := range []string{"a", "b"} {
		f.reconcilePS(t, n)
	}
	f.reconcileGS(t, "gs")
	g.Expect(apierrors.IsNotFound(f.c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: "gs"}, &gamev1.GameSession{}))).To(BeTrue())
	for _, n := range []string{"a", "b"} {
		ps := f.ps(t, n)
		g.Expect(ps.Status.Status).To(Equal(gamev1.PlayerSessionCompleted))
		g.Expect(ps.Status.GameSessionTerminationTime.Time).To(BeTemporally("==", gs.Status.TerminationTime.Time))
		g.Expect(ps.Status.GameSessionID).To(Equal(gs.Status.GameSessionID), "the id outlives the object")
		g.Expect(ps.Status.IPAddress).To(Equal("10.1.2.3"))
		// Reconciling without the game session changes nothing.
		f.reconcilePS(t, n)
		g.Expect(f.ps(t, n).Status).To(Equal(ps.Status))
	}
}

func TestForceRemovedGameSessionStillEndsPlayerSessions(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, newGS("gs", 3, true), newPS("a", "gs"))
	f.reconcileGS(t, "gs")
	f.admit(t, "gs", "a")
	gs := f.gs(t, "gs")
	gs.Finalizers = nil
	g.Expect(f.c.Update(context.Background(), gs)).To(Succeed())
	g.Expect(f.c.Delete(context.Background(), gs)).To(Succeed())
	f.clock.Step(time.Second)
	f.reconcilePS(t, "a")
	ps := f.ps(t, "a")
	g.Expect(ps.Status.Status).To(Equal(gamev1.PlayerSessionCompleted))
	g.Expect(ps.Status.GameSessionTerminationTime.Time).To(BeTemporally("==", f.clock.Now()))
}

func TestNotOwnLedgerWrite(t *testing.T) {
	base := newGS("gs", 2, true)
	base.ResourceVersion = "1"
	base.Status = gamev1.GameSessionStatus{Status: gamev1.GameSessionActive, Endpoint: gamev1.Endpoint{IPAddress: "10.1.2.3", Port: 7777}}
	tests := []struct {
		name   string
		change func(gs *gamev1.GameSession)
		want   bool
	}{
		{"ledger, count, conditions and observedGeneration only", func(gs *gamev1.GameSession) {
			gs.Status.Seats = []gamev1.SeatHolder{{Name: "a"}}
			gs.Status.CurrentPlayerSessionCount = 1
			gs.Status.ObservedGeneration = 3
			gs.Status.Conditions = []metav1.Condition{{Type: gamev1.GameSessionReadyCondition, Status: metav1.ConditionTrue}}
		}, false},
		{"status set by the game server", func(gs *gamev1.GameSession) { gs.Status.Status = gamev1.GameSessionTerminated }, true},
		{"endpoint set by the game server", func(gs *gamev1.GameSession) { gs.Status.Port = 7778 }, true},
		{"spec", func(gs *gamev1.GameSession) { gs.Generation++; gs.Spec.MaximumPlayerSessionCount = 3 }, true},
		{"deletion", func(gs *gamev1.GameSession) { now := metav1.Now(); gs.DeletionTimestamp = &now }, true},
		{"finalizers", func(gs *gamev1.GameSession) { gs.Finalizers = append(gs.Finalizers, "example.com/x") }, true},
		{"labels", func(gs *gamev1.GameSession) { gs.Labels = map[string]string{"a": "b"} }, true},
	}
	p := notOwnLedgerWrite()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gs := base.DeepCopy()
			tt.change(gs)
			gs.ResourceVersion = "2"
			cached := gs.DeepCopy()
			if got := p.Update(event.UpdateEvent{ObjectOld: base, ObjectNew: gs}); got != tt.want {
				t.Errorf("reconcile = %v, want %v", got, tt.want)
			}
			if !equality.Semantic.DeepEqual(cached, gs) {
				t.Error("the predicate modified the cached object")
			}
		})
	}
}

func TestPlayerSessionChangeForGameSession(t *testing.T) {
	reserved := newPS("a", "gs")
	reserved.Status.Status = gamev1.PlayerSessionReserved
	now := metav1.NowMicro()
	tests := []struct {
		name   string
		change func(ps *gamev1.PlayerSession)
		want   ledgerEffect
	}{
		{"accepted", func(ps *gamev1.PlayerSession) { ps.Status.Status = gamev1.PlayerSessionActive }, ledgerNone},
		{"timed out", func(ps *gamev1.PlayerSession) { ps.Status.Status = gamev1.PlayerSessionTimedOut }, ledgerRelease},
		{"completed", func(ps *gamev1.PlayerSession) { ps.Status.Status = gamev1.PlayerSessionCompleted }, ledgerRelease},
		{"being deleted", func(ps *gamev1.PlayerSession) { t := metav1.Now(); ps.DeletionTimestamp = &t }, ledgerRelease},
		{"refused", func(ps *gamev1.PlayerSession) {
			ps.Status.Status = ""
			ps.Status.Conditions = []metav1.Condition{admission.RefusedCondition(1, gamev1.GameSessionFullReason, "full")}
		}, ledgerChange},
		{"recorded the game session's end", func(ps *gamev1.PlayerSession) {
			ps.Status.Status, ps.Status.GameSessionTerminationTime = gamev1.PlayerSessionCompleted, &now
		}, ledgerChange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := reserved.DeepCopy()
			tt.change(ps)
			if got := playerSessionChangeForGameSession(reserved, ps); got != tt.want {
				t.Errorf("effect = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestSeatDoesNotPassToANewObjectOfTheSameName: a player session granted a seat, deleted and created again
// under the same name before the release pass, is another object: it does not take up the old seat (the
// ledger keeps the UID it was granted to), and waits for admission like any other (here refused: the game
// session turned DENY_ALL meanwhile). Before, the ledger held names only, and the new object was RESERVED
// without admission.
func TestSeatDoesNotPassToANewObjectOfTheSameName(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t, newGS("gs", 1, true), newPS("a", "gs"))
	f.reconcileGS(t, "gs") // ACTIVE
	f.reconcileGS(t, "gs") // the seat granted to a
	g.Expect(f.gs(t, "gs").Status.Seats).To(Equal([]gamev1.SeatHolder{{Name: "a", UID: "uid-a"}}))

	gs := f.gs(t, "gs")
	gs.Spec.PlayerSessionCreationPolicy = gamev1.PlayerSessionCreationPolicyDenyAll
	g.Expect(f.c.Update(context.Background(), gs)).To(Succeed())
	g.Expect(f.c.Delete(context.Background(), f.ps(t, "a"))).To(Succeed())
	again := newPS("a", "gs")
	again.UID = "uid-a-again"
	g.Expect(f.c.Create(context.Background(), again)).To(Succeed())
	g.Expect(f.ps(t, "a").UID).To(BeEquivalentTo("uid-a-again"))

	f.reconcilePS(t, "a")
	g.Expect(f.ps(t, "a").Status.Status).To(BeEmpty(), "the new object took up the old one's seat")
	f.reconcileGS(t, "gs") // releases the old seat
	f.reconcileGS(t, "gs") // refuses the new object (DENY_ALL), against the ledger it wrote
	f.reconcilePS(t, "a")
	g.Expect(f.gs(t, "gs").Status.Seats).To(BeEmpty())
	g.Expect(admission.IsRefused(f.ps(t, "a"))).To(BeTrue())
	g.Expect(f.ps(t, "a").Status.Status).To(BeEmpty())
}
