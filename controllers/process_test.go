package controllers

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
)

// TestPlacementAndActivationTimeout: a game session of a fleet with a registered compute is placed on its
// idle process (claimed on the Compute, recorded in status.process), and becomes ERROR when the process
// has not activated it within ProcessActivationTimeout, counted from the placement (persisted in the Placed
// condition), not earlier.
func TestPlacementAndActivationTimeout(t *testing.T) {
	now := metav1.NewTime(t0)
	c := &gamev1.Compute{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "compute-1-abcd"},
		Spec: gamev1.ComputeSpec{FleetID: "fleet-1", ComputeName: "compute-1", IPAddress: "10.0.0.5"},
		Status: gamev1.ComputeStatus{ComputeStatus: gamev1.ComputeActive, Processes: []gamev1.ServerProcess{
			{ProcessID: "busy", Status: gamev1.ServerProcessActive, Port: 7000, ActivationTime: &now, GameSessionName: "other", GameSessionUID: "uid-other"},
			{ProcessID: "sick", Status: gamev1.ServerProcessActive, Port: 7001, ActivationTime: &now, Unhealthy: true},
			{ProcessID: "idle", Status: gamev1.ServerProcessActive, Port: 7002, ActivationTime: &now},
		}}}
	f := newFixture(t, newGS("g", 4, false), c)
	f.gsr.ProcessActivationTimeout = time.Minute
	res := f.reconcileGS(t, "g")
	gs := f.gs(t, "g")
	expect(t, gs.Status.Process != nil && gs.Status.Process.ProcessID == "idle", true)
	expect(t, gs.Status.Status, gamev1.GameSessionActivating)
	expect(t, res.RequeueAfter, time.Minute)
	got := &gamev1.Compute{}
	if err := f.c.Get(t.Context(), client.ObjectKeyFromObject(c), got); err != nil {
		t.Fatal(err)
	}
	expect(t, got.Status.Processes[2].GameSessionUID, string(gs.UID))
	expect(t, got.Status.Processes[1].GameSessionUID, "")

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
