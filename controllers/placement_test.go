package controllers

import (
	"fmt"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/agones"
	"github.com/playersessions/operator/internal/computes"
)

func newQueue(timeout int32, fleets ...string) *gamev1.GameSessionQueue {
	q := &gamev1.GameSessionQueue{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "queue-a"},
		Spec: gamev1.GameSessionQueueSpec{Name: "Queue-A", TimeoutInSeconds: ptr.To(timeout)}}
	for _, f := range fleets {
		q.Spec.Destinations = append(q.Spec.Destinations, gamev1.QueueDestination{DestinationArn: "arn:aws:gamelift:us-east-1::fleet/" + f})
	}
	return q
}

func newPlacement(name string, players ...string) *gamev1.GameSessionPlacement {
	p := &gamev1.GameSessionPlacement{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, CreationTimestamp: metav1.NewTime(t0), Generation: 1},
		Spec: gamev1.GameSessionPlacementSpec{PlacementID: name, GameSessionQueueName: "Queue-A", MaximumPlayerSessionCount: 4, GameSessionName: "match",
			GameProperties: []gamev1.GameProperty{{Key: "mode", Value: "duel"}}}}
	for _, pl := range players {
		p.Spec.DesiredPlayerSessions = append(p.Spec.DesiredPlayerSessions, gamev1.DesiredPlayerSession{PlayerID: pl, PlayerData: "data-" + pl})
	}
	return p
}

// sdkCompute is a compute of fleet with one ACTIVE process, "proc".
func sdkCompute(fleet string) *gamev1.Compute {
	now := metav1.NewTime(t0)
	return &gamev1.Compute{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "compute-" + fleet, UID: types.UID("uid-compute-" + fleet)},
		Spec:   gamev1.ComputeSpec{FleetID: fleet, ComputeName: "c", IPAddress: "10.0.0.5"},
		Status: gamev1.ComputeStatus{Processes: []gamev1.ServerProcess{{ProcessID: "proc", Status: gamev1.ServerProcessActive, Port: 7000, ActivationTime: &now}}}}
}

func (f *fixture) reconcilePlacement(t *testing.T, name string) ctrl.Result {
	t.Helper()
	res, err := f.pr.Reconcile(t.Context(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "ns", Name: name}})
	if err != nil {
		t.Fatalf("placement reconcile: %v", err)
	}
	return res
}

