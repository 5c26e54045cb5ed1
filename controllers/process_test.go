package controllers

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/computes"
	"github.com/playersessions/operator/internal/replicas"
)

// TestPlacementAndActivationTimeout: a game session of a fleet with a registered compute is placed on its
// idle process (claimed by its ProcessClaim, recorded in status.process), and becomes ERROR when the process
// has not activated it within ProcessActivationTimeout, counted from the placement (persisted in the Placed
// condition), not earlier.
func TestPlacementAndActivationTimeout(t *testing.T) {
	now := metav1.NewTime(t0)
	c := &gamev1.Compute{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "compute-1-abcd"},
		Spec: gamev1.ComputeSpec{FleetID: "fleet-1", ComputeName: "compute-1", IPAddress: "10.0.0.5"},
		Status: gamev1.ComputeStatus{ComputeStatus: gamev1.ComputeActive, Processes: []gamev1.ServerProcess{
			{ProcessID: "busy", Status: gamev1.ServerProcessActive, Port: 7000, ActivationTime: &now},
			{ProcessID: "sick", Status: gamev1.ServerProcessActive, Port: 7001, ActivationTime: &now, Unhealthy: true},
			{ProcessID: "idle", Status: gamev1.ServerProcessActive, Port: 7002, ActivationTime: &now},
		}}}
	f := newFixture(t, newGS("g", 4, false), c, computes.Claim(c, "busy", newGS("other", 4, false)))
	f.gsr.ProcessActivationTimeout = time.Minute
	res := f.reconcileGS(t, "g")
	gs := f.gs(t, "g")
	expect(t, gs.Status.Process != nil && gs.Status.Process.ProcessID == "idle", true)
	expect(t, gs.Status.Status, gamev1.GameSessionActivating)
	expect(t, res.RequeueAfter, time.Minute)
	expect(t, fmt.Sprint(f.claims(t, gs)), "[idle]")
	if err := f.c.Get(t.Context(), client.ObjectKey{Namespace: "ns", Name: computes.ClaimName(c.Name, "sick")}, &gamev1.ProcessClaim{}); !apierrors.IsNotFound(err) {
		t.Errorf("the unhealthy process is claimed: %v", err)
	}

	f.clock.Step(59 * time.Second)
	res = f.reconcileGS(t, "g")
	expect(t, f.gs(t, "g").Status.Status, gamev1.GameSessionActivating)
	expect(t, res.RequeueAfter, time.Second)
	f.clock.Step(time.Second)
	f.reconcileGS(t, "g")
	gs = f.gs(t, "g")
	expect(t, gs.Status.Status, gamev1.GameSessionError)
	expect(t, meta.FindStatusCondition(gs.Status.Conditions, gamev1.GameSessionPlacedCondition).Reason, gamev1.ActivationTimedOutReason)
}

