package gameservers

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	clocktesting "k8s.io/utils/clock/testing"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/computes"
)

// TestActiveProcessBehindTheCache: the process a game session is placed on is found ACTIVE whether this
// replica's cache of Computes has seen its ProcessReady or not (the GameSession informer ahead of the
// Compute informer: the push would otherwise be skipped, with nothing to retry it); a process that ended,
// or a compute that is gone, takes no push.
func TestActiveProcessBehindTheCache(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := gamev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	compute := func(processes ...gamev1.ServerProcess) *gamev1.Compute {
		return &gamev1.Compute{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "c-1"}, Status: gamev1.ComputeStatus{Processes: processes}}
	}
	process := func(status gamev1.ServerProcessStatusValue) gamev1.ServerProcess {
		return gamev1.ServerProcess{ProcessID: "proc-1", Status: status, Port: 7777}
	}
	ref := &gamev1.ServerProcessRef{Compute: "c-1", ProcessID: "proc-1"}
	for _, tc := range []struct {
		name        string
		cache, live *gamev1.Compute // nil: not there
		want        bool
	}{
		{name: "the cache shows it ACTIVE", cache: compute(process(gamev1.ServerProcessActive)), live: compute(process(gamev1.ServerProcessActive)), want: true},
		{name: "the cache has not seen ProcessReady", cache: compute(), live: compute(process(gamev1.ServerProcessActive)), want: true},
		{name: "the cache has not seen the compute", live: compute(process(gamev1.ServerProcessActive)), want: true},
		{name: "the process ended", cache: compute(process(gamev1.ServerProcessActive)), live: compute(process(gamev1.ServerProcessTerminated)),
			want: true}, // the cache's word is taken when it says ACTIVE: the push then goes to a connection that is closing
		{name: "the process ended, seen by both", cache: compute(process(gamev1.ServerProcessTerminated)), live: compute(process(gamev1.ServerProcessTerminated))},
		{name: "the compute is gone", cache: compute()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reader := func(c *gamev1.Compute) client.Reader {
				b := fake.NewClientBuilder().WithScheme(scheme)
				if c != nil {
					b = b.WithObjects(c.DeepCopy()).WithStatusSubresource(&gamev1.Compute{})
				}
				return b.Build()
			}
			b := &Backend{Reader: reader(tc.cache), APIReader: reader(tc.live)}
			c, i := b.activeProcess(context.Background(), "team-a", ref)
			if got := c != nil; got != tc.want {
				t.Fatalf("found: %v, want %v", got, tc.want)
			}
			if c != nil && (i < 0 || c.Status.Processes[i].ProcessID != "proc-1" || c.Status.Processes[i].Port != 7777) {
				t.Errorf("process %d of %+v", i, c.Status.Processes)
			}
		})
	}
}

// TestLostConnectionRecordedOnComputeChange: a process that its compute's status shows ACTIVE and
// connected to this replica's run, but that is not connected here, has its connection recorded as closed
// on the compute's next change: the record Disconnected missed (its write failed in a fault while the
// replica lived on, or a ProcessReady the process had given up on landed after it). The soak found such
// processes: game sessions were placed on game servers that had exited. A process connected here, or held
// by another run, is left alone.
func TestLostConnectionRecordedOnComputeChange(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := gamev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC))
	held := func(holder string) *gamev1.ProcessConnection {
		return &gamev1.ProcessConnection{Replica: "replica-a", Holder: holder, ConnectionTime: metav1.NewTime(clk.Now().Add(-time.Minute))}
	}
	name := computes.ObjectName("fleet-1", "host-1")
	compute := &gamev1.Compute{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: name},
		Spec: gamev1.ComputeSpec{FleetID: "fleet-1", ComputeName: "host-1"},
		Status: gamev1.ComputeStatus{Processes: []gamev1.ServerProcess{
			{ProcessID: "exited", Status: gamev1.ServerProcessActive, Port: 7001, Connection: held("run-1")},
			{ProcessID: "connected", Status: gamev1.ServerProcessActive, Port: 7002, Connection: held("run-1")},
			{ProcessID: "elsewhere", Status: gamev1.ServerProcessActive, Port: 7003, Connection: held("run-0")},
		}}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(compute.DeepCopy()).WithStatusSubresource(&gamev1.Compute{}).Build()
	b := &Backend{Client: c, Reader: c, APIReader: c, Clock: clk, Replica: "replica-a", Holder: "run-1",
		connected: map[processKey][]*connection{{"team-a", name, "connected"}: {{}}}}

	b.OnCompute(context.Background(), compute)
	got := &gamev1.Compute{}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := c.Get(context.Background(), client.ObjectKeyFromObject(compute), got); err != nil {
			t.Fatal(err)
		}
		if got.Status.Processes[0].Connection.DisconnectionTime != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i, want := range []bool{true, false, false} {
		sp := got.Status.Processes[i]
		if recorded := sp.Connection.DisconnectionTime != nil; recorded != want {
			t.Errorf("process %s: disconnection recorded %v, want %v", sp.ProcessID, recorded, want)
		}
		if sp.Status != gamev1.ServerProcessActive {
			t.Errorf("process %s: %s, want ACTIVE (the leader ends it after the reconnect grace)", sp.ProcessID, sp.Status)
		}
	}
	if at := got.Status.Processes[0].Connection.DisconnectionTime; at != nil && !at.Time.Equal(clk.Now()) {
		t.Errorf("recorded at %v, want %v", at.Time, clk.Now())
	}
}