func (f *fixture) placement(t *testing.T, name string) *gamev1.GameSessionPlacement {
	t.Helper()
	p := &gamev1.GameSessionPlacement{}
	if err := f.c.Get(t.Context(), client.ObjectKey{Namespace: "ns", Name: name}, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// activate plays the game server: the game session becomes ACTIVE at an endpoint.
func (f *fixture) activate(t *testing.T, name string) {
	t.Helper()
	gs := f.gs(t, name)
	gs.Status.Status, gs.Status.GameSessionID = gamev1.GameSessionActive, "arn:aws:gamelift:local::gamesession/fleet-b/gsess-"+name
	gs.Status.IPAddress, gs.Status.Port = "10.1.1.1", 7777
	if err := f.c.Status().Update(t.Context(), gs); err != nil {
		t.Fatal(err)
	}
}

// decidePlacementPlayers plays admission: each player session of the placement is RESERVED (or refused, with reason).
func (f *fixture) decidePlacementPlayers(t *testing.T, placement string, n int, refused string) {
	t.Helper()
	for i := range n {
		ps := &gamev1.PlayerSession{}
		if err := f.c.Get(t.Context(), client.ObjectKey{Namespace: "ns", Name: fmt.Sprint(placement, "-p", i)}, ps); err != nil {
			t.Fatal(err)
		}
		if refused != "" {
			meta.SetStatusCondition(&ps.Status.Conditions, metav1.Condition{Type: gamev1.AdmittedCondition, Status: metav1.ConditionFalse, Reason: refused, Message: "no"})
		} else {
			ps.Status.Status, ps.Status.PlayerSessionID = gamev1.PlayerSessionReserved, fmt.Sprint("psess-", placement, i)
		}
		if err := f.c.Status().Update(t.Context(), ps); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPlacementFulfilled: a placement skips a destination that cannot take a game session now (a fleet of
// computes without an idle process) for the next; once that game session is ACTIVE it reserves the desired
// players as one group, and ends FULFILLED (Ready) with the endpoint and the placed player sessions. A
// status write lost on the way (a restart) makes nothing twice.
func TestPlacementFulfilled(t *testing.T) {
	busy := sdkCompute("fleet-a")
	f := newFixture(t, newQueue(60, "fleet-a", "fleet-b"), busy, computes.Claim(busy, "proc", newGS("other", 4, false)), newPlacement("pl", "ann", "bob"))
	f.reconcilePlacement(t, "pl")
	p := f.placement(t, "pl")
	expect(t, p.Status.Status, gamev1.PlacementPending)
	expect(t, fmt.Sprint(p.Status.Attempts), "[{fleet-b pl-0}]")
	gs := f.gs(t, "pl-0")
	expect(t, gs.Spec.FleetID, "fleet-b")
	expect(t, gs.Labels[gamev1.PlacementLabel], "pl")
	expect(t, fmt.Sprintf("%d %s %v", gs.Spec.MaximumPlayerSessionCount, gs.Spec.Name, gs.Spec.GameProperties), "4 match [{mode duel}]")

	lost := p.DeepCopy() // the status write of the attempt is lost: the same game session is adopted
	lost.Status.Attempts = nil
	if err := f.c.Status().Update(t.Context(), lost); err != nil {
		t.Fatal(err)
	}
	f.reconcilePlacement(t, "pl")
	expect(t, fmt.Sprint(f.placement(t, "pl").Status.Attempts), "[{fleet-b pl-0}]")

	f.reconcilePlacement(t, "pl") // ACTIVATING: waits, reserves no one
	if err := f.c.Get(t.Context(), client.ObjectKey{Namespace: "ns", Name: "pl-p0"}, &gamev1.PlayerSession{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a player reserved in an ACTIVATING game session: %v", err)
	}
	f.activate(t, "pl-0")
	f.reconcilePlacement(t, "pl")
	ps := &gamev1.PlayerSession{}
	if err := f.c.Get(t.Context(), client.ObjectKey{Namespace: "ns", Name: "pl-p1"}, ps); err != nil {
		t.Fatal(err)
	}
	expect(t, fmt.Sprint(ps.Spec.GameSessionName, " ", ps.Spec.PlayerID, " ", ps.Spec.PlayerData, " ", *ps.Spec.Group), "pl-0 bob data-bob {pl 2}")
	expect(t, f.placement(t, "pl").Status.Status, gamev1.PlacementPending)
	f.decidePlacementPlayers(t, "pl", 2, "")
	f.reconcilePlacement(t, "pl")
	p = f.placement(t, "pl")
	expect(t, p.Status.Status, gamev1.PlacementFulfilled)
	expect(t, fmt.Sprint(p.Status.GameSessionName, " ", p.Status.IPAddress, ":", p.Status.Port, " ", p.Status.PlacedPlayerSessions), "pl-0 10.1.1.1:7777 [{ann psess-pl0} {bob psess-pl1}]")
	expect(t, meta.IsStatusConditionTrue(p.Status.Conditions, gamev1.PlacementReadyCondition), true)
	expect(t, p.Status.EndTime != nil, true)
	expect(t, f.reconcilePlacement(t, "pl").RequeueAfter, time.Duration(0)) // ended: nothing more
}

// TestPlacementNextDestination: two placements race for a fleet's last idle process; the one whose game
// session finds no process left abandons it and takes the queue's next destination.
func TestPlacementNextDestination(t *testing.T) {
	c := sdkCompute("fleet-a")
	f := newFixture(t, newQueue(60, "fleet-a", "fleet-b"), c, newPlacement("one"), newPlacement("two"))
	f.reconcilePlacement(t, "one")
	f.reconcilePlacement(t, "two")
	expect(t, fmt.Sprintf("%v %v", f.placement(t, "one").Status.Attempts, f.placement(t, "two").Status.Attempts), "[{fleet-a one-0}] [{fleet-a two-0}]")
	f.reconcileGS(t, "one-0") // takes the process
	f.reconcileGS(t, "two-0") // finds none left
	expect(t, meta.FindStatusCondition(f.gs(t, "two-0").Status.Conditions, gamev1.GameSessionPlacedCondition).Reason, gamev1.NoIdleProcessReason)
	f.reconcilePlacement(t, "two")
	p := f.placement(t, "two")
	expect(t, fmt.Sprint(p.Status.Attempts), "[{fleet-a two-0} {fleet-b two-1}]")
	if abandoned := (&gamev1.GameSession{}); f.c.Get(t.Context(), client.ObjectKey{Namespace: "ns", Name: "two-0"}, abandoned) == nil && abandoned.DeletionTimestamp.IsZero() {
		t.Errorf("the abandoned game session is not being deleted")
	}
	expect(t, f.gs(t, "two-1").Spec.FleetID, "fleet-b")
	f.reconcilePlacement(t, "one")
	expect(t, fmt.Sprint(f.placement(t, "one").Status.Attempts), "[{fleet-a one-0}]")
}

// TestPlacementEnds: no destination can take a game session: the placement looks again, and is TIMED_OUT
// (Stalled) at the queue's timeout; a stopped one is CANCELLED and the game session made for it goes; one
// whose queue is gone, or whose players are refused, is FAILED.
func TestPlacementEnds(t *testing.T) {
	busy := sdkCompute("fleet-a")
	f := newFixture(t, newQueue(10, "fleet-a"), busy, computes.Claim(busy, "proc", newGS("other", 4, false)), newPlacement("late"))
	expect(t, f.reconcilePlacement(t, "late").RequeueAfter, placementRecheck)
	p := f.placement(t, "late")
	expect(t, p.Status.Status, gamev1.PlacementPending)
	expect(t, p.Status.Message, "No destination of queue Queue-A can take a game session now; looking again")
	f.clock.Step(10 * time.Second)
	f.reconcilePlacement(t, "late")
	p = f.placement(t, "late")
	expect(t, p.Status.Status, gamev1.PlacementTimedOut)
	expect(t, meta.IsStatusConditionTrue(p.Status.Conditions, gamev1.PlacementStalledCondition), true)

	for name, q := range map[string]*gamev1.GameSessionQueue{"stopped": newQueue(60, "fleet-b"), "refused": newQueue(60, "fleet-b"), "orphan": nil} {
		t.Run(name, func(t *testing.T) {
			objs := []client.Object{newPlacement(name, "ann")}
			if q != nil {
				objs = append(objs, q)
			}
			f := newFixture(t, objs...)
			f.reconcilePlacement(t, name)
			var want gamev1.GameSessionPlacementState
			switch name {
			case "stopped":
				p := f.placement(t, name)
				p.Spec.Stopped = true
				if err := f.c.Update(t.Context(), p); err != nil {
					t.Fatal(err)
				}
				want = gamev1.PlacementCancelled
			case "refused":
				f.activate(t, name+"-0")
				f.reconcilePlacement(t, name)
				f.decidePlacementPlayers(t, name, 1, gamev1.GameSessionFullReason)
				want = gamev1.PlacementFailed
			case "orphan":
				want = gamev1.PlacementFailed
			}
			f.reconcilePlacement(t, name)
			expect(t, f.placement(t, name).Status.Status, want)
			if err := f.c.Get(t.Context(), client.ObjectKey{Namespace: "ns", Name: name + "-0"}, &gamev1.GameSession{}); !apierrors.IsNotFound(err) {
				t.Errorf("the game session made for it is still there: %v", err)
			}
		})
	}
}

// TestCanTake: which destinations can take a game session now.
func TestCanTake(t *testing.T) {
	for _, tc := range []struct {
		d    destination
		want bool
	}{
		{destination{agones: true, readyServers: 1}, true},
		{destination{agones: true}, false},
		{destination{computes: true, idle: true}, true},
		{destination{computes: true}, false},
		{destination{}, true},
	} {
		expect(t, canTake(tc.d), tc.want)
	}
}

// TestPlacementOnAgones: an Agones Fleet without a Ready GameServer cannot take a game session; the next one,
// with one, can: the placement's game session is allocated from it (spec.agones.fleetName).
func TestPlacementOnAgones(t *testing.T) {
	state := agones.AllocationAllocated
	fleet := func(name string) *unstructured.Unstructured {
		u := agones.NewFleet()
		u.SetNamespace("ns")
		u.SetName(name)
		return u
	}
	f, _ := agonesFixture(t, &state, newQueue(60, "fleet-empty", "fleet-ready"), fleet("fleet-empty"), fleet("fleet-ready"),
		readyServer(t, "r-1", "fleet-ready", nil), newPlacement("pl"))
	f.pr.Agones = f.gsr.Agones
	f.reconcilePlacement(t, "pl")
	expect(t, fmt.Sprint(f.placement(t, "pl").Status.Attempts), "[{fleet-ready pl-0}]")
	gs := f.gs(t, "pl-0")
	expect(t, gs.Spec.Agones != nil && gs.Spec.Agones.FleetName == "fleet-ready", true)
}