// TestLostProcesses: a process whose connection is lost (closed by its replica; held by a replica whose
// Lease expired, whose run changed, or whose Lease is missing) gets no game session, and is TERMINATED
// (ConnectionLost) once ProcessReconnectGrace has passed since the loss, not before; a process connected
// to a live replica is kept. The game session placed on a lost process ends INTERRUPTED.
func TestLostProcesses(t *testing.T) {
	const ns, grace = "sys", time.Minute
	at := func(d time.Duration) *metav1.Time { x := metav1.NewTime(t0.Add(d)); return &x }
	lease := func(name, holder string, renewed time.Duration) *coordinationv1.Lease {
		return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{replicas.Label: "true"}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(holder), LeaseDurationSeconds: ptr.To(int32(30)),
				AcquireTime: &metav1.MicroTime{Time: t0.Add(-time.Hour)}, RenewTime: &metav1.MicroTime{Time: t0.Add(renewed)}}}
	}
	restarted := lease("restarted", "run-2", 0)
	restarted.Spec.AcquireTime = &metav1.MicroTime{Time: t0.Add(-10 * time.Second)}
	conn := func(replica, holder string, closed *metav1.Time) *gamev1.ProcessConnection {
		return &gamev1.ProcessConnection{Replica: replica, Holder: holder, ConnectionTime: metav1.NewTime(t0.Add(-time.Hour)), DisconnectionTime: closed}
	}
	now := metav1.NewTime(t0.Add(-time.Hour))
	process := func(id string, c *gamev1.ProcessConnection) gamev1.ServerProcess {
		return gamev1.ServerProcess{ProcessID: id, Status: gamev1.ServerProcessActive, Port: 7000, ActivationTime: &now, Connection: c}
	}
	c := &gamev1.Compute{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "compute-1-abcd"},
		Spec: gamev1.ComputeSpec{FleetID: "fleet-1", ComputeName: "compute-1", IPAddress: "10.0.0.5"},
		Status: gamev1.ComputeStatus{ComputeStatus: gamev1.ComputeActive, Processes: []gamev1.ServerProcess{
			process("closed", conn("live", "run-1", at(-20*time.Second))),                                        // lost at -20 s
			process("expired", conn("dead", "run-1", nil)),                                                       // its replica's Lease expired at -90 s
			process("restarted", conn("restarted", "run-1", nil)),                                                // its replica restarted at -10 s
			process("missing", conn("never", "run-1", nil)),                                                      // no Lease: lost since it connected
			process("placed", conn("dead", "run-1", nil)),                                                        // lost with a game session on it
			process("connected", conn("live", "run-1", nil)),                                                     // the only one to place a game session on
			{ProcessID: "ended", Status: gamev1.ServerProcessTerminated, Connection: conn("dead", "run-1", nil)}, // not lost: ended
		}}}
	placed := newGS("placed", 4, false)
	placed.Status = gamev1.GameSessionStatus{Status: gamev1.GameSessionActive, GameSessionID: "gsess-placed",
		Process: &gamev1.ServerProcessRef{Compute: c.Name, ProcessID: "placed"}}
	f := newFixture(t, newGS("g", 4, false), placed, c, computes.Claim(c, "placed", placed), lease("live", "run-1", 0), lease("dead", "run-1", -2*time.Minute), restarted)
	for _, r := range []*Deps{&f.gsr.Deps, &f.cr.Deps} {
		r.ReplicaNamespace, r.ProcessReconnectGrace = ns, grace
	}

	f.reconcileGS(t, "g")
	gs := f.gs(t, "g")
	expect(t, gs.Status.Process != nil && gs.Status.Process.ProcessID == "connected", true)

	reconcileCompute := func() ctrl.Result {
		res, err := f.cr.Reconcile(t.Context(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(c)})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	statuses := func() map[string]string {
		got := &gamev1.Compute{}
		if err := f.c.Get(t.Context(), client.ObjectKeyFromObject(c), got); err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, sp := range got.Status.Processes {
			out[sp.ProcessID] = string(sp.Status) + "/" + string(sp.TerminationReason)
		}
		return out
	}
	res := reconcileCompute()
	// "missing" and "expired" and "placed" are past their grace already (lost an hour ago, and 90 s ago).
	want := map[string]string{"closed": "ACTIVE/", "expired": "TERMINATED/ConnectionLost", "restarted": "ACTIVE/",
		"missing": "TERMINATED/ConnectionLost", "placed": "TERMINATED/ConnectionLost", "connected": "ACTIVE/", "ended": "TERMINATED/"}
	if got := statuses(); !maps.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	expect(t, res.RequeueAfter, 40*time.Second) // "closed": lost at -20 s, grace 60 s
	f.clock.Step(40 * time.Second)
	res = reconcileCompute()
	expect(t, statuses()["closed"], "TERMINATED/ConnectionLost")
	expect(t, res.RequeueAfter, 10*time.Second) // "restarted": lost at -10 s
	f.clock.Step(10 * time.Second)
	reconcileCompute()
	expect(t, statuses()["restarted"], "TERMINATED/ConnectionLost")
	expect(t, statuses()["connected"], "ACTIVE/")

	f.reconcileGS(t, "placed")
	gs = f.gs(t, "placed")
	expect(t, gs.Status.Status, gamev1.GameSessionTerminated)
	expect(t, gs.Status.StatusReason, gamev1.GameSessionInterrupted)
}

// TestReplicaGone: the Lease of a replica that stopped renewing wakes the computes whose processes it held
// (once it expired, not before); a Lease expired long ago that no process names is deleted.
func TestReplicaGone(t *testing.T) {
	const ns = "sys"
	now := metav1.NewTime(t0)
	c := &gamev1.Compute{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "compute-1-abcd"},
		Spec: gamev1.ComputeSpec{FleetID: "fleet-1", ComputeName: "compute-1", IPAddress: "10.0.0.5"},
		Status: gamev1.ComputeStatus{Processes: []gamev1.ServerProcess{{ProcessID: "p", Status: gamev1.ServerProcessActive, ActivationTime: &now,
			Connection: &gamev1.ProcessConnection{Replica: "r1", Holder: "run-1", ConnectionTime: now}}}}}
	lease := func(name string) *coordinationv1.Lease {
		return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{replicas.Label: "true"}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("run-1"), LeaseDurationSeconds: ptr.To(int32(30)), RenewTime: &metav1.MicroTime{Time: t0}}}
	}
	f := newFixture(t, c, lease("r1"), lease("old"))
	lost := make(chan event.TypedGenericEvent[*gamev1.Compute], 4)
	r := &ReplicaReconciler{Deps: f.cr.Deps, lost: lost}
	r.ReplicaNamespace = ns
	reconcile := func(name string) ctrl.Result {
		res, err := r.Reconcile(t.Context(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: name}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	expect(t, reconcile("r1").RequeueAfter, 31*time.Second) // alive: look again when it would expire
	expect(t, len(lost), 0)
	f.clock.Step(30 * time.Second)
	expect(t, reconcile("r1").RequeueAfter, staleLease)
	expect(t, len(lost), 1)
	expect(t, (<-lost).Object.Name, c.Name)
	f.clock.Step(staleLease + time.Second)
	reconcile("old")
	if err := f.c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "old"}, &coordinationv1.Lease{}); !apierrors.IsNotFound(err) {
		t.Errorf("the unused Lease expired long ago is still there: %v", err)
	}
	reconcile("r1")
	if err := f.c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "r1"}, &coordinationv1.Lease{}); err != nil {
		t.Errorf("a Lease a process still names is deleted: %v", err)
	}
}

// TestPlacementNeverTwice: a game session whose record of its placement (status.process) was lost is placed
// on the process it claimed, not on a second one: from this leader's memory of its claims, and, for a new
// leader (no memory), from its ProcessClaim. A process claimed since the cache saw it (its claim exists)
// refuses a second claim. Concurrent placements are spread over the idle processes.
func TestPlacementNeverTwice(t *testing.T) {
	now := metav1.NewTime(t0)
	var procs []gamev1.ServerProcess
	for i := range 8 {
		procs = append(procs, gamev1.ServerProcess{ProcessID: fmt.Sprint("p", i), Status: gamev1.ServerProcessActive, Port: 7000, ActivationTime: &now})
	}
	c := &gamev1.Compute{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "compute-1-abcd"},
		Spec: gamev1.ComputeSpec{FleetID: "fleet-1", ComputeName: "compute-1", IPAddress: "10.0.0.5"}, Status: gamev1.ComputeStatus{Processes: procs}}
	f := newFixture(t, newGS("g", 4, false), newGS("h", 4, false), newGS("k", 4, false), c)
	f.reconcileGS(t, "g")
	first := f.gs(t, "g").Status.Process
	if first == nil {
		t.Fatal("not placed")
	}
	lose := func() { // the status write that recorded the placement is lost
		gs := f.gs(t, "g")
		gs.Status.Process = nil
		if err := f.c.Status().Update(t.Context(), gs); err != nil {
			t.Fatal(err)
		}
	}
	lose()
	f.reconcileGS(t, "g")
	expect(t, f.gs(t, "g").Status.Process.ProcessID, first.ProcessID)
	lose()
	// A cache behind this leader's claim (the claim not in it yet) and other processes idle since: the
	// leader's memory of its claim decides, not a new choice.
	claim := &gamev1.ProcessClaim{}
	if err := f.c.Get(t.Context(), client.ObjectKey{Namespace: "ns", Name: computes.ClaimName(c.Name, first.ProcessID)}, claim); err != nil {
		t.Fatal(err)
	}
	if err := f.c.Delete(t.Context(), claim); err != nil {
		t.Fatal(err)
	}
	f.reconcileGS(t, "g")
	expect(t, f.gs(t, "g").Status.Process.ProcessID, first.ProcessID)
	expect(t, len(f.claims(t, f.gs(t, "g"))), 0) // no second claim
	claim.ResourceVersion = ""
	if err := f.c.Create(t.Context(), claim); err != nil { // the API server's truth: claimed
		t.Fatal(err)
	}
	lose()
	f.gsr.claims = sync.Map{} // a new leader
	f.reconcileGS(t, "g")
	expect(t, f.gs(t, "g").Status.Process.ProcessID, first.ProcessID)
	expect(t, fmt.Sprint(f.claims(t, f.gs(t, "g"))), fmt.Sprint([]string{first.ProcessID}))
	f.reconcileGS(t, "h")
	h := f.gs(t, "h").Status.Process
	if h == nil || h.ProcessID == first.ProcessID {
		t.Fatalf("h placed on %v", h)
	}

	// A cache that has not seen g's claim shows g's process idle; with every other process claimed, it is
	// k's only choice: the claim is refused (AlreadyExists) and k chooses again later, rather than share it.
	for i := range 8 {
		if pid := fmt.Sprint("p", i); pid != first.ProcessID && pid != h.ProcessID {
			if err := f.c.Create(t.Context(), computes.Claim(c, pid, newGS(fmt.Sprint("x", i), 4, false))); err != nil {
				t.Fatal(err)
			}
		}
	}
	f.gsr.Client = interceptor.NewClient(f.c.(client.WithWatch), interceptor.Funcs{
		List: func(ctx context.Context, cl client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			if err := cl.List(ctx, list, opts...); err != nil {
				return err
			}
			if l, ok := list.(*gamev1.ProcessClaimList); ok {
				l.Items = slices.DeleteFunc(l.Items, func(x gamev1.ProcessClaim) bool { return x.Spec.GameSessionUID == "uid-gs-g" })
			}
			return nil
		}})
	expect(t, f.reconcileGS(t, "k").RequeueAfter, cacheLagRetry)
	expect(t, f.gs(t, "k").Status.Process == nil, true)
	expect(t, fmt.Sprint(f.claims(t, f.gs(t, "g"))), fmt.Sprint([]string{first.ProcessID}))
	f.gsr.Client = f.c // caught up: no idle process
	expect(t, f.reconcileGS(t, "k").RequeueAfter, time.Duration(0))
	k := f.gs(t, "k")
	expect(t, k.Status.Process == nil, true)
	expect(t, meta.FindStatusCondition(k.Status.Conditions, gamev1.GameSessionPlacedCondition).Reason, gamev1.NoIdleProcessReason)
}

// TestClaimsReleased: the claims on processes gone from their compute (dropped, or of the compute as it
// was registered before, another UID) are deleted, the others kept; a deregistered compute's claims go
// with it, garbage collector or not.
func TestClaimsReleased(t *testing.T) {
	now := metav1.NewTime(t0)
	c := &gamev1.Compute{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "compute-1-abcd", UID: "uid-compute"},
		Spec: gamev1.ComputeSpec{FleetID: "fleet-1", ComputeName: "compute-1", IPAddress: "10.0.0.5"},
		Status: gamev1.ComputeStatus{Processes: []gamev1.ServerProcess{
			{ProcessID: "kept", Status: gamev1.ServerProcessActive, ActivationTime: &now},
			{ProcessID: "of-before", Status: gamev1.ServerProcessActive, ActivationTime: &now},
		}}}
	before := c.DeepCopy()
	before.UID = "uid-compute-before"
	other := c.DeepCopy()
	other.Name, other.UID = "compute-2-abcd", "uid-compute-2"
	f := newFixture(t, c, computes.Claim(c, "kept", newGS("a", 4, false)), computes.Claim(c, "dropped", newGS("b", 4, false)),
		computes.Claim(before, "of-before", newGS("c", 4, false)), computes.Claim(other, "elsewhere", newGS("d", 4, false)))
	names := func() []string {
		var list gamev1.ProcessClaimList
		if err := f.c.List(t.Context(), &list); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, cl := range list.Items {
			out = append(out, cl.Spec.Compute+"/"+cl.Spec.ProcessID)
		}
		slices.Sort(out)
		return out
	}
	reconcile := func() {
		if _, err := f.cr.Reconcile(t.Context(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(c)}); err != nil {
			t.Fatal(err)
		}
	}
	reconcile()
	expect(t, fmt.Sprint(names()), "[compute-1-abcd/kept compute-2-abcd/elsewhere]")
	if err := f.c.Delete(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	reconcile()
	expect(t, fmt.Sprint(names()), "[compute-2-abcd/elsewhere]")
}

// TestWaitingGameSessionsWoken: processes that become idle wake as many waiting game sessions of their fleet
// as the fleet has idle processes, passing over one that holds a claim already (its placement not in the
// cache yet); a claim made wakes the next one. Found by the 60-minute soak: two SDK game servers started
// together, both processes became ACTIVE in the same second, each Compute event woke the oldest waiting game
// session (one per idle process of that compute), and the other game session waited in NoIdleProcess, a
// process idle beside it, until its activation timeout.
func TestWaitingGameSessionsWoken(t *testing.T) {
	now := metav1.NewTime(t0)
	compute := func(name string, active bool) *gamev1.Compute {
		c := &gamev1.Compute{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
			Spec: gamev1.ComputeSpec{FleetID: "fleet-1", ComputeName: name, IPAddress: "10.0.0.5"}}
		if active {
			c.Status.Processes = []gamev1.ServerProcess{{ProcessID: "p0", Status: gamev1.ServerProcessActive, Port: 7000, ActivationTime: &now}}
		}
		return c
	}
	older, newer := newGS("older", 4, false), newGS("newer", 4, false)
	newer.CreationTimestamp = metav1.NewTime(t0.Add(time.Second))
	for _, gs := range []*gamev1.GameSession{older, newer} {
		gs.Status.Status = gamev1.GameSessionActivating
	}
	c1, c2 := compute("compute-1", true), compute("compute-2", true)
	f := newFixture(t, older, newer, c1, c2)
	woken := func(fire func(q workqueue.TypedRateLimitingInterface[reconcile.Request])) []string {
		q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
		defer q.ShutDown()
		fire(q)
		var names []string
		for q.Len() > 0 {
			item, _ := q.Get()
			names = append(names, item.Name)
			q.Done(item)
		}
		slices.Sort(names)
		return names
	}
	computeEvents := f.gsr.computeEvents()
	got := woken(func(q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		computeEvents.Update(t.Context(), event.UpdateEvent{ObjectOld: compute("compute-1", false), ObjectNew: c1}, q)
		computeEvents.Update(t.Context(), event.UpdateEvent{ObjectOld: compute("compute-2", false), ObjectNew: c2}, q)
	})
	expect(t, fmt.Sprint(got), fmt.Sprint([]string{"newer", "older"}))

	// older claims compute-1's process; the cache does not show its placement yet. The claim wakes newer,
	// not older again, and a Compute event does the same.
	claim := computes.Claim(c1, "p0", older)
	if err := f.c.Create(t.Context(), claim); err != nil {
		t.Fatal(err)
	}
	got = woken(func(q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		f.gsr.claimEvents().Create(t.Context(), event.CreateEvent{Object: claim}, q)
	})
	expect(t, fmt.Sprint(got), fmt.Sprint([]string{"newer"}))
	got = woken(func(q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		computeEvents.Update(t.Context(), event.UpdateEvent{ObjectOld: compute("compute-2", false), ObjectNew: c2}, q)
	})
	expect(t, fmt.Sprint(got), fmt.Sprint([]string{"newer"}))
	f.reconcileGS(t, "newer")
	expect(t, f.gs(t, "newer").Status.Process.Compute, "compute-2")
}
